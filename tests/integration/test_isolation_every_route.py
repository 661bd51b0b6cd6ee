"""Every route that names an object answers 404 to another company, and changes nothing.

The routes are enumerated from ``create_app(runtime)``: a route with a path
parameter that is missing from the tables below fails
``test_every_route_with_a_path_parameter_is_in_the_tables``, so a new route cannot
be forgotten. For each one, company A (the owner) has a real object; an admin of
company B (an API token, or a signed-in browser with its CSRF token) asks for it
and must get 404 (not 403, 200, 422 or 500), see none of A's data in the answer,
and leave every table exactly as it was. Then A itself makes the same request and
must not get 404: that proves B's 404 comes from the company check and not from a
malformed request (the pages turn malformed requests into 404 too).

Two kinds of path parameter name no company object and have their own tests: the
OAuth provider (``/oauth/clients/{provider}`` is the caller's own client) and the
demo mail catcher's messages (one catcher per installation, admins only).

SQLite only: the company check is the same ``company_id`` condition in the same SQL
on PostgreSQL, and ``test_api_isolation.py`` already runs on both.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fastapi import FastAPI, routing
from fastapi.testclient import TestClient
from sqlalchemy import select

from docmail.adapters.db import tables as t
from docmail.adapters.db.tables import Base
from docmail.http.app import create_app
from docmail.services.companies import add_membership, create_user
from docmail.services.runtime import Role, Runtime
from tests.support.app import client_for, make_runtime, make_tenant
from tests.support.web import csrf_of, sign_in

API = "/api/v1"
PASSWORD = "isolation-pass-1"
CAUGHT = (
    "From: facturas@{tag}.mx\r\nSubject: Cliente {tag}\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
    "Cliente {tag}\r\n--b\r\nContent-Type: application/pdf\r\n"
    "Content-Disposition: attachment; filename={tag}.pdf\r\n\r\nPDF\r\n--b--\r\n"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TEMPLATE = {"subject": "Factura {{ document.number }}", "body_html": "<p>x</p>", "body_text": "x"}
AS_OF = {"as_of": "2026-11-30"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# Rows a request may touch without changing anything of a company: a session's last use,
# and a token's (written at most every few minutes, so it may land in any request).
VOLATILE_TABLES = {"web_sessions"}
VOLATILE_COLUMNS = {"api_tokens": {"last_used_at"}}


@dataclass(frozen=True)
class Ids:
    """What one company owns, made through its own API token."""

    tag: str
    document: int
    attachment: int
    cancelled: int
    party: int
    party_code: str
    account: int
    message: int
    batch: int
    type_code: str
    rule: int
    run: str
    reminder: int
    job: int
    token: int
    member: int = 0  # a sender of the company (set by make_company)
    invitation: int = 0  # a pending invitation (set by make_company)
    caught: int = 0  # a message the demo catcher caught from this company (make_company)

    @property
    def markers(self) -> tuple[str, ...]:
        """Strings only this company's data contains: none may reach the other company."""
        return (
            f"Cliente {self.tag}",
            f"facturas@{self.tag}.mx",
            f"{self.tag.upper()}-1.pdf",
            f"erp {self.tag}",
        )


@dataclass(frozen=True)
class Call:
    path: str
    json: Any = None
    form: dict[str, Any] | None = None
    files: list[Any] | None = None
    params: dict[str, str] | None = None


# A route's request for the owner's object: (owner's ids, caller's own ids) -> Call.
Build = Callable[[Ids, Ids], Call]
Form = dict[str, str] | Callable[[Ids], dict[str, str]] | None


def at(path: str, *, json: Any = None, form: Form = None, **kw: Any) -> Build:
    """The request for ``path``, with ``{a.<id>}`` the owner's and ``{b.<id>}`` the caller's."""

    def build(a: Ids, b: Ids) -> Call:
        posted = form(a) if callable(form) else form
        return Call(path.format(a=a, b=b), json=json, form=posted, **kw)

    return build


UPLOAD = [("attachments", ("x.pdf", PDF, "application/pdf"))]
RULE = "/api/v1/automation/rules/{a.rule}"
TEMPLATE_PATH = "/api/v1/templates/{a.type_code}/es"
API_ROUTES: dict[tuple[str, str], tuple[Build, ...]] = {
    ("POST", "/api/v1/accounts/{account_id}/oauth/start"): (
        at("/api/v1/accounts/{a.account}/oauth/start", json={}),
    ),
    ("GET", "/api/v1/accounts/{account_id}"): (at("/api/v1/accounts/{a.account}"),),
    ("PATCH", "/api/v1/accounts/{account_id}"): (
        at("/api/v1/accounts/{a.account}", json={"host": "evil.example"}),
    ),
    ("DELETE", "/api/v1/accounts/{account_id}"): (at("/api/v1/accounts/{a.account}"),),
    ("POST", "/api/v1/accounts/{account_id}/test"): (at("/api/v1/accounts/{a.account}/test"),),
    ("POST", "/api/v1/accounts/{account_id}/pause"): (
        at("/api/v1/accounts/{a.account}/pause", json={"reason": "x"}),
    ),
    ("POST", "/api/v1/accounts/{account_id}/resume"): (at("/api/v1/accounts/{a.account}/resume"),),
    ("GET", "/api/v1/parties/{party_id}"): (at("/api/v1/parties/{a.party}"),),
    ("PATCH", "/api/v1/parties/{party_id}"): (
        at("/api/v1/parties/{a.party}", json={"name": "Robado"}),
    ),
    ("DELETE", "/api/v1/parties/{party_id}"): (at("/api/v1/parties/{a.party}"),),
    ("GET", "/api/v1/document-types/{code}"): (at("/api/v1/document-types/{a.type_code}"),),
    ("PATCH", "/api/v1/document-types/{code}"): (
        at("/api/v1/document-types/{a.type_code}", json={"name": "Robado"}),
    ),
    ("GET", "/api/v1/templates/{doc_type}/{language}"): (at(TEMPLATE_PATH),),
    ("PUT", "/api/v1/templates/{doc_type}/{language}"): (at(TEMPLATE_PATH, json=TEMPLATE),),
    ("DELETE", "/api/v1/templates/{doc_type}/{language}"): (at(TEMPLATE_PATH),),
    ("GET", "/api/v1/batches/{batch_id}"): (at("/api/v1/batches/{a.batch}"),),
    ("GET", "/api/v1/batches/{batch_id}/problems"): (at("/api/v1/batches/{a.batch}/problems"),),
    ("POST", "/api/v1/batches/{batch_id}/retry-failed"): (
        at("/api/v1/batches/{a.batch}/retry-failed"),
    ),
    ("GET", "/api/v1/documents/{document_id}"): (at("/api/v1/documents/{a.document}"),),
    ("PATCH", "/api/v1/documents/{document_id}"): (
        at("/api/v1/documents/{a.document}", json={"due_date": "2026-12-31"}),
    ),
    ("POST", "/api/v1/documents/{document_id}/attachments"): (
        at("/api/v1/documents/{a.document}/attachments", files=UPLOAD),
    ),
    ("GET", "/api/v1/documents/{document_id}/attachments/{attachment_id}"): (
        at("/api/v1/documents/{a.document}/attachments/{a.attachment}"),
        # The caller's own document does not hand out the owner's attachment either.
        at("/api/v1/documents/{b.document}/attachments/{a.attachment}"),
    ),
    ("GET", "/api/v1/documents/{document_id}/compose"): (
        at("/api/v1/documents/{a.document}/compose"),
    ),
    ("POST", "/api/v1/documents/{document_id}/send"): (
        at("/api/v1/documents/{a.document}/send", json={}),
    ),
    ("GET", "/api/v1/documents/{document_id}/messages"): (
        at("/api/v1/documents/{a.document}/messages"),
    ),
    ("GET", "/api/v1/documents/{document_id}/announce-cancellation"): (
        at("/api/v1/documents/{a.cancelled}/announce-cancellation"),
    ),
    ("POST", "/api/v1/documents/{document_id}/announce-cancellation"): (
        at("/api/v1/documents/{a.cancelled}/announce-cancellation", json={}),
    ),
    ("GET", "/api/v1/messages/{message_id}"): (at("/api/v1/messages/{a.message}"),),
    ("GET", "/api/v1/messages/{message_id}/source"): (at("/api/v1/messages/{a.message}/source"),),
    ("POST", "/api/v1/messages/{message_id}/resend"): (at("/api/v1/messages/{a.message}/resend"),),
    ("POST", "/api/v1/messages/{message_id}/cancel"): (at("/api/v1/messages/{a.message}/cancel"),),
    ("GET", "/api/v1/automation/rules/{rule_id}"): (at(RULE),),
    ("PATCH", "/api/v1/automation/rules/{rule_id}"): (at(RULE, json={"delay_seconds": 60}),),
    ("DELETE", "/api/v1/automation/rules/{rule_id}"): (at(RULE),),
    ("POST", "/api/v1/automation/rules/{rule_id}/dry-run"): (
        lambda a, b: Call(f"{RULE.format(a=a)}/dry-run", json={"document_ids": [a.document]}),
    ),
    ("GET", "/api/v1/automation/runs/{name}"): (at("/api/v1/automation/runs/{a.run}"),),
    ("POST", "/api/v1/automation/runs/{name}/close"): (
        at("/api/v1/automation/runs/{a.run}/close", json={"dry_run": False}),
    ),
    ("DELETE", "/api/v1/automation/reminders/{rule_id}"): (
        at("/api/v1/automation/reminders/{a.reminder}"),
    ),
    ("GET", "/api/v1/automation/statements/{party_code}.pdf"): (
        at("/api/v1/automation/statements/{a.party_code}.pdf", params=AS_OF),
    ),
    ("GET", "/api/v1/automation/statements/{party_code}"): (
        at("/api/v1/automation/statements/{a.party_code}", params=AS_OF),
    ),
    ("PATCH", "/api/v1/automation/jobs/{job_id}"): (
        at("/api/v1/automation/jobs/{a.job}", json={"enabled": False}),
    ),
    ("DELETE", "/api/v1/automation/jobs/{job_id}"): (at("/api/v1/automation/jobs/{a.job}"),),
    ("GET", "/api/v1/automation/jobs/{job_id}/executions"): (
        at("/api/v1/automation/jobs/{a.job}/executions"),
    ),
    ("POST", "/api/v1/automation/jobs/{job_id}/dry-run"): (
        at("/api/v1/automation/jobs/{a.job}/dry-run"),
    ),
    ("POST", "/api/v1/tokens/{token_id}/revoke"): (at("/api/v1/tokens/{a.token}/revoke"),),
    ("DELETE", "/api/v1/tokens/{token_id}"): (at("/api/v1/tokens/{a.token}"),),
    ("PATCH", "/api/v1/members/{user_id}"): (
        at("/api/v1/members/{a.member}", json={"role": "admin"}),
    ),
    ("DELETE", "/api/v1/members/{user_id}/sessions"): (at("/api/v1/members/{a.member}/sessions"),),
    ("DELETE", "/api/v1/members/{user_id}"): (at("/api/v1/members/{a.member}"),),
    ("DELETE", "/api/v1/invitations/{invitation_id}"): (at("/api/v1/invitations/{a.invitation}"),),
    ("GET", "/api/v1/catcher/messages/{caught_id}/raw"): (
        at("/api/v1/catcher/messages/{a.caught}/raw"),
    ),
}


def _account_form(a: Ids) -> dict[str, str]:
    return {
        "name": f"Cuenta {a.tag}",
        "host": "127.0.0.1",
        "port": "1",
        "security": "none",
        "from_email": f"facturas@{a.tag}.mx",
        "from_name": "Robado",
    }


SEND_FORM = {"to": "cliente@example.com", "subject": "S", "body_text": "x", "idem_key": "k-1"}
TYPE_FORM = {"name": "Robado", "recipient_roles": "finance", "fallback": "general_email"}
PARTY_FORM = {"name": "Robado", "language": "es", "contact_rows": "0"}
TEMPLATE_PAGE = "/settings/templates/{a.type_code}/es"
WEB_ROUTES: dict[tuple[str, str], tuple[Build, ...]] = {
    ("GET", "/documents/{document_id}"): (at("/documents/{a.document}"),),
    ("GET", "/documents/{document_id}/attachments/{attachment_id}"): (
        at("/documents/{a.document}/attachments/{a.attachment}"),
        at("/documents/{b.document}/attachments/{a.attachment}"),
    ),
    ("GET", "/documents/{document_id}/send"): (at("/documents/{a.document}/send"),),
    ("POST", "/documents/{document_id}/send/preview"): (
        # Edited text: the preview shows only what was posted, yet the id is checked.
        at("/documents/{a.document}/send/preview", form={"body_text": "y", "original_text": ""}),
        at("/documents/{a.document}/send/preview", form={"body_text": "", "original_text": ""}),
    ),
    ("POST", "/documents/{document_id}/send"): (
        at("/documents/{a.document}/send", form=SEND_FORM),
    ),
    ("GET", "/accounts/{account_id}/connect"): (at("/accounts/{a.account}/connect"),),
    ("POST", "/accounts/{account_id}/connect"): (
        at("/accounts/{a.account}/connect", form={"back": "/"}),
    ),
    ("GET", "/batches/{batch_id}"): (at("/batches/{a.batch}"),),
    ("GET", "/batches/{batch_id}/progress"): (at("/batches/{a.batch}/progress"),),
    ("POST", "/batches/{batch_id}/retry"): (at("/batches/{a.batch}/retry"),),
    ("GET", "/log/{message_id}"): (at("/log/{a.message}"),),
    ("GET", "/log/{message_id}/status"): (at("/log/{a.message}/status"),),
    ("GET", "/log/{message_id}/source"): (at("/log/{a.message}/source"),),
    ("GET", "/log/{message_id}/attachments/{index}"): (at("/log/{a.message}/attachments/0"),),
    ("POST", "/log/{message_id}/resend"): (at("/log/{a.message}/resend"),),
    ("GET", "/settings/accounts/{account_id}"): (at("/settings/accounts/{a.account}"),),
    ("POST", "/settings/accounts/{account_id}"): (
        at("/settings/accounts/{a.account}", form=_account_form),
    ),
    ("POST", "/settings/accounts/{account_id}/authenticate"): (
        at("/settings/accounts/{a.account}/authenticate"),
    ),
    ("POST", "/settings/accounts/{account_id}/test"): (at("/settings/accounts/{a.account}/test"),),
    ("POST", "/settings/types/{code}"): (at("/settings/types/{a.type_code}", form=TYPE_FORM),),
    ("GET", "/settings/parties/{party_id}"): (at("/settings/parties/{a.party}"),),
    ("POST", "/settings/parties/{party_id}"): (at("/settings/parties/{a.party}", form=PARTY_FORM),),
    ("GET", "/settings/templates/{code}/{lang}"): (at(TEMPLATE_PAGE),),
    ("POST", "/settings/templates/{code}/{lang}/preview"): (
        at(TEMPLATE_PAGE + "/preview", form=TEMPLATE),
    ),
    ("POST", "/settings/templates/{code}/{lang}"): (at(TEMPLATE_PAGE, form=TEMPLATE),),
    ("POST", "/settings/templates/{code}/{lang}/reset"): (at(TEMPLATE_PAGE + "/reset"),),
    ("POST", "/settings/tokens/{token_id}/revoke"): (at("/settings/tokens/{a.token}/revoke"),),
    ("POST", "/settings/users/{user_id}/role"): (
        at("/settings/users/{a.member}/role", form={"role": "admin"}),
    ),
    ("POST", "/settings/users/{user_id}/sessions"): (at("/settings/users/{a.member}/sessions"),),
    ("POST", "/settings/users/{user_id}/remove"): (
        at("/settings/users/{a.member}/remove"),
        at("/settings/users/{a.member}/remove", form={"confirm": "1"}),
    ),
    ("POST", "/settings/invitations/{invitation_id}/revoke"): (
        at("/settings/invitations/{a.invitation}/revoke"),
    ),
    ("GET", "/catcher/{caught_id}"): (at("/catcher/{a.caught}"),),
    ("GET", "/catcher/{caught_id}/attachments/{index}"): (at("/catcher/{a.caught}/attachments/0"),),
}
# An invitation link is a capability: whoever holds it sees the offer, and only the
# invited address can accept it (see the test of that below).
LINK_ROUTES = {("GET", "/invitations/{token}"), ("POST", "/invitations/{token}")}

# The provider names the caller's own OAuth client: see the test of that below.
OWN_CLIENT_ROUTES = {("PUT", "/api/v1/oauth/clients/{provider}")}


def routes_with_path_parameters(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route whose path has a parameter, included routers flattened."""
    flatten = getattr(routing, "iter_route_contexts", None)  # FastAPI >= 0.130 nests routers
    found = set()
    for route in flatten(app.routes) if flatten else app.routes:
        path = getattr(route, "path", None) or ""
        for method in getattr(route, "methods", None) or ():
            if "{" in path and method != "HEAD":
                found.add((method, path))
    return found


# ---------------------------------------------------------------- two companies


@dataclass
class Company:
    company_id: int
    ids: Ids
    api: TestClient
    web: TestClient
    csrf: str


def _made(answer: httpx.Response) -> Any:
    assert answer.status_code in (200, 201, 202, 204), answer.text
    return answer.json()


def _own_objects(api: TestClient, tag: str) -> Ids:
    """A company's objects of every kind that a route can name, made through its API."""

    def post(path: str, body: Any) -> Any:
        return _made(api.post(f"{API}{path}", json=body))

    code, type_code = tag.upper(), f"{tag}_only"
    account = post("/accounts", _account_body(tag))
    party = post("/parties", _party_body(tag, code))
    document = post("/documents", _document_body(code, f"{code}-1", "stamped", with_pdf=True))
    cancelled = post("/documents", _document_body(code, f"{code}-2", "cancelled", with_pdf=False))
    message = post(f"/documents/{document['id']}/send", {})
    batch = post("/documents/send-batch", {"document_ids": [document["id"]]})
    post("/document-types", {"code": type_code, "name": f"Solo {tag}", "recipient_roles": []})
    _made(api.put(f"{API}/templates/{type_code}/es", json=TEMPLATE))
    rule = post("/automation/rules", {"doc_type": "invoice", "enabled": False})
    post("/automation/runs", {"name": f"run-{tag}"})
    reminder = post("/automation/reminders", {"offset_days": 3})
    job = post("/automation/jobs", {"name": "noche", "kind": "reminders", "cron": "0 8 * * *"})
    _made(api.put(f"{API}/oauth/clients/gmail", json={"client_id": tag, "client_secret": "s"}))
    token = post("/tokens", {"name": f"erp {tag}", "role": "viewer"})
    return Ids(
        tag,
        document["id"],
        document["attachments"][0]["id"],
        cancelled["id"],
        party["id"],
        code,
        account["id"],
        message["id"],
        batch["batch_id"],
        type_code,
        rule["id"],
        f"run-{tag}",
        reminder["id"],
        job["id"],
        token["id"],
    )


def _account_body(tag: str) -> dict[str, Any]:
    return {
        "name": f"Cuenta {tag}",
        "host": "127.0.0.1",
        "port": 1,
        "security": "none",
        "from_email": f"facturas@{tag}.mx",
        "is_default": True,
    }


def _party_body(tag: str, code: str) -> dict[str, Any]:
    contact = {"name": "Fina", "email": f"finanzas@{tag}.example", "roles": ["finance"]}
    return {
        "code": code,
        "name": f"Cliente {tag}",
        "email": f"general@{tag}.example",
        "contacts": [contact],
    }


def _document_body(code: str, number: str, status: str, with_pdf: bool) -> dict[str, Any]:
    pdf = {
        "filename": f"{number}.pdf",
        "content_type": "application/pdf",
        "content_base64": base64.b64encode(PDF).decode(),
    }
    return {
        "type": "invoice",
        "number": number,
        "party_code": code,
        "total": "116.00",
        "currency": "MXN",
        "due_date": "2026-11-01",
        "status": status,
        "attachments": [pdf] if with_pdf else [],
    }


def signed_in(runtime: Runtime, email: str) -> tuple[TestClient, str]:
    """A browser session through the login form; returns the client and its CSRF token."""
    client = sign_in(runtime, email, PASSWORD)
    return client, csrf_of(client)


def make_company(runtime: Runtime, tag: str) -> Company:
    tenant = make_tenant(runtime, f"Empresa {tag} SA de CV")
    user = create_user(runtime, f"admin@{tag}.example", PASSWORD, name=f"Admin {tag}")
    add_membership(runtime, user.id, tenant.company_id, Role.ADMIN)
    web, csrf = signed_in(runtime, f"admin@{tag}.example")
    ids = _own_objects(tenant.client, tag)
    member = create_user(runtime, f"sender@{tag}.example", PASSWORD, name=f"Sender {tag}")
    add_membership(runtime, member.id, tenant.company_id, Role.SENDER)
    invited = _made(tenant.client.post(f"{API}/invitations", json={"email": f"new@{tag}.mx"}))
    with runtime.session() as session:  # what the demo catcher kept of this company's mail
        caught = t.CaughtMessage(
            mail_from=f"facturas@{tag}.mx",
            rcpt_to=[f"cliente@{tag}.mx"],
            subject=f"Cliente {tag}",
            raw=CAUGHT.format(tag=tag).encode(),
            company_id=tenant.company_id,
        )
        session.add(caught)
        session.flush()
        caught_id = caught.id
    ids = replace(ids, member=member.id, invitation=invited["id"], caught=caught_id)
    return Company(tenant.company_id, ids, tenant.client, web, csrf)


@dataclass
class World:
    runtime: Runtime
    a: Company  # the owner
    b: Company  # the other company, asking for A's objects


@pytest.fixture
def bare(sqlite_template: Path, tmp_path: Path) -> Runtime:
    """A runtime on a fresh, migrated SQLite file with no company yet."""
    target = tmp_path / "isolation.sqlite3"
    target.write_bytes(sqlite_template.read_bytes())
    return make_runtime(f"sqlite:///{target}", tmp_path / "data")


@pytest.fixture
def world(bare: Runtime) -> Iterator[World]:
    built = World(bare, make_company(bare, "alfa"), make_company(bare, "beta"))
    yield built
    for company in (built.a, built.b):
        company.api.close()
        company.web.close()


def snapshot(runtime: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (but session bookkeeping), to prove a refusal wrote nothing."""
    with runtime.engine.connect() as conn:
        return {
            table.name: sorted(
                (tuple(row) for row in conn.execute(select(*_kept_columns(table)))), key=repr
            )
            for table in Base.metadata.sorted_tables
            if table.name not in VOLATILE_TABLES
        }


def _kept_columns(table: Any) -> list[Any]:
    volatile = VOLATILE_COLUMNS.get(table.name, set())
    return [column for column in table.columns if column.name not in volatile]


# ---------------------------------------------------------------- requests


def send(client: TestClient, method: str, call: Call, csrf: str | None = None) -> httpx.Response:
    if csrf is None:
        return client.request(
            method, call.path, json=call.json, files=call.files, params=call.params
        )
    form = {**(call.form or {}), **({"csrf_token": csrf} if method != "GET" else {})}
    return client.request(
        method, call.path, data=form or None, params=call.params, follow_redirects=False
    )


def _refusal_problem(answer: httpx.Response, web: bool, owner: Ids) -> str | None:
    if answer.status_code != 404:
        return f"answered {answer.status_code}: {answer.text[:300]}"
    leaked = [m for m in owner.markers if m in answer.text]
    if leaked:
        return f"404 that shows the owner's data {leaked}"
    if web:
        return None if "text/html" in answer.headers["content-type"] else "404 is not a page"
    body = answer.json()
    if not isinstance(body.get("error"), str) or "field" not in body:
        return f"404 without the error shape: {body}"
    return None


def refusals(world: World, table: dict[tuple[str, str], tuple[Build, ...]], web: bool) -> list[str]:
    """B asks for each of A's objects: every answer that is not a clean 404 is a problem."""
    a, b = world.a, world.b
    problems = []
    before = snapshot(world.runtime)
    for (method, _route), builds in table.items():
        for build in builds:
            call = build(a.ids, b.ids)
            answer = send(b.web if web else b.api, method, call, b.csrf if web else None)
            problem = _refusal_problem(answer, web, a.ids)
            after = snapshot(world.runtime)
            changed = sorted(name for name in after if after[name] != before[name])
            if changed:
                problem = f"{problem or 'refused'}, but changed {changed}"
                before = after
            if problem:
                problems.append(f"{method} {call.path}: {problem}")
    return problems


def _destructive_last(item: tuple[tuple[str, str], tuple[Build, ...]]) -> int:
    (method, path), _builds = item
    order = {"GET": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}
    return order[method] + (2 if path.endswith("/reset") else 0)


def owner_answers(
    world: World, table: dict[tuple[str, str], tuple[Build, ...]], web: bool
) -> list[str]:
    """A makes the same requests for its own objects: none may be 404 (nor 5xx)."""
    a = world.a
    problems = []
    for (method, _route), builds in sorted(table.items(), key=_destructive_last):
        for build in builds:
            call = build(a.ids, a.ids)
            answer = send(a.web if web else a.api, method, call, a.csrf if web else None)
            if answer.status_code == 404 or answer.status_code >= 500:
                problems.append(f"{method} {call.path} by its owner: {answer.status_code}")
    return problems


# ---------------------------------------------------------------- tests


def test_every_route_with_a_path_parameter_is_in_the_tables(bare: Runtime) -> None:
    found = routes_with_path_parameters(create_app(bare))
    covered = {*API_ROUTES, *WEB_ROUTES, *OWN_CLIENT_ROUTES, *LINK_ROUTES}
    assert sorted(found - covered) == [], "add these routes to a table in this file"
    assert sorted(covered - found) == [], "these routes are gone: remove them from the tables"


def test_no_api_route_shows_or_changes_another_companys_object(world: World) -> None:
    assert refusals(world, API_ROUTES, web=False) == []
    assert owner_answers(world, API_ROUTES, web=False) == []


def test_no_page_shows_or_changes_another_companys_object(world: World) -> None:
    assert refusals(world, WEB_ROUTES, web=True) == []
    assert owner_answers(world, WEB_ROUTES, web=True) == []


def test_an_oauth_client_path_names_the_callers_own_client_only(bare: Runtime) -> None:
    a, b = make_tenant(bare, "Empresa alfa"), make_tenant(bare, "Empresa beta")
    clients = f"{API}/oauth/clients"
    _made(a.client.put(f"{clients}/gmail", json={"client_id": "alfa", "client_secret": "s"}))
    before = a.client.get(clients).json()
    replaced = {"client_id": "beta-replaced", "client_secret": "other"}
    assert b.client.put(f"{clients}/gmail", json=replaced).status_code == 200
    assert a.client.get(clients).json() == before
    assert "beta-replaced" in b.client.get(clients).text
    with bare.session() as session:
        rows = session.scalars(select(t.OAuthClient).where(t.OAuthClient.provider == "gmail"))
        owners = {r.company_id: r.client_id for r in rows}
    assert owners == {a.company_id: "alfa", b.company_id: "beta-replaced"}
    a.client.close()
    b.client.close()


def test_the_demo_catcher_is_closed_to_non_admins(bare: Runtime) -> None:
    with bare.session() as session:
        caught = t.CaughtMessage(
            mail_from="facturas@alfa.mx", rcpt_to=["x@example.com"], subject="s", raw=b"Subject: s"
        )
        session.add(caught)
        session.flush()
        caught_id = caught.id
    company = make_tenant(bare, "Empresa beta")
    company.client.close()
    sender_api = client_for(bare, company.company_id, Role.SENDER)
    user = create_user(bare, "sender@beta.example", PASSWORD)
    add_membership(bare, user.id, company.company_id, Role.SENDER)
    sender_web, _csrf = signed_in(bare, "sender@beta.example")
    try:
        assert sender_api.get(f"{API}/catcher/messages/{caught_id}/raw").status_code == 403
        assert sender_web.get(f"/catcher/{caught_id}").status_code == 403
        assert sender_web.get(f"/catcher/{caught_id}/attachments/0").status_code == 403
    finally:
        sender_api.close()
        sender_web.close()


def test_an_invitation_link_of_another_company_lets_no_one_else_in(bare: Runtime) -> None:
    a, b = make_company(bare, "alfa"), make_company(bare, "beta")
    link = _made(a.api.post(f"{API}/invitations", json={"email": "cfo@alfa.mx"}))["link"]
    path = link.replace("http://testserver", "")
    try:
        assert b.web.get(path).status_code == 200  # the holder of a link may read the offer
        taken = b.web.post(path, data={"csrf_token": b.csrf})
        assert taken.status_code == 403
        with bare.session() as session:
            joined = session.scalars(
                select(t.Membership.company_id)
                .join(t.User, t.User.id == t.Membership.user_id)
                .where(t.User.email == "admin@beta.example")
            )
            assert set(joined) == {b.company_id}
        assert b.api.delete(f"{API}/invitations/{a.ids.invitation}").status_code == 404
    finally:
        for company in (a, b):
            company.api.close()
            company.web.close()


def test_another_companys_oauth_state_connects_nothing(world: World) -> None:
    """Company B's admin brings company A's pending consent back to the callback."""
    gmail = _made(
        world.a.api.post(
            f"{API}/accounts", json={"kind": "gmail", "name": "Gmail", "from_email": "v@alfa.mx"}
        )
    )
    started = world.a.web.post(
        f"/settings/accounts/{gmail['id']}/authenticate",
        data={"csrf_token": world.a.csrf},
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    state = parse_qs(urlparse(started.headers["location"]).query)["state"][0]
    before = snapshot(world.runtime)

    landed = world.b.web.get(f"/oauth/callback?state={state}&code=stolen", follow_redirects=False)

    assert landed.status_code == 403
    assert snapshot(world.runtime) == before
