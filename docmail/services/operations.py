"""Running the outbox: pausing and resuming sending, requeueing, and reading its health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from docmail.adapters.db import outbox_store as store
from docmail.adapters.db import tables as t
from docmail.domain.outbox import MessageState
from docmail.errors import NotFound, ValidationError
from docmail.services import audit
from docmail.services.runtime import Actor, Role, Runtime

WORKER_ALIVE_WINDOW = timedelta(seconds=60)


def pause_company(runtime: Runtime, actor: Actor, reason: str) -> None:
    """Stop all sending of the company; queued messages wait, nothing fails."""
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        company = session.get_one(t.Company, actor.company_id)
        company.sending_paused, company.pause_reason = True, reason or "paused by an admin"
        detail = {"reason": company.pause_reason}
        audit.record(session, actor, "company.paused", f"company:{company.id}", detail)


def resume_company(runtime: Runtime, actor: Actor) -> None:
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        company = session.get_one(t.Company, actor.company_id)
        company.sending_paused, company.pause_reason = False, None
        audit.record(session, actor, "company.resumed", f"company:{company.id}")
        store.notify_queued(session)
    runtime.wakeup()


def set_account_paused(
    runtime: Runtime, actor: Actor, account_id: int, paused: bool, reason: str = ""
) -> t.MailAccount:
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        account = session.get(t.MailAccount, account_id)
        if account is None or account.company_id != actor.company_id:
            raise NotFound(
                f"mail account {account_id} not found", field="account_id", value=account_id
            )
        account.paused = paused
        account.pause_reason = (reason or "paused by an admin") if paused else None
        action = "account.paused" if paused else "account.resumed"
        target = f"account:{account.id} {account.name}"
        audit.record(session, actor, action, target, {"reason": account.pause_reason})
        if not paused:
            store.notify_queued(session)
    runtime.wakeup()
    return account


def requeue_messages(
    runtime: Runtime,
    actor: Actor,
    *,
    message_ids: list[int] | None = None,
    account_id: int | None = None,
    batch_id: int | None = None,
    state: str = MessageState.FAILED.value,
) -> int:
    """Give failed (or cancelled) messages a fresh retry budget; return how many."""
    actor.require(Role.SENDER)
    if state not in (MessageState.FAILED.value, MessageState.CANCELLED.value):
        raise ValidationError(
            f"state {state!r}: only failed or cancelled messages can be requeued",
            field="state",
            value=state,
        )
    with runtime.session() as session:
        count = store.requeue(
            session,
            runtime.clock(),
            company_id=actor.company_id,
            states=[state],
            message_ids=message_ids,
            batch_id=batch_id,
            account_id=account_id,
        )
    runtime.wakeup()
    return count


@dataclass(frozen=True)
class OutboxHealth:
    """Installation-wide numbers for health checks and metrics (no tenant data)."""

    by_state: dict[str, int]
    oldest_queued_age_seconds: float
    retry_attempts: int
    attempts_by_outcome: dict[str, int]
    workers_alive: int
    accounts_paused: int
    companies_paused: int


def outbox_health(runtime: Runtime) -> OutboxHealth:
    now = runtime.clock()
    with runtime.read_session() as session:
        by_state = dict(
            session.execute(select(t.Message.state, func.count()).group_by(t.Message.state)).all()
        )
        oldest = session.scalar(
            select(func.min(t.Message.queued_at)).where(
                t.Message.state.in_([MessageState.QUEUED.value, MessageState.RETRYING.value])
            )
        )
        outcomes = dict(
            session.execute(
                select(t.MessageAttempt.outcome, func.count()).group_by(t.MessageAttempt.outcome)
            ).all()
        )
        alive = session.scalar(
            select(func.count()).where(t.WorkerHeartbeat.last_seen > now - WORKER_ALIVE_WINDOW)
        )
        paused_accounts = session.scalar(select(func.count()).where(t.MailAccount.paused.is_(True)))
        paused_companies = session.scalar(
            select(func.count()).where(t.Company.sending_paused.is_(True))
        )
    return OutboxHealth(
        by_state={s.value: int(by_state.get(s.value, 0)) for s in MessageState},
        oldest_queued_age_seconds=_age(oldest, now),
        retry_attempts=int(outcomes.get(MessageState.RETRYING.value, 0)),
        attempts_by_outcome={str(k or "in_flight"): int(v) for k, v in outcomes.items()},
        workers_alive=int(alive or 0),
        accounts_paused=int(paused_accounts or 0),
        companies_paused=int(paused_companies or 0),
    )


def _age(oldest: datetime | None, now: datetime) -> float:
    return max((now - oldest).total_seconds(), 0.0) if oldest else 0.0


def beat(runtime: Runtime, worker: str, sent: int) -> None:
    """Record that ``worker`` is alive (and how many it sent since the last beat)."""
    now = runtime.clock()
    with runtime.session() as session:
        row = session.get(t.WorkerHeartbeat, worker)
        if row is None:
            session.add(t.WorkerHeartbeat(name=worker, started_at=now, last_seen=now, sent=sent))
        else:
            row.last_seen, row.sent = now, row.sent + sent


def forget_worker(runtime: Runtime, worker: str) -> None:
    with runtime.session() as session:
        session.execute(
            update(t.WorkerHeartbeat)
            .where(t.WorkerHeartbeat.name == worker)
            .values(last_seen=runtime.clock() - WORKER_ALIVE_WINDOW * 2)
        )
