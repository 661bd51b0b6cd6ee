"""Faults from outside docmail: each ends in a clear state with nothing lost.

* the PostgreSQL server restarts while a worker sends a batch (a throwaway cluster,
  never the shared server);
* the disk of the data directory is full (a real 3 MB tmpfs);
* the SMTP server's certificate is not trusted;
* the mail server's host name does not resolve (the worker runs in a network
  namespace with only loopback, so no DNS query leaves the machine).
"""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from docmail.adapters.db import outbox_store as store
from docmail.adapters.db import tables as t
from docmail.adapters.db.engine import make_engine
from docmail.adapters.db.schema import migrate
from docmail.services.runtime import Runtime
from docmail.worker.worker import Worker
from tests.support.app import Tenant, make_runtime, make_tenant
from tests.support.outbox import (
    ambiguous_message_ids,
    company_with_account,
    queue_invoices,
    start_worker,
    states,
    wait_until_final,
)
from tests.support.postgres import PostgresServer, _throwaway_cluster
from tests.support.smtp_server import TEST_PASSWORD, TEST_USER, LocalCA, SmtpTestServer

API = "/api/v1"


# ---------------------------------------------------------------- helpers


def call(api: TestClient, method: str, path: str, expect: int, **kw: Any) -> Any:
    response = api.request(method, f"{API}{path}", **kw)
    assert response.status_code == expect, response.text
    return response.json()


def sqlite_runtime(template: Path, directory: Path, ca_file: str | None = None) -> Runtime:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, directory / "docmail.sqlite3")
    return make_runtime(f"sqlite:///{directory / 'docmail.sqlite3'}", directory, ca_file)


def tenant_with_account(runtime: Runtime, **account: Any) -> tuple[Tenant, int]:
    tenant = make_tenant(runtime)
    body = {"name": "Envíos", "from_email": "facturas@acme.mx", **account}
    account_id = call(tenant.client, "POST", "/accounts", 201, json=body)["id"]
    party = {"code": "C1", "name": "Cliente", "email": "pagos@cliente.mx"}
    call(tenant.client, "POST", "/parties", 201, json=party)
    return tenant, account_id


def queue_one(tenant: Tenant, number: str) -> int:
    body = {"type": "invoice", "number": number, "party_code": "C1", "total": "10"}
    doc = call(tenant.client, "POST", "/documents", 201, json=body)
    return int(call(tenant.client, "POST", f"/documents/{doc['id']}/send", 202, json={})["id"])


# ---------------------------------------------------------------- 1. database restart


def restart_cluster(server: PostgresServer) -> None:
    """Crash-restart the throwaway cluster (immediate stop, crash recovery on start)."""
    assert server._bindir and server._datadir, "only a throwaway cluster may be restarted"
    subprocess.run(
        [
            *(["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []),
            f"{server._bindir}/pg_ctl",
            *("-D", server._datadir, "-m", "immediate", "-w", "restart"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    if not any(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        if os.environ.get("DOCMAIL_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL binaries required (DOCMAIL_REQUIRE_POSTGRES=1)")
        pytest.skip("!!! no PostgreSQL binaries to start a throwaway cluster !!!")
    server = _throwaway_cluster()
    assert server is not None, "the throwaway PostgreSQL cluster did not start"
    yield server
    server.stop()


def _restartable_runtime(server: PostgresServer, data: Path) -> Runtime:
    """A runtime on a fresh, migrated database of the throwaway cluster."""
    url = server.create_database()
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return make_runtime(url, data)


def test_a_database_restart_mid_batch_loses_nothing_and_the_worker_carries_on(
    own_postgres: PostgresServer, smtp_server_plain: SmtpTestServer, tmp_path: Path
) -> None:
    runtime = _restartable_runtime(own_postgres, tmp_path / "data")
    actor, _ = company_with_account(
        runtime,
        smtp_server_plain.port,
        retry_policy={"kind": "fixed", "base_seconds": 0.2, "jitter": 0, "max_attempts": 10},  # type: ignore[arg-type]
    )
    count = 50
    queue_invoices(runtime, actor, count)
    smtp_server_plain.stall_seconds = 0.03  # slow enough to restart the database mid-batch
    log = tmp_path / "worker.log"
    worker = start_worker(runtime, log, concurrency=2)
    try:
        smtp_server_plain.wait_for(10, timeout=30)
        restart_cluster(own_postgres)
        assert states(runtime)["sent"] < count, "the batch finished before the restart"
        final = wait_until_final(runtime, timeout=45)
        assert worker.poll() is None, "the worker died: " + log.read_text()[-3000:]
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0, log.read_text()[-3000:]

    output = log.read_text()
    assert "round failed" in output and "OperationalError" in output, "the outage was not hit"
    assert final == Counter({"sent": count}), final
    received = Counter(str(m.message["Message-ID"]) for m in smtp_server_plain.messages)
    with runtime.session() as session:
        ids = set(session.scalars(select(t.Message.message_id_header)))
    assert set(received) == ids, "every message arrived"
    duplicates = {mid for mid, n in received.items() if n > 1}
    assert duplicates <= ambiguous_message_ids(runtime), "a duplicate outside the crash window"


def test_a_send_recorded_just_after_a_database_restart_is_recorded_on_a_fresh_connection(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    runtime = _restartable_runtime(own_postgres, tmp_path / "data")
    actor, _ = company_with_account(runtime, 2)
    queue_invoices(runtime, actor, 1)
    (claimed,) = store.claim(runtime.engine, "w1", 10, dt.timedelta(minutes=5), runtime.clock())

    restart_cluster(own_postgres)  # the pool now holds dead connections

    # Recorded without a ping first: the dead connection fails, the statement runs again.
    assert store.mark_sent(runtime.engine, "w1", claimed, 250, "queued", runtime.clock())
    assert states(runtime) == Counter({"sent": 1})


def test_after_a_database_restart_the_first_read_is_answered(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    runtime = _restartable_runtime(own_postgres, tmp_path / "data")
    actor, _ = company_with_account(runtime, 2)
    queue_invoices(runtime, actor, 2)

    restart_cluster(own_postgres)

    with runtime.read_session() as session:  # checked out with a ping: a dead one is replaced
        assert session.scalar(select(func.count()).select_from(t.Message)) == 2


# ---------------------------------------------------------------- 2. disk full


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MB file system (tmpfs) for the data directory."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill_up(path: Path) -> None:
    """Write ``path`` until the file system has no byte left."""
    with path.open("wb", buffering=0) as handle:
        for size in (65536, 4096, 1):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC


def test_a_full_disk_gives_507_keeps_nothing_half_written_and_recovers_once_freed(
    sqlite_template: Path,
    small_disk: Path,
    smtp_server_plain: SmtpTestServer,
) -> None:
    runtime = sqlite_runtime(sqlite_template, small_disk / "data")
    tenant, _ = tenant_with_account(
        runtime, host="127.0.0.1", port=smtp_server_plain.port, security="none"
    )
    for n in range(3):
        queue_one(tenant, f"Q-{n}")
    # Room given back at the end. Every small transaction appends whole 16 KB pages to
    # the WAL (no checkpoint thread runs here), so recovering needs some hundreds of KB.
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * 800_000)

    stored: list[str] = []
    response = None
    for n in range(60):
        body = {"type": "invoice", "number": f"D-{n}", "party_code": "C1"}
        response = tenant.client.post(
            f"{API}/documents",
            data={"document": json.dumps(body)},
            files=[("attachments", (f"D-{n}.pdf", os.urandom(150_000), "application/pdf"))],
        )
        if response.status_code != 201:
            break
        stored.append(body["number"])
    assert response is not None and response.status_code == 507, response and response.text
    assert "disk" in response.json()["error"] and "nothing was saved" in response.json()["error"]
    assert stored, "the disk was full before the first document"

    fill_up(small_disk / "filler")  # not one byte left on the file system
    worker = Worker(runtime, "full-disk-worker")
    try:
        worker.run_once()
    except OperationalError as exc:
        assert "disk is full" in str(exc)
    finally:
        worker.close_transports()
    # SQLite reuses the room its WAL file already has, so how far the worker got
    # depends on that room: the claim may not be written (all still queued), or it
    # and some outcomes fit. Whatever fit is true; a message whose outcome could not
    # be written stays held under the worker's lease, none is lost or failed.
    held = states(runtime)
    assert sum(held.values()) == 3 and set(held) <= {"queued", "sending", "sent"}, held
    on_the_wire = len(smtp_server_plain.messages) - held["sent"]
    assert 0 <= on_the_wire <= held["sending"], "only messages still held can be unrecorded"

    (small_disk / "filler").unlink()
    ballast.unlink()
    listed = call(tenant.client, "GET", "/documents?limit=500", 200)["items"]
    assert sorted(d["number"] for d in listed) == sorted([*stored, "Q-0", "Q-1", "Q-2"])
    with runtime.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        orphans = conn.execute(
            select(t.DocumentAttachment.id)
            .outerjoin(t.Blob, t.Blob.sha256 == t.DocumentAttachment.blob_sha256)
            .where(t.Blob.sha256.is_(None))
        ).all()
        assert orphans == []
    assert {p.name for p in (small_disk / "data").iterdir()} <= {
        "docmail.sqlite3",
        "docmail.sqlite3-wal",
        "docmail.sqlite3-shm",
    }, "no stray files next to the database"

    again = {"type": "invoice", "number": "after", "party_code": "C1"}
    call(tenant.client, "POST", "/documents", 201, json=again)
    lease = dt.timedelta(seconds=runtime.settings.worker_lease_seconds + 1)
    later = runtime.clock() + lease
    runtime.clock = lambda: later  # the held messages' leases have expired
    assert Worker(runtime, "freed-disk-worker").drain() == 3 - held["sent"]
    assert states(runtime) == Counter({"sent": 3})
    ids = Counter(str(m.message["Message-ID"]) for m in smtp_server_plain.messages)
    assert len(ids) == 3, "every message delivered"
    assert sum(ids.values()) - 3 == on_the_wire, (
        "only a message accepted by the server whose outcome could not be written is sent "
        "again, with the same Message-ID"
    )


# ---------------------------------------------------------------- 3. untrusted certificate


class SelfSignedTLS(LocalCA):
    """A self-signed certificate for 127.0.0.1 that nothing trusts (unlike the test CA)."""

    def __init__(self, directory: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        self.ca_file = str(directory / "self-signed.pem")
        self._key_file = str(directory / "self-signed.key")
        Path(self.ca_file).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        Path(self._key_file).write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.ca_file, self._key_file)
        return context


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_an_untrusted_certificate_fails_the_message_with_the_reason_and_sends_nothing(
    security: str, sqlite_template: Path, tmp_path: Path
) -> None:
    users = {TEST_USER: TEST_PASSWORD}
    with SmtpTestServer(security, users=users, tls=SelfSignedTLS(tmp_path)) as server:  # type: ignore[arg-type]
        runtime = sqlite_runtime(sqlite_template, tmp_path / "data")  # trusts only the system CAs
        account = {"host": "127.0.0.1", "port": server.port, "security": security}
        tenant, account_id = tenant_with_account(
            runtime, **account, username=TEST_USER, password=TEST_PASSWORD
        )
        message_id = queue_one(tenant, "T-1")
        Worker(runtime, "tls-worker").drain()

        message = call(tenant.client, "GET", f"/messages/{message_id}", 200)
        assert message["state"] == "failed", message
        reason = message["last_error"]
        assert "TLS certificate of 127.0.0.1 is not trusted: self-signed certificate" in reason
        assert "verify_tls" in reason
        assert [(a["outcome"], a["detail"]) for a in message["attempt_log"]] == [("failed", reason)]
        assert server.messages == [], "nothing was sent (nor the password)"
        assert call(tenant.client, "GET", f"/accounts/{account_id}", 200)["paused"] is False

        # Turning the check off forgets the stored password: it comes again with the change.
        unchecked = {"verify_tls": False, "password": TEST_PASSWORD}
        call(tenant.client, "PATCH", f"/accounts/{account_id}", 200, json=unchecked)
        body = {"message_ids": [message_id], "state": "failed"}
        assert call(tenant.client, "POST", "/messages/requeue", 200, json=body)["requeued"] == 1
        Worker(runtime, "tls-worker").drain()
        message = call(tenant.client, "GET", f"/messages/{message_id}", 200)
        assert message["state"] == "sent", message
        assert [m.message["Message-ID"] for m in server.messages] == [message["message_id"]]


# ---------------------------------------------------------------- 4. DNS failure


def test_a_host_that_does_not_resolve_leaves_the_message_retrying_with_the_reason(
    sqlite_template: Path, tmp_path: Path, smtp_server_plain: SmtpTestServer
) -> None:
    runtime = sqlite_runtime(sqlite_template, tmp_path / "data")
    host = "smtp.docmail-test.invalid"
    tenant, account_id = tenant_with_account(runtime, host=host, port=587, security="starttls")
    message_id = queue_one(tenant, "N-1")
    env = {
        **os.environ,
        "DOCMAIL_DATABASE_URL": runtime.settings.resolved_database_url,
        "DOCMAIL_DATA_DIR": str(runtime.settings.data_dir),
        "DOCMAIL_SECRET_KEY": runtime.settings.secret_keys[0],
        "DOCMAIL_WORKER_POLL_SECONDS": "0.1",
    }
    # Its own network namespace with only loopback: the lookup fails without leaving the machine.
    script = 'ip link set lo up && exec "$0" -m docmail worker --concurrency 1'
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", script, sys.executable],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and {"queued", "sending"} & set(states(runtime)):
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0, log.read_text()[-3000:]

    message = call(tenant.client, "GET", f"/messages/{message_id}", 200)
    assert message["state"] == "retrying", (message, log.read_text()[-3000:])
    reason = message["last_error"]
    assert reason.startswith(
        f"could not connect to {host}:587: the host name could not be resolved"
    )
    assert "will try again later" in reason
    assert [a["outcome"] for a in message["attempt_log"]] == ["retrying"]
    assert message["sent_at"] is None
    with runtime.session() as session:
        row = session.get_one(t.Message, message_id)
        assert row.next_attempt_at > row.updated_at, "a later attempt is scheduled"
    assert message["next_attempt_at"] is not None

    # Still retryable: once the host is fixed and the retry is due, it goes out, once.
    fixed = {"host": "127.0.0.1", "port": smtp_server_plain.port, "security": "none"}
    call(tenant.client, "PATCH", f"/accounts/{account_id}", 200, json=fixed)
    runtime.clock = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert Worker(runtime, "after-dns-worker").drain() == 1
    message = call(tenant.client, "GET", f"/messages/{message_id}", 200)
    assert message["state"] == "sent" and message["attempts"] == 2
    assert [m.message["Message-ID"] for m in smtp_server_plain.messages] == [message["message_id"]]
