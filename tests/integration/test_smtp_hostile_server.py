"""A mail server that never stops talking cannot hold the worker: every SMTP transaction
ends by its deadline, replies are capped, and what is stored of a reply is short."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from docmail.adapters.db import tables as t
from docmail.adapters.smtp.transport import SmtpSettings, SmtpTransport
from docmail.domain.outbox import RetryPolicy
from docmail.errors import TransientDeliveryError
from docmail.services.runtime import Runtime
from docmail.worker.worker import Worker
from tests.support.outbox import company_with_account, queue_invoices

Talk = Callable[[socket.socket], None]


def _endless_greeting(pause: float) -> Talk:
    def talk(conn: socket.socket) -> None:
        while True:
            conn.sendall(b"220-still greeting you " + b"." * 60 + b"\r\n")
            time.sleep(pause)

    return talk


def _answers(data_reply: bytes) -> Talk:
    """A plain SMTP dialogue whose reply to the end of DATA is ``data_reply``."""

    def talk(conn: socket.socket) -> None:
        conn.sendall(b"220 hostile.test ready\r\n")
        reader = conn.makefile("rb")
        while line := reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                conn.sendall(b"250 hostile.test\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go on\r\n")
                while reader.readline() not in (b".\r\n", b""):
                    pass
                conn.sendall(data_reply)
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")

    return talk


@pytest.fixture
def hostile() -> Iterator[Callable[[Talk], int]]:
    """Start a server on 127.0.0.1 that runs ``talk`` on each connection; gives its port."""
    servers: list[socket.socket] = []

    def start(talk: Talk) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def serve() -> None:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                threading.Thread(target=_quietly, args=(talk, conn), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
        return int(server.getsockname()[1])

    yield start
    for server in servers:
        server.close()


def _quietly(talk: Talk, conn: socket.socket) -> None:
    with conn, contextlib.suppress(OSError):  # the client hung up, as it should
        talk(conn)


def _settings(port: int, timeout: float, deadline: float) -> SmtpSettings:
    return SmtpSettings(
        host="127.0.0.1", port=port, security="none", timeout=timeout, deadline=deadline
    )


@pytest.mark.parametrize("pause", [0.0, 0.05], ids=["fast", "trickling"])
def test_an_endless_greeting_ends_in_a_transient_failure_within_the_deadline(
    hostile: Callable[[Talk], int], pause: float
) -> None:
    port = hostile(_endless_greeting(pause))
    transport = SmtpTransport(_settings(port, timeout=5.0, deadline=1.5))
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError) as failure:
        transport.send("a@b.example", ["c@d.example"], b"Subject: x\r\n\r\nhi\r\n")
    took = time.monotonic() - started
    transport.close()

    assert took < 4.0, f"gave up after {took:.1f} s (deadline 1.5 s, step timeout 5 s)"
    assert "could not connect" in failure.value.message


def test_a_megabyte_reply_to_data_is_cut_off_and_the_attempt_stays_retryable(
    hostile: Callable[[Talk], int],
) -> None:
    huge = b"".join(b"250-" + b"x" * 996 + b"\r\n" for _ in range(1024)) + b"250 ok\r\n"
    port = hostile(_answers(huge))
    transport = SmtpTransport(_settings(port, timeout=5.0, deadline=5.0))
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError) as failure:
        transport.send("a@b.example", ["c@d.example"], b"Subject: x\r\n\r\nhi\r\n")
    transport.close()

    assert time.monotonic() - started < 5.0
    assert "may already have accepted" in failure.value.message, "after DATA: outcome unknown"
    assert len(failure.value.message) < 500


def test_a_long_refusal_is_stored_on_the_message_and_its_attempt_cut_to_2000_characters(
    runtime: Runtime, hostile: Callable[[Talk], int]
) -> None:
    lines = b"".join(b"550-5.7.1 " + b"refused " * 120 + b"\r\n" for _ in range(50))
    port = hostile(_answers(lines + b"550 5.7.1 no\r\n"))  # ~50 KB, under the reply caps
    actor, _ = company_with_account(runtime, port)
    queue_invoices(runtime, actor, 1)

    Worker(runtime, "hostile", RetryPolicy(max_attempts=1, base_delay=timedelta(0))).drain()

    with runtime.session() as session:
        message = session.scalars(select(t.Message)).one()
        attempt = session.scalars(select(t.MessageAttempt)).one()
    assert message.state == "failed"
    assert message.smtp_code == 550
    assert message.server_reply is not None and "refused refused" in message.server_reply
    for stored in (message.server_reply, message.last_error, attempt.detail):
        assert stored is not None and len(stored) <= 2000, len(stored or "")
