"""A worker process killed with SIGKILL mid-batch: after a restart every message goes out.

The only duplicate allowed is the documented one: the message that was in flight
when the worker died (its attempt is logged as "abandoned").
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from docmail.adapters.db import tables as t
from docmail.services.runtime import Runtime
from tests.support.outbox import (
    ambiguous_message_ids,
    company_with_account,
    queue_invoices,
    start_worker,
    states,
    wait_until_final,
)
from tests.support.smtp_server import SmtpTestServer

COUNT = 40


def test_a_killed_worker_loses_nothing_and_duplicates_only_the_message_in_flight(
    runtime: Runtime, smtp_server_plain: SmtpTestServer, tmp_path: Path
) -> None:
    smtp_server_plain.stall_seconds = 0.03  # slow enough to kill the worker mid-batch
    actor, _ = company_with_account(runtime, smtp_server_plain.port)
    queue_invoices(runtime, actor, COUNT)

    first = start_worker(runtime, tmp_path / "worker1.log")
    smtp_server_plain.wait_for(8, timeout=30)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert states(runtime)["sent"] < COUNT, "the worker finished before it was killed"

    second = start_worker(runtime, tmp_path / "worker2.log")
    final = wait_until_final(runtime, timeout=60)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=20) == 0, (tmp_path / "worker2.log").read_text()

    assert final == Counter({"sent": COUNT})
    received = Counter(str(m.message["Message-ID"]) for m in smtp_server_plain.messages)
    with runtime.session() as session:
        ids = set(session.scalars(select(t.Message.message_id_header)))
    assert set(received) == ids, "every queued message arrived"
    duplicates = {mid for mid, n in received.items() if n > 1}
    assert duplicates <= ambiguous_message_ids(runtime), "a duplicate outside the crash window"
    assert len(duplicates) <= 2, "at most the in-flight message of each killed thread"


def _received_once_each(runtime: Runtime, server: SmtpTestServer) -> set[str]:
    """Check every queued message arrived; return the Message-IDs that arrived twice."""
    received = Counter(str(m.message["Message-ID"]) for m in server.messages)
    with runtime.session() as session:
        ids = set(session.scalars(select(t.Message.message_id_header)))
    assert set(received) == ids, "every queued message arrived"
    return {mid for mid, n in received.items() if n > 1}


def test_after_a_sigkill_a_restarted_worker_takes_over_in_seconds_not_when_the_lease_ends(
    runtime: Runtime, smtp_server_plain: SmtpTestServer, tmp_path: Path
) -> None:
    count = 300
    smtp_server_plain.stall_seconds = 0.02
    actor, _ = company_with_account(runtime, smtp_server_plain.port)
    queue_invoices(runtime, actor, count)
    lease = {"DOCMAIL_WORKER_LEASE_SECONDS": "300"}  # the default: recovery must not wait for it

    first = start_worker(runtime, tmp_path / "worker1.log", **lease)
    smtp_server_plain.wait_for(100, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert states(runtime)["sending"] > 0, "the killed worker held claims"

    started = time.monotonic()
    second = start_worker(runtime, tmp_path / "worker2.log", **lease)
    final = wait_until_final(runtime, timeout=60)
    recovered = time.monotonic() - started
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=20) == 0, (tmp_path / "worker2.log").read_text()

    assert final == Counter({"sent": count})
    assert recovered < 30, f"everything delivered {recovered:.1f} s after the restart"
    duplicates = _received_once_each(runtime, smtp_server_plain)
    assert duplicates <= ambiguous_message_ids(runtime), "a duplicate outside the crash window"
    assert len(duplicates) <= 2, "at most the in-flight message of each killed thread"


def test_a_send_slower_than_the_lease_keeps_its_claim_and_is_not_sent_twice(
    runtime: Runtime, smtp_server_plain: SmtpTestServer, tmp_path: Path
) -> None:
    smtp_server_plain.stall_seconds = 3.0  # each DATA takes longer than the 2 s lease
    actor, _ = company_with_account(runtime, smtp_server_plain.port)
    queue_invoices(runtime, actor, 2)

    worker = start_worker(runtime, tmp_path / "worker.log", concurrency=2)  # lease: 2 s
    final = wait_until_final(runtime, timeout=60)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0, (tmp_path / "worker.log").read_text()

    assert final == Counter({"sent": 2})
    assert _received_once_each(runtime, smtp_server_plain) == set(), "a message was sent twice"
    assert ambiguous_message_ids(runtime) == set(), "no claim was taken over"
