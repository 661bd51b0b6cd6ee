"""Scaling out: several worker processes on one database, and pacing shared between them."""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from docmail.adapters.db import tables as t
from docmail.services.runtime import Actor, Runtime
from tests.support.outbox import (
    company_with_account,
    outbox_row,
    queue_invoices,
    start_worker,
    states,
)
from tests.support.smtp_server import SmtpTestServer


def _bulk_queue(runtime: Runtime, actor: Actor, account_id: int, count: int) -> None:
    """Insert ``count`` queued messages directly (setup shortcut: the drain is under test)."""
    now = runtime.clock()
    rows = [
        outbox_row(
            actor,
            account_id,
            now,
            to=[f"cliente{i % 50}@p1.mx"],
            subject=f"Factura S-{i}",
            body_html=f"<p>Factura S-{i}</p>",
            body_text=f"Factura S-{i}\n",
        )
        for i in range(count)
    ]
    with runtime.engine.begin() as conn:
        for start in range(0, count, 2000):
            conn.execute(insert(t.Message), rows[start : start + 2000])


@pytest.mark.postgres
@pytest.mark.slow
def test_three_worker_processes_drain_ten_thousand_messages_once_each(
    postgres_url: str, tmp_path: Path, smtp_server_plain: SmtpTestServer
) -> None:
    from tests.conftest import _truncate_all
    from tests.support.app import make_runtime

    _truncate_all(postgres_url)
    runtime = make_runtime(postgres_url, tmp_path / "data")
    actor, account_id = company_with_account(runtime, smtp_server_plain.port)
    _bulk_queue(runtime, actor, account_id, 10_000)
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    workers = [
        start_worker(runtime, log, concurrency=1, DOCMAIL_WORKER_BATCH_SIZE="50") for log in logs
    ]
    deadline = time.monotonic() + 240
    while states(runtime)["sent"] < 10_000 and time.monotonic() < deadline:
        time.sleep(0.5)
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker, log in zip(workers, logs, strict=True):
        assert worker.wait(timeout=30) == 0, log.read_text()[-2000:]

    assert states(runtime) == Counter({"sent": 10_000}), "no message left behind"
    received = Counter(str(m.message["Message-ID"]) for m in smtp_server_plain.messages)
    assert len(received) == 10_000 and max(received.values()) == 1, "no message sent twice"
    with runtime.session() as session:
        by_worker = Counter(
            session.scalars(
                select(t.MessageAttempt.worker).where(t.MessageAttempt.outcome == "sent")
            )
        )
    assert len(by_worker) == 3, f"all three workers took part: {by_worker}"


def test_a_rate_limit_holds_across_several_workers(
    runtime: Runtime, smtp_server_plain: SmtpTestServer, tmp_path: Path
) -> None:
    limit = 7
    actor, _ = company_with_account(runtime, smtp_server_plain.port, rate_per_minute=limit)
    queue_invoices(runtime, actor, 20)
    workers = [start_worker(runtime, tmp_path / f"w{i}.log", concurrency=2) for i in range(3)]
    smtp_server_plain.wait_for(limit, timeout=30)
    time.sleep(3)  # six polling workers had every chance to send more
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait(timeout=20) == 0
    assert len(smtp_server_plain.messages) == limit
    assert states(runtime) == Counter({"sent": limit, "queued": 20 - limit})
    with runtime.session() as session:
        started = list(session.scalars(select(t.MessageAttempt.started_at)))
    assert max(started) - min(started) < timedelta(minutes=1)


def test_concurrency_per_account_limits_how_many_workers_send_for_it(
    runtime: Runtime, smtp_server_plain: SmtpTestServer, tmp_path: Path
) -> None:
    actor, _ = company_with_account(runtime, smtp_server_plain.port, max_concurrency=1)
    queue_invoices(runtime, actor, 30)
    smtp_server_plain.stall_seconds = 0.02
    workers = [start_worker(runtime, tmp_path / f"w{i}.log", concurrency=2) for i in range(2)]
    smtp_server_plain.wait_for(30, timeout=60)
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
    with runtime.session() as session:
        attempts = session.execute(
            select(
                t.MessageAttempt.worker, t.MessageAttempt.started_at, t.MessageAttempt.finished_at
            ).order_by(t.MessageAttempt.started_at)
        ).all()
    # No two workers' attempts overlap in time: one holder at a time.
    assert len({w for w, _, _ in attempts}) >= 1
    for w1, start1, end1 in attempts:
        for w2, start2, end2 in attempts:
            if w1 != w2:
                assert end1 is not None and end2 is not None
                assert end1 <= start2 or end2 <= start1, "two workers sent at the same time"
