"""Runs: documents named together (an import, a month's rent) and decided on close.

``only_multiple`` can only be decided once every document of a run is known,
so a run's documents wait until it closes: explicitly (``close_run``), or by
itself ``quiet_seconds`` after its last document (a worker closes it, see
``close_quiet_runs``). Closing moves the run open -> closing (with a lease,
taken over by another worker if the closer dies) -> closed; every decision
made in between has its own once-ever key, so a repeated close is harmless.
A document added to a run that is already closing or closed is decided at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.adapters.db.engine import write_transaction
from docmail.automation.policy import CREATED
from docmail.errors import NotFound
from docmail.services.automation import evaluate_document
from docmail.services.automation_inputs import RunIn
from docmail.services.automation_queue import FAILED, SENT, SKIPPED, PlanItem, item_of_outcome
from docmail.services.runtime import Actor, Role, Runtime

DEFAULT_QUIET_SECONDS = 3600
CLOSE_LEASE = timedelta(minutes=5)


@dataclass
class RunReport:
    name: str
    state: str
    documents: int
    created_at: datetime
    closed_at: datetime | None
    sent: list[PlanItem] = field(default_factory=list)
    skipped: list[PlanItem] = field(default_factory=list)
    failed: list[PlanItem] = field(default_factory=list)
    planned: list[PlanItem] = field(default_factory=list)  # dry run only


def _run_row(session: Session, actor: Actor, name: str) -> t.AutomationRun:
    row = session.scalar(
        select(t.AutomationRun).where(
            t.AutomationRun.company_id == actor.company_id, t.AutomationRun.name == name
        )
    )
    if row is None:
        raise NotFound(f"run {name!r} not found", field="name", value=name)
    return row


def _ensure_run(runtime: Runtime, actor: Actor, name: str, quiet: int | None) -> None:
    try:
        with runtime.session() as session:
            exists = session.scalar(
                select(t.AutomationRun.id).where(
                    t.AutomationRun.company_id == actor.company_id, t.AutomationRun.name == name
                )
            )
            if exists is None:
                session.add(
                    t.AutomationRun(
                        company_id=actor.company_id,
                        name=name,
                        quiet_seconds=quiet,
                        created_at=runtime.clock(),
                    )
                )
    except IntegrityError:
        pass  # a concurrent request created it


def open_run(runtime: Runtime, actor: Actor, data: RunIn) -> RunReport:
    """Create a run (or set its quiet period); its documents wait for its close."""
    actor.require(Role.SENDER)
    _ensure_run(runtime, actor, data.name, data.quiet_seconds)
    with runtime.session() as session:
        row = _run_row(session, actor, data.name)
        row.quiet_seconds = data.quiet_seconds
        row.closes_at = _closes_at(runtime, row)
    return run_report(runtime, actor, data.name)


def _closes_at(runtime: Runtime, row: t.AutomationRun) -> datetime | None:
    if row.state != "open" or row.quiet_seconds is None:
        return None
    return runtime.clock() + timedelta(seconds=row.quiet_seconds)


def join_run(runtime: Runtime, actor: Actor, name: str, doc_id: int) -> None:
    """Put a document in a run (created on first use with the default quiet period)."""
    _ensure_run(runtime, actor, name, DEFAULT_QUIET_SECONDS)
    with runtime.session() as session:
        # Lock the run row (PostgreSQL): a concurrent close waits for this membership.
        row = session.scalar(
            select(t.AutomationRun)
            .where(t.AutomationRun.company_id == actor.company_id, t.AutomationRun.name == name)
            .with_for_update()
        )
        assert row is not None
        linked = session.get(t.AutomationRunDocument, (row.id, doc_id))
        if linked is None:
            session.add(t.AutomationRunDocument(run_id=row.id, document_id=doc_id))
        row.closes_at = _closes_at(runtime, row)


def _start_close(engine_runtime: Runtime, run_id: int, worker: str) -> bool:
    """Move a run to ``closing`` under ``worker``'s lease; False if someone else holds it."""
    now = engine_runtime.clock()
    with write_transaction(engine_runtime.engine) as conn:
        result = conn.execute(
            update(t.AutomationRun)
            .where(
                t.AutomationRun.id == run_id,
                or_(
                    t.AutomationRun.state == "open",
                    and_(t.AutomationRun.state == "closing", t.AutomationRun.locked_until < now),
                ),
            )
            .values(state="closing", locked_by=worker, locked_until=now + CLOSE_LEASE)
        )
        return bool(result.rowcount)


def _members(runtime: Runtime, run_id: int) -> list[int]:
    with runtime.session() as session:
        return list(
            session.scalars(
                select(t.AutomationRunDocument.document_id)
                .where(t.AutomationRunDocument.run_id == run_id)
                .order_by(t.AutomationRunDocument.document_id)
            )
        )


def _evaluate_members(runtime: Runtime, actor: Actor, run_id: int, dry_run: bool) -> list[PlanItem]:
    items: list[PlanItem] = []
    for doc_id in _members(runtime, run_id):
        items += evaluate_document(
            runtime, actor, doc_id, CREATED, dry_run=dry_run, ignore_open_run=True
        )
    return items


def _finish_close(runtime: Runtime, run_id: int, worker: str) -> None:
    with runtime.session() as session:
        session.execute(
            update(t.AutomationRun)
            .where(t.AutomationRun.id == run_id, t.AutomationRun.locked_by == worker)
            .values(state="closed", closed_at=runtime.clock(), locked_until=None, closes_at=None)
        )


def close_run_by_id(runtime: Runtime, actor: Actor, run_id: int, worker: str) -> bool:
    """Close a run: decide and queue every document's rules. False if another closer has it."""
    if not _start_close(runtime, run_id, worker):
        return False
    _evaluate_members(runtime, actor, run_id, dry_run=False)
    _finish_close(runtime, run_id, worker)
    return True


def close_run(runtime: Runtime, actor: Actor, name: str, *, dry_run: bool = False) -> RunReport:
    """Close the run now and answer its report; ``dry_run``: only say what closing would send."""
    actor.require(Role.SENDER)
    with runtime.session() as session:
        run_id = _run_row(session, actor, name).id
    if dry_run:
        report = run_report(runtime, actor, name)
        report.planned = _evaluate_members(runtime, actor, run_id, dry_run=True)
        return report
    close_run_by_id(runtime, actor, run_id, f"request:{actor.label or actor.company_id}")
    return run_report(runtime, actor, name)


def close_quiet_runs(runtime: Runtime, worker: str) -> int:
    """Worker duty: close one run whose quiet period passed (or whose closer died)."""
    now = runtime.clock()
    with runtime.session() as session:
        row = session.execute(
            select(t.AutomationRun.id, t.AutomationRun.company_id)
            .where(
                or_(
                    and_(t.AutomationRun.state == "open", t.AutomationRun.closes_at <= now),
                    and_(t.AutomationRun.state == "closing", t.AutomationRun.locked_until < now),
                )
            )
            .order_by(t.AutomationRun.id)
            .limit(1)
        ).first()
    if row is None:
        return 0
    actor = Actor(row.company_id, Role.SENDER, label=f"worker:{worker}", system=True)
    return int(close_run_by_id(runtime, actor, row.id, worker))


def run_report(runtime: Runtime, actor: Actor, name: str) -> RunReport:
    """What a run sent (message ids), skipped (and why) and failed."""
    with runtime.session() as session:
        run = _run_row(session, actor, name)
        members = session.scalars(
            select(t.AutomationRunDocument.document_id).where(
                t.AutomationRunDocument.run_id == run.id
            )
        ).all()
        report = RunReport(run.name, run.state, len(members), run.created_at, run.closed_at)
        outcomes = session.scalars(
            select(t.AutomationOutcome)
            .where(t.AutomationOutcome.run_id == run.id)
            .order_by(t.AutomationOutcome.id)
        )
        lists = {SENT: report.sent, SKIPPED: report.skipped, FAILED: report.failed}
        for row in outcomes:
            item = item_of_outcome(session, row, replayed=False)
            delivery_failed = item.message_state == "failed"
            lists[FAILED if delivery_failed else row.status].append(item)
    return report
