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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    BindParameter,
    Connection,
    Engine,
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.adapters.db.engine import without_ping, write_transaction
from docmail.adapters.smtp.limits import clip
from docmail.domain.outbox import MessageState

_CLAIMABLE = [MessageState.QUEUED.value, MessageState.RETRYING.value]


@dataclass(frozen=True)
class Claim:
    message_id: int
    account_id: int
    attempt: int


# The claim's statements are built once, with bound parameters: building and
# hashing them afresh cost more Python time than PostgreSQL took to run them.
_NOW = bindparam("p_now", type_=t.Message.__table__.c.next_attempt_at.type)
_ACCOUNT: BindParameter[int] = bindparam("p_account_id", type_=Integer())

# The ways a message can be due, each with ``state`` equal to one value. Asked per
# account and branch, each is a range of ``ix_messages_account_due`` (account,
# state, next attempt, id): a claim then costs the same whether 100 or 100,000
# messages wait, where one OR over states scanned every due row.
_DUE_BRANCHES = [
    *(and_(t.Message.state == state, t.Message.next_attempt_at <= _NOW) for state in _CLAIMABLE),
    # A message stuck in 'sending' whose lease expired belonged to a dead worker.
    and_(t.Message.state == MessageState.SENDING.value, t.Message.locked_until < _NOW),
]


@dataclass(frozen=True)
class AccountLimits:
    id: int
    rate_per_minute: int | None = None
    rate_per_hour: int | None = None
    rate_per_day: int | None = None
    max_concurrency: int | None = None


def _accounts_query(one: bool) -> Select:
    oldest = [
        select(func.min(t.Message.next_attempt_at))
        .where(t.Message.account_id == t.MailAccount.id, branch)
        .scalar_subquery()
        for branch in _DUE_BRANCHES
    ]
    query = (
        select(
            t.MailAccount.id,
            t.MailAccount.rate_per_minute,
            t.MailAccount.rate_per_hour,
            t.MailAccount.rate_per_day,
            t.MailAccount.max_concurrency,
            *oldest,
        )
        .join(t.Company, t.Company.id == t.MailAccount.company_id)
        .where(t.MailAccount.paused.is_(False), t.Company.sending_paused.is_(False))
    )
    return query.where(t.MailAccount.id == _ACCOUNT) if one else query


_DUE_ACCOUNTS = {False: _accounts_query(one=False), True: _accounts_query(one=True)}


def _due_accounts(
    conn: Connection, now: datetime, account_id: int | None = None
) -> list[AccountLimits]:
    """Accounts with due messages, not paused, of companies not paused; oldest work first."""
    query = _DUE_ACCOUNTS[account_id is not None]
    due: list[tuple[Any, AccountLimits]] = []
    for row in conn.execute(query, {"p_now": now, "p_account_id": account_id}):
        times = [value for value in row[5:] if value is not None]
        if times:
            due.append((min(times), AccountLimits(*row[:5])))
    due.sort(key=lambda pair: pair[0])
    return [account for _, account in due]


def _count(conn: Connection, query: Select) -> int:
    return int(conn.execute(query).scalar() or 0)


def account_budget(
    conn: Connection, account: AccountLimits, now: datetime, wanted: int, worker: str
) -> int:
    """How many more messages ``worker`` may start now on this account, given its limits.

    Rate limits count attempts started in the sliding window (what a provider
    counts); concurrency counts the other workers currently holding its messages
    (a worker claiming ahead on its own connection adds no concurrency).
    """
    budget = wanted
    if account.max_concurrency:
        holders = _count(
            conn,
            select(func.count(func.distinct(t.Message.locked_by))).where(
                t.Message.account_id == account.id,
                t.Message.state == MessageState.SENDING.value,
                t.Message.locked_until >= now,
                t.Message.locked_by != worker,
            ),
        )
        if holders >= account.max_concurrency:
            return 0
    for limit, window in (
        (account.rate_per_minute, timedelta(minutes=1)),
        (account.rate_per_hour, timedelta(hours=1)),
        (account.rate_per_day, timedelta(days=1)),
    ):
        if limit:
            used = _count(
                conn,
                select(func.count()).where(
                    t.MessageAttempt.account_id == account.id,
                    t.MessageAttempt.started_at > now - window,
                ),
            )
            budget = min(budget, limit - used)
    return max(budget, 0)


def _lock_account(conn: Connection, account_id: int) -> bool:
    """Serialise claims per account on PostgreSQL so rate counts stay exact."""
    if conn.dialect.name != "postgresql":
        return True  # SQLite: BEGIN IMMEDIATE already serialises every claim
    locked = conn.execute(
        select(t.MailAccount.id)
        .where(t.MailAccount.id == account_id)
        .with_for_update(skip_locked=True)
    ).first()
    return locked is not None


def _due_queries(lock: bool) -> list[Select]:
    queries = []
    for branch in _DUE_BRANCHES:
        query = (
            select(t.Message.id, t.Message.attempts, t.Message.state, t.Message.next_attempt_at)
            .where(t.Message.account_id == _ACCOUNT, branch)
            .order_by(t.Message.next_attempt_at, t.Message.id)
            .limit(bindparam("p_limit"))
        )
        queries.append(query.with_for_update(skip_locked=True) if lock else query)
    return queries


# Locked on PostgreSQL (rows another claim holds are skipped); SQLite's claim holds
# the write lock from its first statement instead.
_DUE_MESSAGES = {True: _due_queries(lock=True), False: _due_queries(lock=False)}


def _due_messages(conn: Connection, account_id: int, now: datetime, limit: int) -> list[Any]:
    """The account's ``limit`` most overdue messages (locked on PostgreSQL)."""
    params = {"p_account_id": account_id, "p_now": now, "p_limit": limit}
    rows: list[Any] = []
    for query in _DUE_MESSAGES[conn.dialect.name == "postgresql"]:
        rows += conn.execute(query, params).all()
    rows.sort(key=lambda row: (row.next_attempt_at, row.id))
    return rows[:limit]


def _take(
    conn: Connection,
    account_id: int,
    rows: list[Any],
    worker: str,
    lease: timedelta,
    now: datetime,
) -> list[Claim]:
    abandoned = [r.id for r in rows if r.state == MessageState.SENDING.value]
    if abandoned:
        conn.execute(
            update(t.MessageAttempt)
            .where(t.MessageAttempt.message_id.in_(abandoned), t.MessageAttempt.outcome.is_(None))
            .values(
                outcome="abandoned",
                finished_at=now,
                detail="worker stopped or lease expired; outcome unknown",
            )
        )
    conn.execute(
        update(t.Message)
        .where(t.Message.id.in_([r.id for r in rows]))
        .values(
            state=MessageState.SENDING.value,
            locked_until=now + lease,
            locked_by=worker,
            attempts=t.Message.attempts + 1,
            updated_at=now,
        )
    )
    conn.execute(
        insert(t.MessageAttempt),
        [
            {
                "message_id": r.id,
                "account_id": account_id,
                "number": r.attempts + 1,
                "worker": worker,
                "started_at": now,
            }
            for r in rows
        ],
    )
    return [Claim(r.id, account_id, r.attempts + 1) for r in rows]


def claim(
    engine: Engine,
    worker: str,
    limit: int,
    lease: timedelta,
    now: datetime,
    account_id: int | None = None,
) -> list[Claim]:
    """Take up to ``limit`` due messages for ``worker`` and count one attempt on each.

    Accounts are visited oldest work first (or only ``account_id``); each gives
    at most what its rate limits and concurrency allow, so limits hold across
    any number of workers, and at most its share of ``limit``, so one company's
    backlog does not fill every claim while another company's mail waits.
    """
    claims: list[Claim] = []
    with write_transaction(engine) as conn:
        accounts = _due_accounts(conn, now, account_id)
        share = -(-limit // max(len(accounts), 1))  # ceiling division
        for account in accounts:
            wanted = min(share, limit - len(claims))
            if wanted <= 0:
                break
            if not _lock_account(conn, account.id):
                continue  # another worker is claiming for this account right now
            budget = account_budget(conn, account, now, wanted, worker)
            rows = _due_messages(conn, account.id, now, budget) if budget else []
            if rows:
                claims += _take(conn, account.id, rows, worker, lease, now)
    return claims


# Built once with bound parameters: the worker records every message with these,
# and building and hashing a fresh UPDATE each time cost more than running it.
# An UPDATE of a message only applies while the worker still holds its claim.
_OWNED = update(t.Message).where(
    t.Message.id == bindparam("p_message_id"),
    t.Message.locked_by == bindparam("p_worker"),
    t.Message.state == MessageState.SENDING.value,
)
_ATTEMPT = update(t.MessageAttempt).where(
    t.MessageAttempt.message_id == bindparam("p_message_id"),
    t.MessageAttempt.number == bindparam("p_attempt"),
)
_MARK_SENT = _OWNED.values(
    state=MessageState.SENT.value,
    sent_at=bindparam("p_now"),
    smtp_code=bindparam("p_code"),
    server_reply=bindparam("p_reply"),
    last_error=None,
    locked_until=None,
    updated_at=bindparam("p_now"),
)
_FINISH_SENT = _ATTEMPT.values(
    outcome="sent",
    smtp_code=bindparam("p_code"),
    detail=bindparam("p_reply"),
    finished_at=bindparam("p_now"),
)

# PostgreSQL runs both as one statement (the attempt's UPDATE in a WITH clause runs
# to completion whatever the outer one matches) and in autocommit: one round trip
# instead of four (BEGIN, two UPDATEs, COMMIT), and still one atomic commit.
_MARK_SENT_ONE_STATEMENT = _MARK_SENT.add_cte(_FINISH_SENT.cte("finished_attempt"))
_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


def _claim_params(claim: Claim, worker: str | None = None) -> dict[str, object]:
    params: dict[str, object] = {"p_message_id": claim.message_id, "p_attempt": claim.attempt}
    if worker is not None:
        params["p_worker"] = worker
    return params


def _finish_attempt(
    conn: Connection,
    claim: Claim,
    outcome: str,
    code: int | None,
    detail: str | None,
    now: datetime,
) -> None:
    conn.execute(
        _ATTEMPT.values(outcome=outcome, smtp_code=code, detail=detail, finished_at=now),
        _claim_params(claim),
    )


def mark_sent(
    engine: Engine, worker: str, claim: Claim, code: int, reply: str, now: datetime
) -> bool:
    """Record success; False if this worker no longer owns the message (lease lost)."""
    params = {**_claim_params(claim, worker), "p_code": code, "p_reply": clip(reply), "p_now": now}
    if engine.dialect.name == "postgresql":
        return _mark_sent_unpinged(engine, params)
    with engine.begin() as conn:
        result = conn.execute(_MARK_SENT, params)
        conn.execute(_FINISH_SENT, params)
        return bool(result.rowcount)


def _mark_sent_unpinged(engine: Engine, params: dict[str, object]) -> bool:
    # Once per message, so without the checkout ping (a round trip). On a dead
    # connection (the database restarted) the pool is renewed and the statement
    # runs again: safe, it only matches the message while this worker holds it.
    for attempt in (1, 2):
        try:
            with without_ping(), engine.connect().execution_options(**_AUTOCOMMIT) as conn:
                return bool(conn.execute(_MARK_SENT_ONE_STATEMENT, params).rowcount)
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


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
    """Record a failed attempt: retry later (``retrying``/``queued``) or give up (``failed``,
    or ``sent`` when earlier attempts delivered to some recipients).

    The server's reply and the error are kept to their first 2,000 characters.
    """
    error, reply = clip(error) or "", clip(reply)
    values: dict[str, object] = {
        "state": state.value,
        "last_error": error,
        "smtp_code": code,
        "server_reply": reply,
    }
    # ``sent`` here: the attempt failed, but an earlier one reached other recipients.
    outcome = "failed" if state is MessageState.SENT else state.value
    return _record_attempt(
        engine, worker, claim, values, next_attempt_at, (outcome, code, error), now
    )


def _record_attempt(
    engine: Engine,
    worker: str,
    claim: Claim,
    values: dict[str, object],
    next_attempt_at: datetime | None,
    attempt: tuple[str, int | None, str | None],
    now: datetime,
) -> bool:
    """Update the message (while this worker owns it) and finish its attempt, in one commit."""
    values = {**values, "locked_until": None, "updated_at": now}
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    with engine.begin() as conn:
        result = conn.execute(_OWNED.values(**values), _claim_params(claim, worker))
        _finish_attempt(conn, claim, *attempt, now)
        return bool(result.rowcount)


def mark_partial(
    engine: Engine,
    worker: str,
    claim: Claim,
    *,
    state: MessageState,
    next_attempt_at: datetime | None,
    code: int,
    reply: str,
    error: str,
    detail: str,
    attempt_outcome: str,
    now: datetime,
) -> bool:
    """Record an attempt the server accepted for some recipients and refused for others.

    ``sent_at`` keeps the first acceptance; ``detail`` holds one line per recipient
    (``domain.recipient_states``), ``error`` says who did not get it and why.
    """
    values: dict[str, object] = {
        "state": state.value,
        "sent_at": func.coalesce(t.Message.sent_at, now),
        "smtp_code": code,
        "server_reply": reply,
        "last_error": error,
    }
    return _record_attempt(
        engine, worker, claim, values, next_attempt_at, (attempt_outcome, code, detail), now
    )


def release(engine: Engine, worker: str, claims: list[Claim], now: datetime) -> None:
    """Give claimed-but-unsent messages back (graceful shutdown, paused account)."""
    with engine.begin() as conn:
        for item in claims:
            conn.execute(
                _OWNED.values(
                    state=MessageState.QUEUED.value,
                    locked_until=None,
                    attempts=t.Message.attempts - 1,
                    updated_at=now,
                ),
                _claim_params(item, worker),
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


class Draft(Protocol):
    """What ``insert_messages`` needs of a message (``services.sending.MessageDraft``)."""

    values: dict[str, Any]
    attachments: list[dict[str, object]]
    document_ids: list[int]


def insert_messages(session: Session, drafts: Sequence[Draft]) -> list[int]:
    """Insert messages with one multi-row statement per table; return their ids in order.

    A batch chunk queues hundreds of emails: one INSERT per table instead of an
    ORM flush per message. Drafts come from one builder, so they name the same
    columns; SQLAlchemy fills the other columns' defaults.
    """
    if not drafts:
        return []
    rows = [draft.values for draft in drafts]
    statement = insert(t.table_of(t.Message)).returning(t.Message.id, sort_by_parameter_order=True)
    ids = list(session.scalars(statement, rows))
    attachments = [
        {"message_id": message_id, **a}
        for message_id, draft in zip(ids, drafts, strict=True)
        for a in draft.attachments
    ]
    links = [
        {"message_id": message_id, "document_id": document_id}
        for message_id, draft in zip(ids, drafts, strict=True)
        for document_id in draft.document_ids
    ]
    if attachments:
        session.execute(insert(t.table_of(t.MessageAttachment)), attachments)
    if links:
        session.execute(insert(t.table_of(t.MessageDocument)), links)
    return ids


NOTIFY_CHANNEL = "docmail_outbox"


def notify_queued(session: Session) -> None:
    """Wake listening workers on PostgreSQL; delivered only if the transaction commits."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


def requeue(
    session: Session,
    now: datetime,
    *,
    company_id: int,
    states: list[str],
    message_ids: list[int] | None = None,
    batch_id: int | None = None,
    account_id: int | None = None,
) -> int:
    """Put messages back in the queue with a fresh retry budget; return how many."""
    query = update(t.Message).where(t.Message.company_id == company_id, t.Message.state.in_(states))
    if message_ids is not None:
        query = query.where(t.Message.id.in_(message_ids))
    if batch_id is not None:
        query = query.where(t.Message.batch_id == batch_id)
    if account_id is not None:
        query = query.where(t.Message.account_id == account_id)
    result = session.execute(
        query.values(
            state=MessageState.QUEUED.value,
            next_attempt_at=now,
            queued_at=now,
            attempts_at_queue=t.Message.attempts,
            locked_until=None,
            updated_at=now,
        )
    )
    notify_queued(session)
    return int(result.rowcount)  # type: ignore[attr-defined]
