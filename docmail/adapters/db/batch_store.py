"""Claiming batches for expansion: oldest waiting first, companies in turn, failures backed off.

A worker takes one batch per round and expands one chunk of it. Which one:

* only batches that are ready (or expanding) whose lease is free and whose
  ``next_attempt_at`` has come: a batch that just failed as a whole waits;
* the company whose batches waited longest since their last turn first (so one
  company's ten batches do not hold back another company's one), then within
  it the batch that waited longest. Every chunk moves its batch's
  ``next_attempt_at`` to now, which sends it (and its company) to the back.

A chunk that fails as a whole is recorded with :func:`fail_batch`: counted,
backed off exponentially, and after ``max_attempts`` quarantined with its error.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, ScalarSelect, and_, func, or_, select, update
from sqlalchemy.orm import aliased

from docmail.adapters.db import tables as t
from docmail.adapters.db.engine import write_transaction

WAITING = ("ready", "expanding")
QUARANTINED = "quarantined"
ERROR_LIMIT = 2000  # characters of a reason kept on the batch


def _free(now: datetime) -> ColumnElement[bool]:
    return and_(
        t.Batch.state.in_(WAITING),
        or_(t.Batch.locked_until.is_(None), t.Batch.locked_until < now),
        or_(t.Batch.next_attempt_at.is_(None), t.Batch.next_attempt_at <= now),
    )


def _company_turn() -> ScalarSelect[datetime | None]:
    """When the batch's company last had a turn (NULL: never), as a correlated subquery."""
    other = aliased(t.Batch)
    return (
        select(func.max(other.next_attempt_at))
        .where(other.company_id == t.Batch.company_id, other.state.in_(WAITING))
        .scalar_subquery()
    )


def claim_batch(engine: Engine, worker: str, lease: timedelta, now: datetime) -> int | None:
    """Take one batch waiting to be expanded, fairly across companies (see the module)."""
    turn = _company_turn()
    waited = func.coalesce(t.Batch.next_attempt_at, t.Batch.created_at)
    with write_transaction(engine) as conn:
        query = (
            select(t.Batch.id)
            .where(_free(now))
            .order_by(turn.is_not(None), turn, waited, t.Batch.id)
            .limit(1)
        )
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        batch_id = conn.execute(query).scalar()
        if batch_id is None:
            return None
        conn.execute(
            update(t.Batch)
            .where(t.Batch.id == batch_id)
            .values(locked_until=now + lease, locked_by=worker)
        )
        return int(batch_id)


def release_batch(engine: Engine, batch_id: int, worker: str, now: datetime) -> None:
    """Give the batch back after a chunk; it goes to the back of the line."""
    with engine.begin() as conn:
        conn.execute(
            update(t.Batch)
            .where(t.Batch.id == batch_id, t.Batch.locked_by == worker)
            .values(locked_until=None, locked_by=None, next_attempt_at=now)
        )


def backoff(attempts: int, first: timedelta) -> timedelta:
    """``first``, doubled per further attempt, at most an hour."""
    return min(first * 2 ** max(attempts - 1, 0), timedelta(hours=1))


def fail_batch(
    engine: Engine,
    batch_id: int,
    worker: str,
    *,
    reason: str,
    counts: bool,
    first_wait: timedelta,
    max_attempts: int,
    now: datetime,
) -> tuple[int, bool]:
    """Record that a chunk of the batch failed as a whole; return (attempts, quarantined).

    ``counts``: False for a transient failure (the database was busy or away),
    which backs the batch off without bringing it nearer to quarantine.
    """
    with engine.begin() as conn:
        attempts = conn.execute(
            select(t.Batch.attempts).where(t.Batch.id == batch_id)
        ).scalar_one() + int(counts)
        quarantined = attempts >= max_attempts
        values: dict[str, object] = {
            "attempts": attempts,
            "last_error": reason[:ERROR_LIMIT],
            "next_attempt_at": now + backoff(max(attempts, 1), first_wait),
            "locked_until": None,
            "locked_by": None,
        }
        if quarantined:
            values.update(state=QUARANTINED, finished_at=now)
        conn.execute(
            update(t.Batch)
            .where(t.Batch.id == batch_id, t.Batch.locked_by == worker)
            .values(values)
        )
    return attempts, quarantined
