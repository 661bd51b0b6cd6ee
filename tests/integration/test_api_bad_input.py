"""Bad input through the HTTP API: a clear 4xx naming the field, never a 500, nothing half-stored.

Every write test lists afterwards to show that nothing was stored. The database is
real (SQLite file and PostgreSQL); the mail account points at a closed port because
these tests only queue (or refuse to queue) messages, they never deliver them.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from docmail.services.runtime import Role, Runtime
from tests.support.app import Tenant, client_for, make_runtime, make_tenant

API = "/api/v1"
PDF = b"%PDF-1.4\n" + b"0123456789abcdef" * 64 + b"\n%%EOF\n"
GOOD_TEMPLATE = {
    "subject": "{{ document.type_name }} {{ document.number }}",
    "body_html": "<p>Hola {{ party.name }}</p>",
    "body_text": "Hola {{ party.name }}",
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class World:
    runtime: Runtime
    tenant: Tenant

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.tenant.client.request(method, f"{API}{path}", **kw)

    def api(self, method: str, path: str, expect: int | None = None, **kw: Any) -> Any:
        response = self.request(method, path, **kw)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json() if response.content else None

    def error(
        self, method: str, path: str, status: int | tuple[int, ...], **kw: Any
    ) -> dict[str, Any]:
        """Call expecting a failure; check the one error shape and return the body."""
        response = self.request(method, path, **kw)
        return error_body(response, status)

    def total(self, path: str) -> int:
        listed = self.api("GET", path, 200)
        return int(listed["total"]) if "total" in listed else len(listed["items"])


def error_body(response: httpx.Response, status: int | tuple[int, ...]) -> dict[str, Any]:
    allowed = status if isinstance(status, tuple) else (status,)
    assert response.status_code in allowed, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and body["error"], body
    assert "field" in body, body
    return body


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> World:
    runtime = make_runtime(database_url, tmp_path / "data")
    return World(runtime, make_tenant(runtime))


def make_account(world: World, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Facturación",
        "host": "127.0.0.1",
        "port": 1,
        "security": "none",
        "from_email": "facturacion@acme.mx",
        "from_name": "ACME Facturación",
        **overrides,
    }
    created: dict[str, Any] = world.api("POST", "/accounts", 201, json=body)
    return created


def make_party(world: World, code: str = "CLI1") -> dict[str, Any]:
    created: dict[str, Any] = world.api(
        "POST",
        "/parties",
        201,
        json={
            "code": code,
            "name": f"Cliente {code}",
            "email": f"general@{code.lower()}.mx",
            "contacts": [
                {"name": "Fina", "email": f"finance@{code.lower()}.mx", "roles": ["finance"]}
            ],
        },
    )
    return created


def document_body(number: str = "F-1", party: str = "CLI1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "invoice",
        "number": number,
        "party_code": party,
        "issue_date": "2026-11-20",
        "total": "1160.00",
        "currency": "MXN",
        "status": "stamped",
        "attachments": [
            {
                "filename": f"{number}.pdf",
                "content_type": "application/pdf",
                "content_base64": b64(PDF),
            }
        ],
        **extra,
    }


def make_document(world: World, number: str = "F-1", party: str = "CLI1") -> dict[str, Any]:
    created: dict[str, Any] = world.api(
        "POST", "/documents", 201, json=document_body(number, party)
    )
    return created


@pytest.fixture
def sendable(world: World) -> int:
    """The id of a stamped invoice of a party with a finance contact, and a default account."""
    make_account(world)
    make_party(world)
    return int(make_document(world)["id"])


# -- parties and accounts -------------------------------------------------------------


def test_a_party_with_a_malformed_contact_email_is_refused_and_not_stored(world: World) -> None:
    body = {
        "code": "MAL",
        "name": "Cliente Mal",
        "contacts": [
            {"name": "Uno", "email": "uno@mal.mx", "roles": ["finance"]},
            {"name": "Dos", "email": "dos@mal.mx", "roles": ["einvoice"]},
            {"name": "Tres", "email": "not-an-email", "roles": []},
        ],
    }
    error = world.error("POST", "/parties", 422, json=body)
    assert error["field"] == "contacts[2].email"
    assert "not-an-email" in error["error"]
    assert world.api("GET", "/parties", 200) == {"items": [], "total": 0}


def test_an_account_from_name_with_a_line_break_is_refused_and_not_stored(world: World) -> None:
    body = {
        "name": "Inyección",
        "host": "127.0.0.1",
        "port": 25,
        "security": "none",
        "from_email": "facturacion@acme.mx",
        "from_name": "ACME\r\nBcc: victim@evil.mx",
    }
    error = world.error("POST", "/accounts", 422, json=body)
    assert error["field"] == "from_name"
    assert world.api("GET", "/accounts", 200)["items"] == []


def test_patching_an_account_from_name_with_a_line_break_is_refused(world: World) -> None:
    account = make_account(world)
    error = world.error(
        "PATCH", f"/accounts/{account['id']}", 422, json={"from_name": "ACME\nBcc: x@evil.mx"}
    )
    assert error["field"] == "from_name"
    assert world.api("GET", f"/accounts/{account['id']}", 200)["from_name"] == "ACME Facturación"


# -- sending ----------------------------------------------------------------------------


def test_a_subject_with_a_line_break_is_refused_at_send_and_nothing_is_queued(
    world: World, sendable: int
) -> None:
    error = world.error(
        "POST", f"/documents/{sendable}/send", 422, json={"subject": "Hola\r\nBcc: x@evil.mx"}
    )
    assert error["field"] == "subject"
    assert world.api("GET", "/messages", 200)["total"] == 0


def test_a_display_name_with_a_line_break_in_to_is_refused(world: World, sendable: int) -> None:
    error = world.error(
        "POST", f"/documents/{sendable}/send", 422, json={"to": ["Evil\r\nBcc: a@b.mx <x@y.mx>"]}
    )
    assert error["field"] == "to[0]"
    assert world.api("GET", "/messages", 200)["total"] == 0


@pytest.mark.parametrize("kind", ["to", "cc", "bcc"])
@pytest.mark.parametrize("bad", ["no-at-sign", "two@@ats.mx", "Name <broken@>", "a@b.mx, c@d.mx"])
def test_malformed_addresses_at_send_are_refused_by_position(
    world: World, sendable: int, kind: str, bad: str
) -> None:
    edits: dict[str, Any] = {"to": ["ok@cli1.mx"], kind: ["fine@cli1.mx", bad]}
    error = world.error("POST", f"/documents/{sendable}/send", 422, json=edits)
    assert error["field"] == f"{kind}[1]"
    assert bad.split("<")[-1].rstrip(">") in error["error"]
    assert world.api("GET", "/messages", 200)["total"] == 0


def test_a_viewer_can_neither_create_parties_nor_send(world: World, sendable: int) -> None:
    viewer = client_for(world.runtime, world.tenant.company_id, Role.VIEWER)
    assert viewer.get(f"{API}/documents/{sendable}").status_code == 200
    denied = error_body(
        viewer.post(f"{API}/parties", json={"code": "V1", "name": "Viewer party"}), 403
    )
    assert denied["field"] == "role"
    error_body(viewer.post(f"{API}/documents/{sendable}/send", json={}), 403)
    error_body(viewer.post(f"{API}/documents", json=document_body("F-V")), 403)
    assert [p["code"] for p in world.api("GET", "/parties", 200)["items"]] == ["CLI1"]
    assert world.api("GET", "/messages", 200)["total"] == 0
    assert world.total("/documents") == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer dm_not-a-real-token"},
        {"Authorization": "Basic ZG9jbWFpbDpzM2NyZXQ="},
        {"Authorization": "Bearer "},
    ],
    ids=["missing", "unknown-token", "wrong-scheme", "empty-token"],
)
def test_missing_or_invalid_authorization_is_a_401_with_the_error_shape(
    world: World, headers: dict[str, str]
) -> None:
    client = world.tenant.client
    saved = client.headers.pop("Authorization")
    try:
        for method, path in (("GET", "/documents"), ("POST", "/parties")):
            response = client.request(
                method, f"{API}{path}", headers=headers, json={"code": "X", "name": "X"}
            )
            error_body(response, 401)
    finally:
        client.headers["Authorization"] = saved
    assert world.api("GET", "/parties", 200)["total"] == 0


# -- templates --------------------------------------------------------------------------


def template_is_default(world: World, doc_type: str = "invoice", language: str = "es") -> bool:
    current = world.api("GET", f"/templates/{doc_type}/{language}", 200)
    return current["custom"] is False


def test_a_template_syntax_error_names_the_part_and_the_line(world: World) -> None:
    body = {
        "subject": "Factura {{ document.number }}",
        "body_html": "<p>Hola</p>\n<p>{{ party.name }}</p>\n{% if %}x{% endif %}\n",
        "body_text": "Hola",
    }
    error = world.error("PUT", "/templates/invoice/es", 422, json=body)
    assert error["field"] == "body_html"
    assert error["line"] == 3
    assert template_is_default(world)


def test_a_template_with_an_unknown_variable_is_refused(world: World) -> None:
    body = {**GOOD_TEMPLATE, "body_text": "Estimado {{ customer.name }}"}
    error = world.error("PUT", "/templates/invoice/es", 422, json=body)
    assert "customer" in error["error"]
    assert error["field"] == "body_text"
    assert template_is_default(world)


SANDBOX_ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ document.__class__ }}",
    "{{ self._TemplateReference__context }}",
]


@pytest.mark.parametrize("escape", SANDBOX_ESCAPES)
def test_sandbox_escapes_are_refused_when_saving_and_never_crash(world: World, escape: str) -> None:
    for part in ("subject", "body_html", "body_text"):
        body = {**GOOD_TEMPLATE, part: f"Hola {escape}"}
        error = world.error("PUT", "/templates/invoice/es", 422, json=body)
        assert error["field"] == part, error
        checked = world.error("POST", "/templates/check", 422, json=body)
        assert checked["field"] == part, checked
        assert template_is_default(world), f"{escape} in {part} was saved"


def test_a_document_still_composes_after_refused_templates(world: World, sendable: int) -> None:
    for escape in SANDBOX_ESCAPES:
        world.request("PUT", "/templates/invoice/es", json={**GOOD_TEMPLATE, "subject": escape})
    composed = world.request("GET", f"/documents/{sendable}/compose")
    # Whatever was (wrongly) saved, rendering must never be a 500 nor leak Python internals.
    assert composed.status_code in (200, 422), composed.text
    assert "subclasses" not in composed.text and "<class" not in composed.text
    if composed.status_code == 422:
        error_body(composed, 422)
    assert world.api("GET", "/messages", 200)["total"] == 0


def test_checking_a_template_never_saves_it(world: World) -> None:
    assert world.api("POST", "/templates/check", 200, json=GOOD_TEMPLATE) == {"ok": True}
    assert template_is_default(world)
    bad = {**GOOD_TEMPLATE, "body_html": "{% for x in %}"}
    error = world.error("POST", "/templates/check", 422, json=bad)
    assert error["field"] == "body_html"
    assert template_is_default(world)
    assert all(not t["custom"] for t in world.api("GET", "/templates", 200)["items"])


DEEP_TEMPLATES = {
    "parentheses": "{{ " + "(" * 10_000 + "1" + ")" * 10_000 + " }}",
    "if blocks": "{% if 1 %}" * 5_000 + "x" + "{% endif %}" * 5_000,
    "a long chain": "{{ 1" + " + 1" * 20_000 + " }}",
}


@pytest.mark.parametrize("nested", DEEP_TEMPLATES.values(), ids=DEEP_TEMPLATES)
def test_a_template_nested_deeper_than_the_parser_takes_is_a_422_with_its_line(
    world: World, nested: str
) -> None:
    body = {**GOOD_TEMPLATE, "body_text": "Hola\n" + nested}
    for method, path in (("POST", "/templates/check"), ("PUT", "/templates/invoice/es")):
        error = world.error(method, path, 422, json=body)
        assert error["field"] == "body_text", error
        assert error["line"] == 2, error
    assert template_is_default(world)


@pytest.mark.parametrize("part", ["subject", "body_html", "body_text"])
def test_checking_a_template_over_the_saved_size_is_a_422_naming_the_part(
    world: World, part: str
) -> None:
    body = {**GOOD_TEMPLATE, part: "x" * 200_001}
    error = world.error("POST", "/templates/check", 422, json=body)
    assert part in error["field"], error


def test_a_saved_template_that_encodes_with_punycode_stops_compose_quickly_naming_the_codec(
    world: World, sendable: int
) -> None:
    distinct = "".join(chr(c) for c in range(0x100, 0x100 + 10_000))
    body = {**GOOD_TEMPLATE, "body_text": "Hola\n{{ '" + distinct + "'.encode('punycode') }}"}
    world.api("PUT", "/templates/invoice/es", 200, json=body)  # passes the static checks
    started = time.monotonic()
    error = world.error("GET", f"/documents/{sendable}/compose", 422)
    assert time.monotonic() - started < 3
    assert error["field"] == "body_text" and error["line"] == 2
    assert "'punycode'" in error["error"]


# -- documents: sizes, attachments ---------------------------------------------------------


def _json_document_with_attachment(encoded_size: int) -> bytes:
    """A document whose attachment is ``encoded_size`` base64 characters, built as bytes."""
    head = json.dumps(document_body("BIG-1", attachments=[])).encode()
    head = head.removesuffix(b"[]}")  # attachments is the last key
    attachment = (
        b'[{"filename": "big.pdf", "content_type": "application/pdf", "content_base64": "'
        + b"A" * encoded_size
        + b'"}]}'
    )
    assert head.endswith(b'"attachments": ')
    return head + attachment


def test_a_50_mb_json_attachment_is_refused_with_413_and_nothing_stored(world: World) -> None:
    make_party(world)
    payload = _json_document_with_attachment(50 * 1024 * 1024 * 4 // 3)
    response = world.request(
        "POST", "/documents", content=payload, headers={"Content-Type": "application/json"}
    )
    del payload
    error = error_body(response, 413)
    assert error["field"] == "body" or str(error["field"]).startswith("attachments")
    assert world.total("/documents") == 0


def test_an_attachment_over_the_limit_inside_a_small_request_is_refused(world: World) -> None:
    make_party(world)
    encoded = (10 * 1024 * 1024 + 512 * 1024) * 4 // 3  # 10.5 MB decoded, 14 MB request
    payload = _json_document_with_attachment(encoded)
    response = world.request(
        "POST", "/documents", content=payload, headers={"Content-Type": "application/json"}
    )
    del payload
    error = error_body(response, 413)
    assert error["field"] == "attachments[0].content_base64"
    assert world.total("/documents") == 0


def test_an_11_mb_multipart_upload_is_refused_with_413_and_nothing_stored(world: World) -> None:
    make_party(world)
    document = json.dumps({k: v for k, v in document_body("UP-1").items() if k != "attachments"})
    big = b"%PDF-1.4\n" + b"\0" * (11 * 1024 * 1024)
    response = world.request(
        "POST",
        "/documents",
        data={"document": document},
        files=[("attachments", ("UP-1.pdf", big, "application/pdf"))],
    )
    error = error_body(response, 413)
    assert str(error["field"]).startswith("attachments") or error["field"] == "body"
    assert world.total("/documents") == 0


def test_a_streamed_body_over_the_limit_is_refused_with_413_naming_the_body(world: World) -> None:
    """Without Content-Length the limit is enforced while the body streams in."""
    make_party(world)
    payload = _json_document_with_attachment(24 * 1024 * 1024)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 1024 * 1024):
            yield payload[start : start + 1024 * 1024]

    response = world.request(
        "POST", "/documents", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    error = error_body(response, 413)
    assert error["field"] == "body", error
    assert world.total("/documents") == 0


def test_a_malformed_base64_attachment_is_refused(world: World) -> None:
    make_party(world)
    attachments = [
        {
            "filename": "ok.pdf",
            "content_type": "application/pdf",
            "content_base64": "%%not base64%%",
        }
    ]
    error = world.error(
        "POST", "/documents", 422, json=document_body("B64-1", attachments=attachments)
    )
    assert error["field"] == "attachments[0].content_base64"
    assert world.total("/documents") == 0


@pytest.mark.parametrize("name", ["../../etc/passwd", "..\\..\\boot.ini", "a/b.pdf", ".."])
def test_an_attachment_filename_with_a_path_is_refused(world: World, name: str) -> None:
    make_party(world)
    good = {"filename": "ok.pdf", "content_type": "application/pdf", "content_base64": b64(PDF)}
    bad = {**good, "filename": name}
    error = world.error(
        "POST", "/documents", 422, json=document_body("P-1", attachments=[good, bad])
    )
    assert error["field"] == "attachments[1].filename"
    assert world.total("/documents") == 0


@pytest.mark.parametrize(
    "filename,content_type",
    [
        ("../../etc/passwd", "application/pdf"),
        ("..\\..\\boot.ini", "application/pdf"),
        ("invoice.pdf", "text/html; x=y"),
    ],
    ids=["unix-path", "windows-path", "bad-content-type"],
)
def test_an_uploaded_file_is_checked_like_a_json_attachment(
    world: World, filename: str, content_type: str
) -> None:
    make_party(world)
    document = json.dumps({k: v for k, v in document_body("UP-2").items() if k != "attachments"})
    response = world.request(
        "POST",
        "/documents",
        data={"document": document},
        files=[("attachments", (filename, PDF, content_type))],
    )
    stored = [
        (a["filename"], a["content_type"])
        for d in world.api("GET", "/documents", 200)["items"]
        for a in d["attachments"]
    ]
    error = error_body(response, 422)
    assert str(error["field"]).startswith("attachments")
    assert stored == []


# -- documents: meaning and shape ------------------------------------------------------------


def test_an_unknown_document_type_lists_the_known_types(world: World) -> None:
    make_party(world)
    error = world.error("POST", "/documents", 422, json=document_body(type="factura"))
    assert error["field"] == "type"
    assert "factura" in error["error"]
    for known in ("invoice", "credit_note", "nfe", "boleto", "quote"):
        assert known in error["error"]
    assert world.total("/documents") == 0


def test_an_unknown_party_code_is_refused(world: World) -> None:
    make_party(world)
    error = world.error("POST", "/documents", (404, 422), json=document_body(party="NOPE"))
    assert error["field"] == "party_code"
    assert "NOPE" in error["error"]
    assert world.total("/documents") == 0


INVALID_JSON = b'{"type": "invoice", '


@pytest.mark.parametrize("path", ["/documents", "/parties", "/accounts"])
def test_invalid_json_is_a_422_not_a_500(world: World, path: str) -> None:
    headers = {"Content-Type": "application/json"}
    error_body(world.request("POST", path, content=INVALID_JSON, headers=headers), 422)
    assert world.total(path) == 0


@pytest.mark.parametrize("path", ["/documents", "/parties", "/accounts"])
def test_invalid_json_names_the_body_as_the_field(world: World, path: str) -> None:
    headers = {"Content-Type": "application/json"}
    error = error_body(world.request("POST", path, content=INVALID_JSON, headers=headers), 422)
    assert error["field"] == "body", error


def test_a_wrong_type_names_the_field_and_the_value(world: World) -> None:
    make_party(world)
    error = world.error("POST", "/documents", 422, json=document_body(total="abc"))
    assert error["field"] == "total"
    assert "abc" in error["error"]
    error = world.error("POST", "/documents", 422, json=document_body(issue_date="20/11/2026"))
    assert error["field"] == "issue_date"
    error = world.error("POST", "/parties", 422, json={"code": "X", "name": "X", "contacts": "a"})
    assert error["field"] == "contacts"
    assert world.total("/documents") == 0
    assert world.total("/parties") == 1


def test_an_unknown_field_is_refused_not_ignored(world: World, sendable: int) -> None:
    error = world.error("POST", "/documents", 422, json=document_body("F-9", totl="12.00"))
    assert error["field"] == "totl"
    error = world.error("POST", "/parties", 422, json={"code": "X", "name": "X", "mail": "a@b.mx"})
    assert error["field"] == "mail"
    error = world.error("POST", f"/documents/{sendable}/send", 422, json={"subjet": "Hola"})
    assert error["field"] == "subjet"
    assert world.total("/documents") == 1
    assert world.total("/parties") == 1
    assert world.api("GET", "/messages", 200)["total"] == 0


def test_creating_the_same_document_twice_returns_the_first(world: World) -> None:
    make_party(world)
    first = world.request("POST", "/documents", json=document_body("F-77"))
    assert first.status_code == 201, first.text
    again = world.request("POST", "/documents", json=document_body("F-77", total="9.99"))
    assert again.status_code == 200, again.text
    assert first.json()["created"] is True
    assert again.json()["created"] is False
    assert again.json()["id"] == first.json()["id"]
    assert Decimal(again.json()["total"]) == Decimal(first.json()["total"]) == Decimal("1160")
    assert world.total("/documents") == 1
