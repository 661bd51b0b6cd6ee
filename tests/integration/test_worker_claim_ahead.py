"""A worker claims an account's next messages while the server still reads the last one."""

from __future__ import annotations

import dataclasses
from collections import Counter

from sqlalchemy import func, select

from docmail.adapters.db import tables as t
from docmail.services.runtime import Runtime
from docmail.worker import worker as worker_module
from docmail.worker.worker import Worker
from tests.support.outbox import company_with_account, queue_invoices, states
from tests.support.smtp_server import ReceivedMessage, SmtpTestServer


def _worker_with_queued(
    runtime: Runtime, server: SmtpTestServer, batch_size: int, count: int
) -> Worker:
    """``count`` invoice emails queued for ``server``, and a worker claiming ``batch_size``."""
    runtime.settings = dataclasses.replace(runtime.settings, worker_batch_size=batch_size)
    actor, _ = company_with_account(runtime, server.port)
    queue_invoices(runtime, actor, count)
    return Worker(runtime, "ahead")


def _each_once(server: SmtpTestServer, count: int) -> None:
    ids = Counter(str(m.message["Message-ID"]) for m in server.messages)
    assert len(ids) == count and set(ids.values()) == {1}


def test_one_pass_sends_more_than_one_claim_over_the_same_connection(
    runtime: Runtime, smtp_server_plain: SmtpTestServer
) -> None:
    worker = _worker_with_queued(runtime, smtp_server_plain, 5, 23)

    assert worker.run_once() == 23, "five claims of five (the last one short) in one pass"
    worker.close_transports()

    assert states(runtime) == Counter({"sent": 23})
    _each_once(smtp_server_plain, 23)
    assert smtp_server_plain.connections == 1
    with runtime.session() as session:
        numbers = set(session.scalars(select(t.MessageAttempt.number)))
    assert numbers == {1}, "one attempt each, recorded as sent"


def test_claiming_ahead_stops_after_a_few_claims_so_the_worker_loop_gets_its_turn(
    runtime: Runtime, smtp_server_plain: SmtpTestServer
) -> None:
    worker = _worker_with_queued(runtime, smtp_server_plain, 2, 30)

    first = worker.run_once()
    assert first == 2 * (1 + worker_module.CLAIMS_AHEAD)
    assert states(runtime) == Counter({"sent": first, "queued": 30 - first})
    assert worker.run_once() == 30 - first
    worker.close_transports()
    _each_once(smtp_server_plain, 30)


def test_a_stopping_worker_gives_back_what_it_claimed_ahead(
    runtime: Runtime, smtp_server_plain: SmtpTestServer
) -> None:
    worker = _worker_with_queued(runtime, smtp_server_plain, 3, 12)
    record = smtp_server_plain._state.record

    def stop_after_four(message: ReceivedMessage) -> str:
        answer = record(message)
        if len(smtp_server_plain.messages) == 4:
            worker.stop()  # as SIGTERM would, while the fourth is on the wire
        return answer

    smtp_server_plain._state.record = stop_after_four  # type: ignore[method-assign]
    worker.run_once()
    worker.close_transports()

    sent = len(smtp_server_plain.messages)
    assert 4 <= sent < 12, "stopped after the message on the wire"
    assert states(runtime) == Counter({"sent": sent, "queued": 12 - sent})
    with runtime.session() as session:
        queued = session.execute(
            select(t.Message.attempts, t.Message.locked_until).where(t.Message.state == "queued")
        ).all()
        attempts = session.scalar(select(func.count()).select_from(t.MessageAttempt))
    assert all(row == (0, None) for row in queued), "given back as if never claimed"
    assert attempts == sent, "no attempt left behind for a message given back"
