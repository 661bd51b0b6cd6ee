"""The worker's automation step: consume the events documents left (see
``docmail.services.automation_events``), each under a lease, each once.

An event is claimed (lease), evaluated (joining its run first, if any), and marked
done. An evaluation that raises stays with its event: the event is retried with a
growing delay and, after ``MAX_ATTEMPTS``, kept as ``failed`` with its error; the
step logs one line per failure and goes on with the next event. A worker that dies
holding events leaves leases that expire, and another worker takes them over;
evaluating an event twice queues nothing twice (emails are keyed by rule,
document and trigger).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, or_, select, update

from docmail.adapters.db import tables as t
from docmail.services import automation
from docmail.services.automation_runs import join_run
from docmail.services.runtime import Actor, Role, Runtime

log = logging.getLogger("docmail.worker.events")
EVENT_LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 5
BATCH = 50


def _claim(runtime: Runtime, worker: str, limit: int) -> list[t.AutomationEvent]:
    now = runtime.clock()
    free = or_(t.AutomationEvent.locked_until.is_(None), t.AutomationEvent.locked_until < now)
    due = select(t.AutomationEvent.id).where(
        and_(t.AutomationEvent.state == "pending", t.AutomationEvent.next_attempt_at <= now, free)
    )
    # Every round of every worker asks; only when something is due does it take the
    # write lock (on SQLite the whole database's) to lease it.
    with runtime.read_session() as session:
        ids = list(session.scalars(due.order_by(t.AutomationEvent.id).limit(limit)))
    if not ids:
        return []
    with runtime.session() as session:
        session.execute(
            update(t.AutomationEvent)
            .where(t.AutomationEvent.id.in_(ids), free)
            .values(locked_by=worker, locked_until=now + EVENT_LEASE)
        )
        mine = select(t.AutomationEvent).where(
            t.AutomationEvent.id.in_(ids), t.AutomationEvent.locked_by == worker
        )
        return list(session.scalars(mine.order_by(t.AutomationEvent.id)))


def _evaluate(runtime: Runtime, event: t.AutomationEvent) -> None:
    actor = Actor(
        event.company_id, Role.SENDER, label=event.created_by or "automation", system=True
    )
    if event.run:
        join_run(runtime, actor, event.run, event.document_id)
    automation.evaluate_document(runtime, actor, event.document_id, event.event)


def _finish(runtime: Runtime, event: t.AutomationEvent, worker: str, error: str | None) -> None:
    now = runtime.clock()
    attempts = event.attempts + 1
    values: dict[str, object] = {"attempts": attempts, "locked_by": None, "locked_until": None}
    if error is None:
        values.update(state="done", processed_at=now, last_error=None)
    elif attempts >= MAX_ATTEMPTS:
        values.update(state="failed", processed_at=now, last_error=error)
    else:
        values.update(next_attempt_at=now + timedelta(seconds=2**attempts), last_error=error)
    with runtime.session() as session:
        session.execute(
            update(t.AutomationEvent)
            .where(t.AutomationEvent.id == event.id, t.AutomationEvent.locked_by == worker)
            .values(**values)
        )


def process_due_events(runtime: Runtime, worker: str, limit: int = BATCH) -> int:
    """Evaluate up to ``limit`` due events; how many were handled (done or failed)."""
    claimed = _claim(runtime, worker, limit)
    for event in claimed:
        try:
            _evaluate(runtime, event)
        except Exception as exc:  # one event's trouble stays with it
            error = f"{type(exc).__name__}: {exc}"[:2000]
            log.warning(
                "automation event %s (document %s, %s) failed, attempt %s: %s",
                event.id,
                event.document_id,
                event.event,
                event.attempts + 1,
                error,
            )
            _finish(runtime, event, worker, error)
        else:
            _finish(runtime, event, worker, None)
    return len(claimed)
