"""The outbox's SQL, kept together: claiming with leases and recording outcomes.

Claiming works the same on both backends:

* PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` so concurrent workers take
  disjoint rows without waiting for each other;
* SQLite: ``BEGIN IMMEDIATE`` so claims are serialised by the write lock.

A claim sets ``state='sending'``, a lease (``locked_until``) and the worker's
name, and counts the attempt. Every later update is fenced on ``locked_by`` so
a worker whose lease was taken over cannot overwrite the new owner's result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, Select, and_, delete, func, insert, or_, select, update

from docmail.adapters.db import tables as t
from docmail.adapters.db.engine import write_transaction
from docmail.domain.outbox import MessageState

_CLAIMABLE = [MessageState.QUEUED.value, MessageState.RETRYING.value]


@dataclass(frozen=True)
class Claim:
    message_id: int
    account_id: int
    attempt: int


def _claimable_query(now: datetime, limit: int, for_update: bool) -> Select:
    due = and_(t.Message.state.in_(_CLAIMABLE), t.Message.next_attempt_at <= now)
    # A message stuck in 'sending' whose lease expired belonged to a dead worker.
    abandoned = and_(t.Message.state == MessageState.SENDING.value, t.Message.locked_until < now)
    query = (
        select(t.Message.id, t.Message.account_id, t.Message.attempts, t.Message.state)
        .join(t.MailAccount, t.MailAccount.id == t.Message.account_id)
        .where(or_(due, abandoned), t.MailAccount.paused.is_(False))
        .order_by(t.Message.next_attempt_at, t.Message.id)
        .limit(limit)
    )
    if for_update:
        query = query.with_for_update(skip_locked=True, of=t.Message)
    return query


def claim(engine: Engine, worker: str, limit: int, lease: timedelta, now: datetime) -> list[Claim]:
    """Take up to ``limit`` due messages for ``worker`` and count one attempt on each."""
    postgres = engine.dialect.name == "postgresql"
    with write_transaction(engine) as conn:
        rows = conn.execute(_claimable_query(now, limit, for_update=postgres)).all()
        claims: list[Claim] = []
        for row in rows:
            if row.state == MessageState.SENDING.value:
                conn.execute(
                    update(t.MessageAttempt)
                    .where(
                        t.MessageAttempt.message_id == row.id,
                        t.MessageAttempt.outcome.is_(None),
                    )
                    .values(
                        outcome="abandoned",
                        finished_at=now,
                        detail="worker stopped or lease expired; outcome unknown",
                    )
                )
            conn.execute(
                update(t.Message)
                .where(t.Message.id == row.id)
                .values(
                    state=MessageState.SENDING.value,
                    locked_until=now + lease,
                    locked_by=worker,
                    attempts=row.attempts + 1,
                    updated_at=now,
                )
            )
            conn.execute(
                insert(t.MessageAttempt).values(
                    message_id=row.id, number=row.attempts + 1, worker=worker, started_at=now
                )
            )
            claims.append(Claim(row.id, row.account_id, row.attempts + 1))
    return claims


def _finish_attempt(
    conn: Connection,
    claim: Claim,
    outcome: str,
    code: int | None,
    detail: str | None,
    now: datetime,
) -> None:
    conn.execute(
        update(t.MessageAttempt)
        .where(
            t.MessageAttempt.message_id == claim.message_id,
            t.MessageAttempt.number == claim.attempt,
        )
        .values(outcome=outcome, smtp_code=code, detail=detail, finished_at=now)
    )


def mark_sent(
    engine: Engine, worker: str, claim: Claim, code: int, reply: str, now: datetime
) -> bool:
    """Record success; False if this worker no longer owns the message (lease lost)."""
    with engine.begin() as conn:
        result = conn.execute(
            update(t.Message)
            .where(
                t.Message.id == claim.message_id,
                t.Message.locked_by == worker,
                t.Message.state == MessageState.SENDING.value,
            )
            .values(
                state=MessageState.SENT.value,
                sent_at=now,
                smtp_code=code,
                server_reply=reply,
                last_error=None,
                locked_until=None,
                updated_at=now,
            )
        )
        _finish_attempt(conn, claim, "sent", code, reply, now)
        return bool(result.rowcount)


def mark_failed_attempt(
    engine: Engine,
    worker: str,
    claim: Claim,
    *,
    state: MessageState,
    next_attempt_at: datetime | None,
    error: str,
    code: int | None,
    reply: str | None,
    now: datetime,
) -> bool:
    """Record a failed attempt: retry later (``retrying``/``queued``) or give up (``failed``)."""
    values: dict[str, object] = {
        "state": state.value,
        "last_error": error,
        "smtp_code": code,
        "server_reply": reply,
        "locked_until": None,
        "updated_at": now,
    }
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    with engine.begin() as conn:
        result = conn.execute(
            update(t.Message)
            .where(
                t.Message.id == claim.message_id,
                t.Message.locked_by == worker,
                t.Message.state == MessageState.SENDING.value,
            )
            .values(**values)
        )
        _finish_attempt(conn, claim, state.value, code, error, now)
        return bool(result.rowcount)


def release(engine: Engine, worker: str, claims: list[Claim], now: datetime) -> None:
    """Give claimed-but-unsent messages back (graceful shutdown, paused account)."""
    with engine.begin() as conn:
        for item in claims:
            conn.execute(
                update(t.Message)
                .where(
                    t.Message.id == item.message_id,
                    t.Message.locked_by == worker,
                    t.Message.state == MessageState.SENDING.value,
                )
                .values(
                    state=MessageState.QUEUED.value,
                    locked_until=None,
                    attempts=t.Message.attempts - 1,
                    updated_at=now,
                )
            )
            conn.execute(
                delete(t.MessageAttempt).where(
                    t.MessageAttempt.message_id == item.message_id,
                    t.MessageAttempt.number == item.attempt,
                )
            )


def pause_account(engine: Engine, account_id: int, reason: str, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(t.MailAccount)
            .where(t.MailAccount.id == account_id)
            .values(paused=True, pause_reason=reason, updated_at=now)
        )


def mark_bouncing(engine: Engine, company_id: int, emails: list[str], reason: str) -> None:
    """Flag contacts whose address was refused permanently, so compose warns next time."""
    lowered = [e.lower() for e in emails]
    if not lowered:
        return
    with engine.begin() as conn:
        conn.execute(
            update(t.Contact)
            .where(t.Contact.company_id == company_id, func.lower(t.Contact.email).in_(lowered))
            .values(bouncing=True, bounce_reason=reason[:500])
        )
