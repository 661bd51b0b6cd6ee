"""API tokens through the API (create, list, revoke, expiry, last use, roles, two companies),
the audit list after real changes, and who queued each message (created_by).

Real app, real database (SQLite and PostgreSQL), real clients; no worker runs, so
queued messages stay queued.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from docmail.adapters.db import tables as t
from docmail.http.app import create_app
from docmail.services import audit
from docmail.services.companies import add_membership, create_user
from docmail.services.runtime import Actor, Role, Runtime
from docmail.services.tokens import LAST_USED_RESOLUTION
from tests.support.app import Tenant, make_runtime, make_tenant

API = "/api/v1"
PASSWORD = "tokens-pass-1"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Runtime:
    return make_runtime(database_url, tmp_path / "data")


@pytest.fixture
def acme(runtime: Runtime) -> Iterator[Tenant]:
    tenant = make_tenant(runtime, "ACME SA de CV")
    yield tenant
    tenant.client.close()


def call(client: TestClient, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return client.request(method, f"{API}{path}", headers=headers, **kw)


def made(answer: httpx.Response, status: int = 201) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def new_token(client: TestClient, name: str, role: str = "sender", **extra: Any) -> Any:
    return made(call(client, "POST", "/tokens", json={"name": name, "role": role, **extra}))


def advance(runtime: Runtime, by: timedelta) -> None:
    """Move the installation's clock forward (the app reads the same runtime)."""
    start = runtime.clock()
    runtime.clock = lambda: start + by


# ---------------------------------------------------------------- tokens


def test_a_created_token_works_once_shown_and_is_listed_by_prefix_with_its_last_use(
    runtime: Runtime, acme: Tenant
) -> None:
    created = new_token(acme.client, "erp")
    secret = created["token"]
    assert secret.startswith("dm_") and created["prefix"] == secret[:11]
    assert (created["role"], created["created_by"], created["last_used_at"]) == (
        "sender",
        "token:tests",
        None,
    )
    assert call(acme.client, "GET", "/parties", token=secret).status_code == 200

    listed = made(call(acme.client, "GET", "/tokens"), 200)["items"]
    erp = next(i for i in listed if i["id"] == created["id"])
    assert erp["prefix"] == created["prefix"] and erp["last_used_at"] is not None
    assert secret not in call(acme.client, "GET", "/tokens").text  # shown once, never again
    with runtime.session() as session:
        row = session.get_one(t.ApiToken, created["id"])
        assert row.token_hash != secret and secret not in row.token_hash


def test_last_use_is_written_at_most_once_per_resolution(runtime: Runtime, acme: Tenant) -> None:
    secret = new_token(acme.client, "erp")["token"]

    def last_used() -> Any:
        with runtime.session() as session:
            return session.scalar(select(t.ApiToken.last_used_at).where(t.ApiToken.name == "erp"))

    call(acme.client, "GET", "/parties", token=secret)
    first = last_used()
    call(acme.client, "GET", "/parties", token=secret)
    assert last_used() == first  # a second request right after writes nothing
    advance(runtime, LAST_USED_RESOLUTION + timedelta(seconds=1))
    call(acme.client, "GET", "/parties", token=secret)
    assert last_used() > first


def test_a_revoked_token_gets_401_on_its_next_request(runtime: Runtime, acme: Tenant) -> None:
    created = new_token(acme.client, "erp")
    assert call(acme.client, "GET", "/parties", token=created["token"]).status_code == 200
    revoked = made(call(acme.client, "POST", f"/tokens/{created['id']}/revoke"), 200)
    assert revoked["revoked_at"] is not None

    answer = call(acme.client, "GET", "/parties", token=created["token"])
    assert answer.status_code == 401
    assert "revoked" in answer.json()["error"] and created["prefix"] in answer.json()["error"]
    # Revoking again (or with DELETE) keeps the first revocation time.
    assert call(acme.client, "DELETE", f"/tokens/{created['id']}").status_code == 204
    again = made(call(acme.client, "POST", f"/tokens/{created['id']}/revoke"), 200)
    assert again["revoked_at"] == revoked["revoked_at"]


def test_an_expired_token_gets_401_and_an_expiry_in_the_past_is_refused(
    runtime: Runtime, acme: Tenant
) -> None:
    soon = (runtime.clock() + timedelta(hours=1)).isoformat()
    created = new_token(acme.client, "temporary", expires_at=soon)
    assert call(acme.client, "GET", "/parties", token=created["token"]).status_code == 200
    advance(runtime, timedelta(hours=2))
    answer = call(acme.client, "GET", "/parties", token=created["token"])
    assert answer.status_code == 401 and "expired" in answer.json()["error"]

    past = {"name": "late", "expires_at": "2001-01-01T00:00:00"}
    refused = call(acme.client, "POST", "/tokens", json=past)
    assert refused.status_code == 422 and refused.json()["field"] == "expires_at"


def test_a_sender_cannot_make_an_admin_token_and_a_viewer_cannot_make_any(
    runtime: Runtime, acme: Tenant
) -> None:
    sender = new_token(acme.client, "sender-erp", "sender")["token"]
    viewer = new_token(acme.client, "viewer-bi", "viewer")["token"]
    higher = call(acme.client, "POST", "/tokens", sender, json={"name": "x", "role": "admin"})
    assert higher.status_code == 403 and higher.json()["field"] == "role"
    assert "higher than your own" in higher.json()["error"]
    for token, role in ((sender, "sender"), (viewer, "viewer"), (viewer, "admin")):
        answer = call(acme.client, "POST", "/tokens", token, json={"name": "y", "role": role})
        assert answer.status_code == 403, answer.text
    assert call(acme.client, "GET", "/tokens", viewer).status_code == 403
    with runtime.session() as session:
        names = set(session.scalars(select(t.ApiToken.name)))
    assert names == {"tests", "sender-erp", "viewer-bi"}


def test_another_companys_admin_sees_none_of_its_tokens_and_gets_404_for_their_ids(
    runtime: Runtime, acme: Tenant
) -> None:
    other = make_tenant(runtime, "Otra SA")
    try:
        mine = new_token(acme.client, "erp")
        listed = made(call(other.client, "GET", "/tokens"), 200)["items"]
        assert [i["name"] for i in listed] == ["tests"]
        assert mine["prefix"] not in call(other.client, "GET", "/tokens").text
        for method, path in (
            ("POST", f"/tokens/{mine['id']}/revoke"),
            ("DELETE", f"/tokens/{mine['id']}"),
        ):
            answer = call(other.client, method, path)
            assert answer.status_code == 404 and answer.json()["field"] == "token_id"
        assert call(acme.client, "GET", "/parties", token=mine["token"]).status_code == 200
    finally:
        other.client.close()


def test_a_duplicate_active_name_or_a_name_with_a_line_break_is_refused(acme: Tenant) -> None:
    new_token(acme.client, "erp")
    clash = call(acme.client, "POST", "/tokens", json={"name": "erp"})
    assert clash.status_code == 409 and clash.json()["field"] == "name"
    broken = call(acme.client, "POST", "/tokens", json={"name": "a\r\nb"})
    assert broken.status_code == 422 and broken.json()["field"] == "name"


# ---------------------------------------------------------------- audit


def test_the_audit_list_names_the_actor_and_action_of_each_change_and_holds_no_secret(
    acme: Tenant,
) -> None:
    created = new_token(acme.client, "erp", "admin")
    erp = created["token"]
    call(acme.client, "PATCH", "/document-types/invoice", erp, json={"name": "Factura CFDI"})
    template = {
        "subject": "Factura {{ document.number }}",
        "body_html": "<p>x</p>",
        "body_text": "x",
    }
    assert call(acme.client, "PUT", "/templates/invoice/es", erp, json=template).status_code == 200
    party = {"code": "C1", "name": "Cliente Uno", "email": "uno@example.com"}
    call(acme.client, "POST", "/parties", erp, json=party)
    call(acme.client, "POST", "/company/pause", json={"reason": "cierre"})
    call(acme.client, "POST", f"/tokens/{created['id']}/revoke")

    page = made(call(acme.client, "GET", "/audit"), 200)
    seen = [(e["actor"], e["action"], e["target"]) for e in page["items"]]
    assert seen == [
        ("token:tests", "token.revoked", f"token:{created['id']} erp"),
        ("token:tests", "company.paused", f"company:{acme.company_id}"),
        ("token:erp", "party.created", "party:C1"),
        ("token:erp", "template.saved", "template:invoice/es"),
        ("token:erp", "doctype.updated", "doctype:invoice"),
        ("token:tests", "token.created", f"token:{created['id']} erp"),
    ]
    assert page["items"][4]["detail"] == {"name": {"from": "Invoice", "to": "Factura CFDI"}}
    assert erp not in str(page) and created["prefix"] in str(page)

    only_tokens = made(call(acme.client, "GET", "/audit", params={"action": "token."}), 200)
    assert [e["action"] for e in only_tokens["items"]] == ["token.revoked", "token.created"]
    second = made(call(acme.client, "GET", "/audit", params={"limit": 2, "offset": 2}), 200)
    assert [e["action"] for e in second["items"]] == ["party.created", "template.saved"]
    assert second["total"] == 6


def test_a_refused_change_leaves_no_audit_event_and_the_list_is_for_admins_only(
    runtime: Runtime, acme: Tenant
) -> None:
    sender = new_token(acme.client, "erp", "sender")["token"]
    refused = call(acme.client, "PATCH", "/document-types/invoice", sender, json={"name": "X"})
    assert refused.status_code == 403
    assert call(acme.client, "GET", "/audit", sender).status_code == 403
    bad = call(acme.client, "GET", "/audit", params={"action": "DROP TABLE"})
    assert bad.status_code == 422 and bad.json()["field"] == "action"
    with runtime.session() as session:
        actions = list(session.scalars(select(t.AuditEvent.action)))
    assert actions == ["token.created"]


def test_record_replaces_secret_looking_details(runtime: Runtime, acme: Tenant) -> None:
    actor = Actor(acme.company_id, Role.ADMIN, label="user:ana@example.com")
    detail = {
        "password": "hunter22",
        "smtp": {"client_secret": "s3", "host": "smtp.example.com"},
        "note": f"pasted {acme.token} by mistake",
    }
    with runtime.session() as session:
        audit.record(session, actor, "account.updated", "account:1", detail)
    with runtime.session() as session:
        stored = session.scalars(select(t.AuditEvent.detail)).all()[-1]
    assert stored == {
        "password": "***",
        "smtp": {"client_secret": "***", "host": "smtp.example.com"},
        "note": "pasted *** by mistake",
    }


# ---------------------------------------------------------------- who queued each message


def _sendable_document(client: TestClient) -> int:
    account = {
        "name": "Principal",
        "host": "127.0.0.1",
        "port": 1,
        "security": "none",
        "from_email": "facturas@acme.example",
        "is_default": True,
    }
    made(call(client, "POST", "/accounts", json=account))
    contact = {"name": "Fina", "email": "finanzas@cliente.example", "roles": ["finance"]}
    party = {"code": "C1", "name": "Cliente", "contacts": [contact]}
    made(call(client, "POST", "/parties", json=party))
    pdf = {
        "filename": "F-1.pdf",
        "content_type": "application/pdf",
        "content_base64": base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode(),
    }
    body = {"type": "invoice", "number": "F-1", "party_code": "C1", "total": "10.00"}
    document = made(call(client, "POST", "/documents", json=body | {"attachments": [pdf]}))
    return int(document["id"])


def _signed_in(runtime: Runtime, email: str) -> tuple[TestClient, str]:
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    login = _CSRF.search(client.get("/login").text)
    assert login is not None
    form = {"email": email, "password": PASSWORD, "csrf_token": login.group(1)}
    assert client.post("/login", data=form, follow_redirects=False).status_code == 303
    page = _CSRF.search(client.get("/documents").text)
    assert page is not None
    return client, page.group(1)


def test_messages_record_the_token_or_the_user_that_queued_them(
    runtime: Runtime, acme: Tenant
) -> None:
    document = _sendable_document(acme.client)
    erp = new_token(acme.client, "erp", "sender")["token"]
    by_token = made(call(acme.client, "POST", f"/documents/{document}/send", erp, json={}), 202)
    assert by_token["created_by"] == "token:erp"

    user = create_user(runtime, "ana@acme.example", PASSWORD)
    add_membership(runtime, user.id, acme.company_id, Role.SENDER)
    browser, csrf = _signed_in(runtime, "ana@acme.example")
    try:
        form = {"to": "finanzas@cliente.example", "subject": "F-1", "body_text": "Hola"}
        sent = browser.post(
            f"/documents/{document}/send",
            data=form | {"idem_key": "web-1", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert sent.status_code < 400, sent.text
        with runtime.session() as session:
            rows = session.execute(
                select(t.Message.id, t.Message.created_by).order_by(t.Message.id)
            )
            who = [r.created_by for r in rows]
        assert who == ["token:erp", "user:ana@acme.example"]
        web_id = made(call(acme.client, "GET", "/messages"), 200)["items"][0]["id"]
        page = browser.get(f"/log/{web_id}")
        assert "user:ana@acme.example" in page.text
    finally:
        browser.close()


def test_a_batchs_messages_record_who_started_it(runtime: Runtime, acme: Tenant) -> None:
    document = _sendable_document(acme.client)
    erp = new_token(acme.client, "erp", "sender")["token"]
    batch = call(
        acme.client, "POST", "/documents/send-batch", erp, json={"document_ids": [document]}
    )
    assert batch.status_code == 202, batch.text
    with runtime.session() as session:
        who = list(session.scalars(select(t.Message.created_by)))
        started = session.scalars(
            select(t.AuditEvent).where(t.AuditEvent.action == "batch.started")
        )
        event = started.one()
    assert who == ["token:erp"]
    assert (event.actor, event.detail) == ("token:erp", {"documents": 1, "mode": "per_document"})
