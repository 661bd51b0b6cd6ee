"""Company admins cannot aim docmail at internal hosts: "test connection", delivery and SES
endpoints refuse loopback, private, link-local and other internal addresses before any
connection is made, unless DOCMAIL_OUTBOUND_ALLOW lists them; a non-SMTP banner is not quoted."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from docmail.adapters.db import tables as t
from docmail.adapters.outbound import OutboundPolicy, OutboundRefused
from docmail.adapters.smtp.transport import SmtpTransport
from docmail.config import LOOPBACK
from docmail.errors import PermanentDeliveryError
from docmail.services.runtime import Runtime
from tests.support.app import Tenant, make_runtime, make_tenant
from tests.support.smtp_server import SmtpTestServer, free_port

API = "/api/v1"


class Doorbell:
    """Listens on 127.0.0.1 (and ::1 when the machine has it) on one port and records every
    connection accepted; ``banner`` is sent to each one (a non-SMTP service)."""

    def __init__(self, banner: bytes = b"") -> None:
        self.port = free_port()
        self.banner = banner
        self.accepted: list[str] = []
        self._sockets = [socket.create_server(("127.0.0.1", self.port))]
        with contextlib.suppress(OSError):
            self._sockets.append(socket.create_server(("::1", self.port), family=socket.AF_INET6))
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, args=(s,)) for s in self._sockets]
        for thread in self._threads:
            thread.start()

    def _serve(self, server: socket.socket) -> None:
        server.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            self.accepted.append(peer[0])
            with conn:
                conn.sendall(self.banner)
                time.sleep(0.2)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        for server in self._sockets:
            server.close()


@pytest.fixture
def doorbell() -> Iterator[Doorbell]:
    bell = Doorbell()
    yield bell
    bell.close()


@pytest.fixture
def strict(sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[Runtime, Tenant]]:
    """An installation with the default policy: no internal network allowed."""
    target = tmp_path / "db.sqlite3"
    target.write_bytes(sqlite_template.read_bytes())
    runtime = make_runtime(f"sqlite:///{target}", tmp_path / "data")
    runtime.settings = runtime.settings.with_overrides(outbound_allow=())
    yield runtime, make_tenant(runtime)


def _smtp_account(tenant: Tenant, host: str, port: int) -> int:
    """An account aimed at ``host``, as saved before the policy existed (or before its
    name's DNS answer changed): saving it now would be refused, so it goes into the table."""
    body = {"name": f"mail {host}", "host": host, "port": port, "security": "none"}
    body["from_email"] = "facturacion@acme.example"
    runtime = tenant.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session() as session:
        row = t.MailAccount(company_id=tenant.company_id, **body)
        session.add(row)
        session.flush()
        return int(row.id)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254"])
def test_saving_an_account_aimed_at_an_internal_host_is_refused(
    strict: tuple[Runtime, Tenant], host: str
) -> None:
    _runtime, tenant = strict
    body = {"name": "mail", "host": host, "port": 25, "security": "none"}
    created = tenant.client.post(f"{API}/accounts", json={**body, "from_email": "a@acme.mx"})
    assert created.status_code == 422 and created.json()["field"] == "host"
    public = tenant.client.post(
        f"{API}/accounts", json={**body, "host": "smtp.acme.mx", "from_email": "a@acme.mx"}
    )
    assert public.status_code == 201, public.text  # a name that may resolve later is saved
    moved = tenant.client.patch(f"{API}/accounts/{public.json()['id']}", json={"host": host})
    assert moved.status_code == 422 and moved.json()["field"] == "host"
    assert tenant.client.get(f"{API}/accounts/{public.json()['id']}").json()["host"] == (
        "smtp.acme.mx"
    )


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("localhost", "a loopback address"),
        ("[::1]", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("169.254.169.254", "a link-local address"),
    ],
)
def test_testing_an_account_aimed_at_an_internal_host_is_refused_without_connecting(
    strict: tuple[Runtime, Tenant], doorbell: Doorbell, host: str, reason: str
) -> None:
    _runtime, tenant = strict
    account_id = _smtp_account(tenant, host, doorbell.port)
    started = time.monotonic()
    answer = tenant.client.post(f"{API}/accounts/{account_id}/test")
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["field"] == "host"
    assert body["error"].startswith(f"host {host}")
    assert reason in body["error"] and "DOCMAIL_OUTBOUND_ALLOW" in body["error"]
    assert time.monotonic() - started < 2  # refused at once, not a connection that timed out
    time.sleep(0.1)
    assert doorbell.accepted == []


def test_the_worker_s_transport_refuses_an_internal_host_as_a_permanent_failure(
    strict: tuple[Runtime, Tenant], doorbell: Doorbell
) -> None:
    runtime, tenant = strict
    account_id = _smtp_account(tenant, "127.0.0.1", doorbell.port)
    with runtime.session() as session:
        account = session.get_one(t.MailAccount, account_id)
    transport = runtime.transport_for(account)
    with pytest.raises(PermanentDeliveryError, match="loopback address") as refused:
        transport.send("facturacion@acme.example", ["ana@cliente.example"], b"Subject: x\r\n\r\nx")
    transport.close()
    assert refused.value.transient is False
    assert doorbell.accepted == []


def test_with_loopback_allowed_the_same_test_reaches_the_local_mail_server(
    database_url: str, tmp_path: Path, smtp_server_plain: SmtpTestServer
) -> None:
    runtime = make_runtime(database_url, tmp_path / "data")  # the tests allow 127.0.0.0/8, ::1
    tenant = make_tenant(runtime)
    account_id = _smtp_account(tenant, "127.0.0.1", smtp_server_plain.port)
    answer = tenant.client.post(f"{API}/accounts/{account_id}/test")
    assert answer.status_code == 200 and answer.json()["ok"] is True, answer.text
    assert smtp_server_plain.connections >= 1


@pytest.mark.parametrize(
    "banner",
    [
        b"HTTP/1.1 400 Bad Request\r\nServer: internal-billing-api/4.2\r\n\r\n",
        b"SSH-2.0-internal-billing-api_4.2\r\n",
    ],
)
def test_a_server_that_does_not_greet_as_smtp_is_not_quoted_back(
    database_url: str, tmp_path: Path, banner: bytes
) -> None:
    runtime = make_runtime(database_url, tmp_path / "data")
    tenant = make_tenant(runtime)
    bell = Doorbell(banner)
    try:
        account_id = _smtp_account(tenant, "127.0.0.1", bell.port)
        answer = tenant.client.post(f"{API}/accounts/{account_id}/test")
    finally:
        bell.close()
    assert bell.accepted  # it did connect: loopback is allowed here
    body = answer.json()
    assert body["ok"] is False and "did not answer as an SMTP server" in body["error"]
    assert "internal-billing-api" not in answer.text and "4.2" not in answer.text


def test_an_ses_endpoint_on_an_internal_address_is_refused(
    strict: tuple[Runtime, Tenant], doorbell: Doorbell
) -> None:
    runtime, tenant = strict
    endpoint = f"http://127.0.0.1:{doorbell.port}"
    created = tenant.client.post(
        f"{API}/accounts",
        json={
            "kind": "ses",
            "name": "SES",
            "from_email": "facturacion@acme.example",
            "region": "us-east-1",
            "endpoint_url": endpoint,
            "access_key_id": "AKIATESTDOCMAIL00001",
            "secret_access_key": "not-a-real-secret",
        },
    )
    assert created.status_code == 422 and created.json()["field"] == "endpoint_url"
    with runtime.session() as session:  # as saved before the policy existed
        row = t.MailAccount(
            company_id=tenant.company_id,
            kind="ses",
            name="SES",
            host="127.0.0.1",
            port=443,
            security="ssl",
            username="AKIATESTDOCMAIL00001",
            from_email="facturacion@acme.example",
            region="us-east-1",
            endpoint_url=endpoint,
            password_encrypted=runtime.secrets.encrypt("not-a-real-secret"),
        )
        session.add(row)
        session.flush()
        account_id = row.id
    answer = tenant.client.post(f"{API}/accounts/{account_id}/test")
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "endpoint_url"
    assert "loopback address" in answer.json()["error"]
    assert doorbell.accepted == []


def test_tls_still_checks_the_host_name_when_connecting_to_the_checked_address(
    smtp_server_ssl: SmtpTestServer,
) -> None:
    for host in ("127.0.0.1", "localhost"):  # names on the test certificate
        allowed = replace(
            smtp_server_ssl.client_settings(host=host), outbound=OutboundPolicy(LOOPBACK)
        )
        with SmtpTransport(allowed) as transport:
            assert transport.check().startswith("220")
    refused = replace(smtp_server_ssl.client_settings(), outbound=OutboundPolicy())
    with SmtpTransport(refused) as transport, pytest.raises(OutboundRefused):
        transport.check()
