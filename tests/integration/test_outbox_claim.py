"""Which messages a claim takes, and that finding them does not read the whole queue."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, insert, select

from docmail.adapters.db import outbox_store as store
from docmail.adapters.db import tables as t
from docmail.services.accounts import create_account
from docmail.services.inputs import AccountIn
from docmail.services.runtime import Actor, Runtime
from tests.support.outbox import company_with_account, outbox_row

LEASE = timedelta(minutes=5)


def _second_account(runtime: Runtime, actor: Actor) -> int:
    account = create_account(
        runtime,
        actor,
        AccountIn(
            name="other",
            host="127.0.0.1",
            port=2,
            security="none",
            from_email="otra@outbox.mx",
        ),
    )
    return account.id


def _message(runtime: Runtime, actor: Actor, account_id: int, **fields: Any) -> int:
    """One outbox row with the given state and times (set up directly: the claim is under test)."""
    row = outbox_row(actor, account_id, runtime.clock(), **fields)
    with runtime.engine.begin() as conn:
        return int(conn.execute(insert(t.Message).returning(t.Message.id), row).scalar_one())


def _claim(runtime: Runtime, limit: int, now: datetime) -> list[int]:
    return [c.message_id for c in store.claim(runtime.engine, "w1", limit, LEASE, now)]


def test_a_claim_takes_the_most_overdue_messages_first_whatever_their_state(
    runtime: Runtime,
) -> None:
    actor, account = company_with_account(runtime, 2)
    now = runtime.clock()
    queued = _message(runtime, actor, account, next_attempt_at=now - timedelta(minutes=5))
    retrying = _message(
        runtime, actor, account, state="retrying", next_attempt_at=now - timedelta(minutes=10)
    )
    abandoned = _message(
        runtime,
        actor,
        account,
        state="sending",
        attempts=1,
        locked_by="dead-worker",
        locked_until=now - timedelta(seconds=1),
        next_attempt_at=now - timedelta(minutes=7),
    )
    _message(runtime, actor, account, next_attempt_at=now + timedelta(minutes=5))  # not yet due
    _message(  # another worker is sending it right now
        runtime,
        actor,
        account,
        state="sending",
        locked_by="live-worker",
        locked_until=now + LEASE,
        next_attempt_at=now - timedelta(minutes=30),
    )

    assert _claim(runtime, 2, now) == [retrying, abandoned]
    assert _claim(runtime, 10, now) == [queued]
    assert _claim(runtime, 10, now) == []
    with runtime.session() as session:
        attempts = session.scalar(select(t.Message.attempts).where(t.Message.id == abandoned))
    assert attempts == 2, "taking over an abandoned message counts a new attempt"


def test_accounts_are_served_oldest_work_first_and_a_paused_account_waits(
    runtime: Runtime,
) -> None:
    actor, first = company_with_account(runtime, 2)
    second = _second_account(runtime, actor)
    now = runtime.clock()
    newer = _message(runtime, actor, first, next_attempt_at=now - timedelta(minutes=1))
    older = _message(runtime, actor, second, next_attempt_at=now - timedelta(minutes=10))

    store.pause_account(runtime.engine, second, "login refused", now)
    assert _claim(runtime, 1, now) == [newer]

    third = _message(runtime, actor, first, next_attempt_at=now - timedelta(minutes=2))
    with runtime.engine.begin() as conn:
        conn.execute(t.MailAccount.__table__.update().values(paused=False))
    assert _claim(runtime, 1, now) == [older], "the account with the oldest work goes first"
    assert _claim(runtime, 5, now) == [third]


def _vm_steps_of_a_claim(runtime: Runtime, now: datetime) -> int:
    """SQLite virtual-machine instructions run by one claim of 10 (in hundreds)."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    def watch(dbapi_conn: Any, *_: Any) -> None:
        dbapi_conn.set_progress_handler(count, 100)

    event.listen(runtime.engine, "checkout", watch)
    runtime.engine.dispose()  # connections checked out from here on are watched
    try:
        assert len(_claim(runtime, 10, now)) == 10
    finally:
        event.remove(runtime.engine, "checkout", watch)
        runtime.engine.dispose()
    return steps


def test_a_claim_costs_the_same_with_a_short_or_a_long_queue(runtime: Runtime) -> None:
    """Counted in SQLite VM instructions, not timed: the work must not grow with the queue."""
    if runtime.engine.dialect.name != "sqlite":
        return  # PostgreSQL plans by table statistics; bench/throughput.py measures it there
    actor, account = company_with_account(runtime, 2)
    now = runtime.clock()
    due = {"next_attempt_at": now - timedelta(minutes=1)}
    for _ in range(40):
        _message(runtime, actor, account, **due)
    short = _vm_steps_of_a_claim(runtime, now)
    with runtime.engine.begin() as conn:
        conn.execute(
            insert(t.Message), [outbox_row(actor, account, now, **due) for _ in range(5000)]
        )
    long = _vm_steps_of_a_claim(runtime, now)
    assert short > 0, "the progress handler saw the claim"
    assert long < 2 * short, f"{short}00 instructions with 30 waiting, {long}00 with 5,030"


def _recorded(runtime: Runtime, message_id: int) -> tuple[Any, ...]:
    with runtime.session() as session:
        message = session.get_one(t.Message, message_id)
        attempt = session.scalars(
            select(t.MessageAttempt).where(t.MessageAttempt.message_id == message_id)
        ).one()
        return (message.state, message.smtp_code, message.locked_by is not None, attempt.outcome,
                attempt.smtp_code, attempt.detail)  # fmt: skip


def test_marking_sent_records_the_message_and_its_attempt_together(runtime: Runtime) -> None:
    actor, account = company_with_account(runtime, 2)
    message = _message(runtime, actor, account)
    (claimed,) = store.claim(runtime.engine, "w1", 10, LEASE, runtime.clock())

    assert store.mark_sent(runtime.engine, "w1", claimed, 250, "2.0.0 queued", runtime.clock())
    state, code, _, outcome, attempt_code, detail = _recorded(runtime, message)
    assert (state, code, outcome, attempt_code, detail) == (
        "sent", 250, "sent", 250, "2.0.0 queued"
    )  # fmt: skip


def test_a_worker_that_lost_its_lease_does_not_mark_the_message_but_its_attempt_is_kept(
    runtime: Runtime,
) -> None:
    actor, account = company_with_account(runtime, 2)
    message = _message(runtime, actor, account)
    (claimed,) = store.claim(runtime.engine, "w1", 10, LEASE, runtime.clock())

    assert not store.mark_sent(runtime.engine, "w2", claimed, 250, "ok", runtime.clock())
    state, _, locked, outcome, _, detail = _recorded(runtime, message)
    # The message stays w1's; the attempt says the server took it (it did).
    assert (state, locked, outcome, detail) == ("sending", True, "sent", "ok")
