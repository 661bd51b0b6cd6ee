"""The sign-in limit: counted in the database before the password is checked, per address and
per client, shared by every process, and not fooled by a forged X-Forwarded-For."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from docmail.adapters.db import tables as t
from docmail.http.app import create_app
from docmail.services.companies import add_membership, create_company, create_user
from docmail.services.runtime import Role, Runtime
from docmail.web import sessions
from docmail.web.sessions import LoginLimiter
from tests.support.app import make_runtime
from tests.support.live import served

PASSWORD = "correct horse battery"
EMAIL = "ana@acme.example"
FORM_TOKEN = "pre-login-form-token"


def _user(runtime: Runtime) -> None:
    company = create_company(runtime, "ACME SA de CV")
    user = create_user(runtime, EMAIL, PASSWORD, name="Ana")
    add_membership(runtime, user.id, company.id, Role.ADMIN)


def _form(email: str, password: str) -> dict[str, str]:
    return {"email": email, "password": password, "csrf_token": FORM_TOKEN}


def _sign_in(client: httpx.Client | TestClient, email: str, password: str, **headers: str) -> int:
    client.cookies.set("docmail_prelogin", FORM_TOKEN)
    answer = client.post("/login", data=_form(email, password), headers=headers)
    return answer.status_code


@pytest.fixture
def password_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call of the password check the sign-in makes, in order."""
    calls: list[str] = []
    lock = threading.Lock()
    real: Callable[[str, str], bool] = sessions.verify_password

    def counting(password: str, stored: str) -> bool:
        with lock:
            calls.append(password)
        return real(password, stored)

    monkeypatch.setattr(sessions, "verify_password", counting)
    return calls


def test_concurrent_wrong_passwords_get_no_more_password_checks_than_the_limit(
    runtime: Runtime, password_checks: list[str]
) -> None:
    _user(runtime)
    statuses: list[int] = []
    start = threading.Barrier(16)

    def guess(n: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            start.wait()
            statuses.append(_sign_in(client, EMAIL, f"guess-{n}"))

    with served(runtime) as base:
        threads = [threading.Thread(target=guess, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert len(password_checks) <= 5
        assert sorted(statuses) == [401] * len(password_checks) + [429] * (
            16 - len(password_checks)
        )
        with httpx.Client(base_url=base, timeout=60) as client:
            client.cookies.set("docmail_prelogin", FORM_TOKEN)
            blocked = client.post(
                "/login", data=_form(EMAIL, PASSWORD), headers={"Accept-Language": "es"}
            )
    assert blocked.status_code == 429  # the right password too, while blocked
    assert "Demasiados intentos fallidos" in blocked.text
    assert PASSWORD not in password_checks  # and it was not even checked


def test_a_forged_x_forwarded_for_does_not_change_the_client_unless_the_peer_is_a_proxy(
    sqlite_template: Path, tmp_path: Path
) -> None:
    target = tmp_path / "db.sqlite3"
    target.write_bytes(sqlite_template.read_bytes())
    runtime = make_runtime(f"sqlite:///{target}", tmp_path / "data")

    def six_strangers(base: str, first: int) -> list[int]:
        with httpx.Client(base_url=base, timeout=60) as client:
            return [
                _sign_in(
                    client, f"nobody{n}@x.example", "nope", **{"X-Forwarded-For": f"203.0.113.{n}"}
                )
                for n in range(first, first + 6)
            ]

    with served(runtime) as base:  # default: no proxy is believed
        assert six_strangers(base, 0) == [401] * 5 + [429]
    with served(runtime, forwarded_allow_ips=("127.0.0.1",)) as base:
        assert six_strangers(base, 10) == [401] * 6  # six different clients, as the proxy says


def test_two_servers_on_one_database_share_the_count(database_url: str, tmp_path: Path) -> None:
    one = make_runtime(database_url, tmp_path / "one")
    two = make_runtime(database_url, tmp_path / "two")
    _user(one)
    clients = {
        "a": TestClient(create_app(one), raise_server_exceptions=False),
        "b": TestClient(create_app(two), raise_server_exceptions=False),
    }
    statuses = [_sign_in(clients[name], EMAIL, "wrong") for name in "ababab"]
    assert statuses == [401] * 5 + [429]


def test_a_success_clears_the_address_but_not_other_clients_failures_and_old_rows_go(
    runtime: Runtime,
) -> None:
    now = [runtime.clock()]
    limiter = LoginLimiter(runtime.engine, lambda: now[0], attempts=5)
    assert all(limiter.admit(EMAIL, "192.0.2.1") for _ in range(4))
    limiter.succeeded(EMAIL, "192.0.2.1")
    assert all(limiter.admit(EMAIL, "192.0.2.2") for _ in range(5))  # the address starts again
    assert not limiter.admit(EMAIL, "192.0.2.3")
    assert limiter.admit("other@x.example", "192.0.2.1")  # 3 failures + 1 here: not blocked
    assert all(limiter.admit(f"v6-{n}@x.example", f"2001:db8::{n}") for n in range(1, 6))
    assert not limiter.admit("v6-6@x.example", "2001:db8::6:6")  # one /64 counts as one client
    now[0] += timedelta(minutes=11)
    assert limiter.admit(EMAIL, "192.0.2.2")  # a new window
    with runtime.session() as session:
        rows = session.scalar(select(func.count()).select_from(t.LoginThrottle))
    assert rows == 2  # the new window pruned the rest
    now[0] += timedelta(minutes=11)
    assert limiter.prune() == 2
