"""A stored mailbox secret never follows an account to a new server.

The attack: an admin (or anyone who can edit the account) changes only the host
and port of an account whose password someone else typed, then presses "test
connection": docmail would log in to the new server with the real password. Now a
move of host, port, security or certificate checking forgets the secret; Gmail
and Microsoft accounts cannot be moved at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.app import make_runtime, make_tenant
from tests.support.smtp_server import SmtpTestServer

API = "/api/v1"
MAILBOX = "facturas@acme.mx"
SECRET = "the-real-mailbox-password"


@pytest.fixture
def servers(tls_ca: object) -> object:
    real = SmtpTestServer("starttls", users={MAILBOX: SECRET}, tls=tls_ca).start()  # type: ignore[arg-type]
    harvester = SmtpTestServer("starttls", users={"x": "y"}, tls=tls_ca).start()  # type: ignore[arg-type]
    yield real, harvester
    real.stop()
    harvester.stop()


def _account(admin: TestClient, port: int, username: str, password: str) -> int:
    """An SMTP account on 127.0.0.1:``port`` with that login; its id."""
    made = admin.post(
        f"{API}/accounts",
        json={
            "name": "Facturas",
            "host": "127.0.0.1",
            "port": port,
            "username": username,
            "password": password,
            "from_email": MAILBOX,
        },
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def test_moving_an_account_to_another_server_forgets_its_password(
    database_url: str, tmp_path: Path, servers: tuple[SmtpTestServer, SmtpTestServer]
) -> None:
    real, harvester = servers
    runtime = make_runtime(database_url, tmp_path / "data", ca_file=real.ca_file)
    admin = make_tenant(runtime).client
    account_id = _account(admin, real.port, MAILBOX, SECRET)
    assert admin.post(f"{API}/accounts/{account_id}/test").json()["ok"] is True
    assert real.logins == [(MAILBOX, SECRET.encode())]

    moved = admin.patch(f"{API}/accounts/{account_id}", json={"port": harvester.port})
    assert moved.status_code == 200, moved.text
    assert moved.json()["password_set"] is False
    tested = admin.post(f"{API}/accounts/{account_id}/test").json()

    assert tested["ok"] is False
    assert all(SECRET.encode() not in password for _login, password in harvester.logins)
    assert harvester.logins == []


def test_a_new_password_given_with_the_move_is_kept(
    database_url: str, tmp_path: Path, servers: tuple[SmtpTestServer, SmtpTestServer]
) -> None:
    real, harvester = servers
    runtime = make_runtime(database_url, tmp_path / "data", ca_file=real.ca_file)
    admin = make_tenant(runtime).client
    account_id = _account(admin, harvester.port, "x", "y")

    moved = admin.patch(
        f"{API}/accounts/{account_id}",
        json={"port": real.port, "username": MAILBOX, "password": SECRET},
    )

    assert moved.json()["password_set"] is True
    assert admin.post(f"{API}/accounts/{account_id}/test").json()["ok"] is True
    assert real.logins == [(MAILBOX, SECRET.encode())]


@pytest.mark.parametrize(
    ("change", "field"),
    [({"verify_tls": False}, "verify_tls"), ({"security": "none"}, "security")],
)
def test_turning_off_tls_or_its_check_also_forgets_the_password(
    database_url: str, tmp_path: Path, change: dict[str, object], field: str
) -> None:
    runtime = make_runtime(database_url, tmp_path / "data")
    admin = make_tenant(runtime).client
    account_id = _account(admin, 2525, MAILBOX, SECRET)

    moved = admin.patch(f"{API}/accounts/{account_id}", json=change)

    assert moved.status_code == 200 and moved.json()[field] == change[field]
    assert moved.json()["password_set"] is False


def test_a_gmail_account_cannot_be_pointed_at_another_server(
    database_url: str, tmp_path: Path
) -> None:
    runtime = make_runtime(database_url, tmp_path / "data")
    admin = make_tenant(runtime).client
    made = admin.post(
        f"{API}/accounts", json={"kind": "gmail", "name": "Ventas", "from_email": MAILBOX}
    )
    assert made.status_code == 201, made.text
    assert made.json()["host"] == "smtp.gmail.com"
    account_id = made.json()["id"]

    for change in ({"host": "smtp.harvest.example.com"}, {"port": 2525}, {"verify_tls": False}):
        refused = admin.patch(f"{API}/accounts/{account_id}", json=change)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == next(iter(change))
        assert "smtp.gmail.com" in refused.json()["error"]
    created_elsewhere = admin.post(
        f"{API}/accounts",
        json={
            "kind": "gmail",
            "name": "Otra",
            "from_email": MAILBOX,
            "host": "smtp.harvest.example.com",
        },
    )
    assert created_elsewhere.status_code == 422
    assert created_elsewhere.json()["field"] == "host"
