"""Two companies in one installation: A's token never sees nor touches B's data.

Another company's objects must look absent (404), exactly like ids that do not
exist, and nothing may be queued or changed on either side by a refused request.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from docmail.services.runtime import Runtime
from tests.support.app import Tenant, make_runtime, make_tenant

API = "/api/v1"
PDF_A = b"%PDF-1.4\n" + b"company A " * 100 + b"\n%%EOF\n"
PDF_B = b"%PDF-1.4\n" + b"company B " * 100 + b"\n%%EOF\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Side:
    """One company: its client and the ids of what it owns."""

    tenant: Tenant
    account_id: int
    party_id: int
    party_code: str
    document_id: int
    attachment_id: int
    message_id: int

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.tenant.client.request(method, f"{API}{path}", **kw)

    def api(self, method: str, path: str, expect: int, **kw: Any) -> Any:
        response = self.request(method, path, **kw)
        assert response.status_code == expect, response.text
        return response.json() if response.content else None

    def absent(self, method: str, path: str, status: tuple[int, ...] = (404,), **kw: Any) -> Any:
        response = self.request(method, path, **kw)
        assert response.status_code in status, (method, path, response.status_code, response.text)
        body = response.json()
        assert isinstance(body.get("error"), str) and "field" in body, body
        return body

    def message_ids(self) -> set[int]:
        return {m["id"] for m in self.api("GET", "/messages?limit=500", 200)["items"]}


@dataclass
class Pair:
    runtime: Runtime
    a: Side
    b: Side


def populate(runtime: Runtime, name: str, code: str, pdf: bytes) -> Side:
    tenant = make_tenant(runtime, name)

    def post(path: str, body: dict[str, Any]) -> Any:
        response = tenant.client.post(f"{API}{path}", json=body)
        assert response.status_code in (201, 202), response.text
        return response.json()

    account = post(
        "/accounts",
        {
            "name": f"Cuenta {code}",
            "host": "127.0.0.1",
            "port": 1,
            "security": "none",
            "from_email": f"facturas@{code.lower()}.mx",
            "from_name": name,
        },
    )
    party = post(
        "/parties",
        {
            "code": code,
            "name": f"Cliente {code}",
            "email": f"general@{code.lower()}.mx",
            "contacts": [
                {"name": "Fina", "email": f"finance@{code.lower()}.mx", "roles": ["finance"]}
            ],
        },
    )
    document = post(
        "/documents",
        {
            "type": "invoice",
            "number": "F-1",  # the same number in both companies on purpose
            "party_code": code,
            "total": "100.00",
            "currency": "MXN",
            "status": "stamped",
            "attachments": [
                {
                    "filename": "F-1.pdf",
                    "content_type": "application/pdf",
                    "content_base64": b64(pdf),
                }
            ],
        },
    )
    message = post(f"/documents/{document['id']}/send", {})
    return Side(
        tenant,
        account["id"],
        party["id"],
        code,
        document["id"],
        document["attachments"][0]["id"],
        message["id"],
    )


@pytest.fixture
def pair(database_url: str, tmp_path: Path) -> Pair:
    runtime = make_runtime(database_url, tmp_path / "data")
    a = populate(runtime, "Empresa A SA de CV", "CLA", PDF_A)
    b = populate(runtime, "Empresa B SA de CV", "CLB", PDF_B)
    return Pair(runtime, a, b)


def snapshot(side: Side) -> dict[str, Any]:
    """Everything one company can read about its own data, to compare before and after."""
    return {
        "document": side.api("GET", f"/documents/{side.document_id}", 200),
        "party": side.api("GET", f"/parties/{side.party_id}", 200),
        "account": side.api("GET", f"/accounts/{side.account_id}", 200),
        "messages": side.api("GET", "/messages?limit=500", 200),
        "template": side.api("GET", "/templates/invoice/es", 200),
    }


def test_another_companys_documents_look_absent(pair: Pair) -> None:
    a, b = pair.a, pair.b
    before = snapshot(b)
    doc = b.document_id
    a.absent("GET", f"/documents/{doc}")
    a.absent("PATCH", f"/documents/{doc}", json={"status": "cancelled"})
    a.absent("GET", f"/documents/{doc}/compose")
    a.absent("GET", f"/documents/{doc}/messages")
    a.absent("GET", f"/documents/{doc}/attachments/{b.attachment_id}")
    a.absent(
        "POST",
        f"/documents/{doc}/attachments",
        files=[("attachments", ("x.pdf", PDF_A, "application/pdf"))],
    )
    # A's own document does not hand out B's attachment either.
    a.absent("GET", f"/documents/{a.document_id}/attachments/{b.attachment_id}")
    assert snapshot(b) == before


def test_another_companys_document_cannot_be_sent(pair: Pair) -> None:
    a, b = pair.a, pair.b
    before_a, before_b = a.message_ids(), b.message_ids()
    a.absent("POST", f"/documents/{b.document_id}/send", json={})
    a.absent(
        "POST",
        f"/documents/{b.document_id}/send",
        json={"to": ["someone@elsewhere.mx"]},
        headers={"Idempotency-Key": "steal-1"},
    )
    batch = a.api("POST", "/documents/send-batch", 202, json={"document_ids": [b.document_id]})
    assert batch["queued"] == 0 and batch["failed"] == 1
    assert batch["items"][0]["message_id"] is None
    assert batch["items"][0]["field"] == "document_ids"
    assert a.message_ids() == before_a
    assert b.message_ids() == before_b


def test_another_companys_messages_look_absent(pair: Pair) -> None:
    a, b = pair.a, pair.b
    before = snapshot(b)
    msg = b.message_id
    a.absent("GET", f"/messages/{msg}")
    a.absent("GET", f"/messages/{msg}/source")
    a.absent("POST", f"/messages/{msg}/resend")
    a.absent("POST", f"/messages/{msg}/cancel")
    assert snapshot(b) == before
    assert b.api("GET", f"/messages/{msg}", 200)["state"] == "queued"
    assert msg not in a.message_ids()
    assert a.api("GET", f"/messages?document_id={b.document_id}", 200) == {"items": [], "total": 0}


def test_another_companys_parties_look_absent(pair: Pair) -> None:
    a, b = pair.a, pair.b
    before = snapshot(b)
    a.absent("GET", f"/parties/{b.party_id}")
    a.absent("PATCH", f"/parties/{b.party_id}", json={"name": "Robado"})
    a.absent("DELETE", f"/parties/{b.party_id}")
    assert snapshot(b) == before


def test_a_document_for_another_companys_party_code_is_refused(pair: Pair) -> None:
    a, b = pair.a, pair.b
    body = {"type": "invoice", "number": "F-2", "party_code": b.party_code, "status": "stamped"}
    error = a.absent("POST", "/documents", status=(404, 422), json=body)
    assert error["field"] == "party_code"
    assert a.api("GET", "/documents?number=F-2", 200)["total"] == 0
    assert b.api("GET", "/documents?number=F-2", 200)["total"] == 0


def test_the_same_number_in_two_companies_is_two_documents(pair: Pair) -> None:
    a, b = pair.a, pair.b
    assert a.document_id != b.document_id
    again = a.api(
        "POST",
        "/documents",
        200,
        json={"type": "invoice", "number": "F-1", "party_code": a.party_code},
    )
    assert again["created"] is False and again["id"] == a.document_id


def test_another_companys_mail_account_cannot_be_used_or_read(pair: Pair) -> None:
    a, b = pair.a, pair.b
    before_a, before_b = a.message_ids(), b.message_ids()
    error = a.absent("POST", f"/documents/{a.document_id}/send", json={"account_id": b.account_id})
    assert error["field"] == "account_id"
    # refused up front, as for a mail account that does not exist at all
    error = a.absent(
        "POST",
        "/documents/send-batch",
        json={"document_ids": [a.document_id], "account_id": b.account_id},
    )
    assert error["field"] == "account_id"
    a.absent("GET", f"/accounts/{b.account_id}")
    a.absent("PATCH", f"/accounts/{b.account_id}", json={"host": "evil.example"})
    a.absent("POST", f"/accounts/{b.account_id}/test")
    a.absent("DELETE", f"/accounts/{b.account_id}")
    assert b.api("GET", f"/accounts/{b.account_id}", 200)["host"] == "127.0.0.1"
    assert a.message_ids() == before_a
    assert b.message_ids() == before_b


def test_another_companys_attachment_cannot_be_attached(pair: Pair) -> None:
    a, b = pair.a, pair.b
    before = a.message_ids()
    error = a.absent(
        "POST",
        f"/documents/{a.document_id}/send",
        status=(404, 422),
        json={"attachment_ids": [b.attachment_id]},
    )
    assert error["field"] == "attachment_ids"
    assert a.message_ids() == before


def test_a_template_saved_by_one_company_does_not_change_the_other(pair: Pair) -> None:
    a, b = pair.a, pair.b
    custom = {"subject": "Solo A {{ document.number }}", "body_html": "<p>A</p>", "body_text": "A"}
    a.api("PUT", "/templates/invoice/es", 200, json=custom)
    assert a.api("GET", "/templates/invoice/es", 200)["custom"] is True
    assert b.api("GET", "/templates/invoice/es", 200)["custom"] is False
    assert "Solo A" not in b.api("GET", f"/documents/{b.document_id}/compose", 200)["subject"]
    b.absent("DELETE", "/templates/invoice/es")
    assert a.api("GET", "/templates/invoice/es", 200)["custom"] is True


def test_listings_never_contain_the_other_companys_ids(pair: Pair) -> None:
    a, b = pair.a, pair.b
    for side, other in ((a, b), (b, a)):
        documents = side.api("GET", "/documents?limit=500", 200)
        assert [d["id"] for d in documents["items"]] == [side.document_id]
        assert documents["total"] == 1
        for query in (f"party_code={other.party_code}", "number=F-1", "type=invoice"):
            ids = [d["id"] for d in side.api("GET", f"/documents?{query}", 200)["items"]]
            assert other.document_id not in ids, query
        parties = side.api("GET", "/parties?limit=500", 200)
        assert [p["id"] for p in parties["items"]] == [side.party_id]
        assert side.api("GET", f"/parties?q={other.party_code}", 200)["total"] == 0
        accounts = side.api("GET", "/accounts", 200)
        assert [x["id"] for x in accounts["items"]] == [side.account_id]
        messages = side.api("GET", "/messages?limit=500", 200)
        assert [m["id"] for m in messages["items"]] == [side.message_id]
        assert messages["total"] == 1
        own = side.api("GET", f"/documents/{side.document_id}/messages", 200)
        assert [m["id"] for m in own["items"]] == [side.message_id]
