"""Operating the outbox: pause and resume, bulk requeue, graceful stop, health, metrics."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from docmail.domain.outbox import RetryPolicy
from docmail.http.app import create_app
from docmail.services.companies import create_api_token
from docmail.services.runtime import Role, Runtime
from docmail.worker.pool import WorkerPool
from docmail.worker.worker import Worker
from tests.support.outbox import company_with_account, queue_invoices, states
from tests.support.smtp_server import SmtpTestServer


def _client(runtime: Runtime, company_id: int) -> TestClient:
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    token = create_api_token(runtime, company_id, "ops", Role.ADMIN)
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def _drain(runtime: Runtime) -> int:
    return Worker(runtime, "ops-worker", RetryPolicy(base_delay=timedelta(0))).drain()


def test_a_paused_company_sends_nothing_until_resumed(
    runtime: Runtime, smtp_server_plain: SmtpTestServer
) -> None:
    actor, _ = company_with_account(runtime, smtp_server_plain.port)
    api = _client(runtime, actor.company_id)
    paused = api.post("/api/v1/company/pause", json={"reason": "month-end review"}).json()
    assert paused["sending_paused"] is True and paused["pause_reason"] == "month-end review"
    queue_invoices(runtime, actor, 3)
    assert _drain(runtime) == 0
    assert states(runtime) == Counter({"queued": 3})
    api.post("/api/v1/company/resume")
    assert _drain(runtime) == 3
    assert len(smtp_server_plain.wait_for(3)) == 3


def test_a_paused_account_keeps_its_messages_queued_with_the_reason_shown(
    runtime: Runtime, smtp_server_plain: SmtpTestServer
) -> None:
    actor, account_id = company_with_account(runtime, smtp_server_plain.port)
    api = _client(runtime, actor.company_id)
    shown = api.post(f"/api/v1/accounts/{account_id}/pause", json={"reason": "quota"}).json()
    assert shown["paused"] is True and shown["pause_reason"] == "quota"
    queue_invoices(runtime, actor, 2)
    assert _drain(runtime) == 0
    resumed = api.post(f"/api/v1/accounts/{account_id}/resume").json()
    assert resumed["paused"] is False and resumed["pause_reason"] is None
    assert _drain(runtime) == 2


def test_failed_messages_are_requeued_in_bulk_with_a_fresh_retry_budget(
    runtime: Runtime, smtp_server_plain: SmtpTestServer
) -> None:
    actor, _ = company_with_account(runtime, smtp_server_plain.port)
    api = _client(runtime, actor.company_id)
    queue_invoices(runtime, actor, 4)
    smtp_server_plain.fail_next(554, "5.7.1 Rejected by policy", count=3, at="data")
    _drain(runtime)
    assert states(runtime) == Counter({"failed": 3, "sent": 1})
    assert api.post("/api/v1/messages/requeue", json={"state": "sent"}).status_code == 422
    assert api.post("/api/v1/messages/requeue", json={"state": "failed"}).json() == {"requeued": 3}
    _drain(runtime)
    assert states(runtime) == Counter({"sent": 4})
    assert len(smtp_server_plain.wait_for(4)) == 4


def test_stopping_a_worker_releases_the_messages_it_had_not_started(
    runtime: Runtime, smtp_server_plain: SmtpTestServer
) -> None:
    actor, _ = company_with_account(runtime, smtp_server_plain.port)
    queue_invoices(runtime, actor, 6)
    smtp_server_plain.stall_seconds = 0.3
    pool = WorkerPool(runtime, 1).start()
    smtp_server_plain.wait_for(1, timeout=10)
    pool.stop()
    now = states(runtime)
    assert now["sending"] == 0, "nothing is left locked by the stopped worker"
    assert now["sent"] >= 1 and now["sent"] + now["queued"] == 6
    smtp_server_plain.stall_seconds = 0
    _drain(runtime)
    assert states(runtime) == Counter({"sent": 6})
    assert len(smtp_server_plain.messages) == 6


def test_health_reports_the_queue_and_the_workers_alive(
    runtime: Runtime, smtp_server_plain: SmtpTestServer
) -> None:
    actor, _ = company_with_account(runtime, smtp_server_plain.port)
    api = _client(runtime, actor.company_id)
    api.post("/api/v1/company/pause", json={})
    queue_invoices(runtime, actor, 2)
    pool = WorkerPool(runtime, 1).start()
    try:
        deadline = time.monotonic() + 5
        body = api.get("/api/v1/health").json()
        while body["workers_alive"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
            body = api.get("/api/v1/health").json()
    finally:
        pool.stop()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["workers_alive"] == 1 and body["queued"] == 2
    assert body["oldest_queued_age_seconds"] >= 0


def test_metrics_are_off_by_default_and_need_their_token(
    database_url: str, tmp_path: Path, smtp_server_plain: SmtpTestServer
) -> None:
    from tests.support.app import make_runtime

    runtime = make_runtime(database_url, tmp_path / "data")
    actor, _ = company_with_account(runtime, smtp_server_plain.port)
    assert _client(runtime, actor.company_id).get("/metrics").status_code == 404
    runtime.settings = runtime.settings.with_overrides(metrics_token="scrape-me")
    queue_invoices(runtime, actor, 2)
    _drain(runtime)
    api = TestClient(create_app(runtime))
    assert api.get("/metrics").status_code == 401
    text = api.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).text
    assert 'docmail_messages{state="sent"} 2.0' in text
    assert 'docmail_messages{state="queued"} 0.0' in text
    assert "docmail_oldest_queued_age_seconds 0.0" in text
    assert 'docmail_delivery_attempts_total{outcome="sent"} 2.0' in text


@pytest.mark.postgres
def test_postgres_workers_wake_on_notify_without_waiting_for_their_poll(
    postgres_url: str, tmp_path: Path, smtp_server_plain: SmtpTestServer
) -> None:
    from tests.conftest import _truncate_all
    from tests.support.app import make_runtime

    _truncate_all(postgres_url)
    runtime = make_runtime(postgres_url, tmp_path / "data")
    runtime.settings = runtime.settings.with_overrides(worker_poll_seconds=30.0)
    actor, _ = company_with_account(runtime, smtp_server_plain.port)
    listener_runtime = make_runtime(postgres_url, tmp_path / "data2")
    listener_runtime.secrets = runtime.secrets
    listener_runtime.settings = runtime.settings
    pool = WorkerPool(listener_runtime, 1).start()
    try:
        time.sleep(0.5)  # the worker has polled once and now sleeps for 30 s
        started = time.monotonic()
        queue_invoices(runtime, actor, 1)  # another runtime: only NOTIFY can wake the pool
        smtp_server_plain.wait_for(1, timeout=10)
        assert time.monotonic() - started < 5
    finally:
        pool.stop()
