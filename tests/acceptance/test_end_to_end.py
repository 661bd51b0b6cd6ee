"""From a document to a delivered email, end to end, through the HTTP API.

A real SMTP server on 127.0.0.1 (STARTTLS + AUTH, trustme certificate), a real
database (SQLite file and PostgreSQL), the real worker.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from docmail.domain.documents import default_type
from docmail.domain.outbox import RetryPolicy
from docmail.services.runtime import Runtime
from docmail.worker.worker import Worker
from tests.support.app import Tenant, make_runtime, make_tenant
from tests.support.smtp_server import TEST_PASSWORD, TEST_USER, SmtpTestServer

PDF = b"%PDF-1.4\n" + os.urandom(20_000) + b"\n%%EOF\n"
XML = '<?xml version="1.0" encoding="UTF-8"?><cfdi:Comprobante Folio="1001" Total="1160.00"/>'


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


@dataclass
class World:
    runtime: Runtime
    tenant: Tenant
    smtp: SmtpTestServer
    account_id: int

    def api(self, method: str, path: str, expect: int | None = None, **kw: Any) -> Any:
        response = self.tenant.client.request(method, f"/api/v1{path}", **kw)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json() if response.content else None

    def deliver(self) -> int:
        policy = RetryPolicy(base_delay=timedelta(0), jitter=0.0)
        return Worker(self.runtime, "e2e-worker", policy).drain()


@pytest.fixture
def world(database_url: str, tmp_path: Path, smtp_server: SmtpTestServer) -> World:
    runtime = make_runtime(database_url, tmp_path / "data", ca_file=smtp_server.ca_file)
    tenant = make_tenant(runtime)
    account = tenant.client.post(
        "/api/v1/accounts",
        json={
            "name": "Facturación",
            "host": "127.0.0.1",
            "port": smtp_server.port,
            "security": "starttls",
            "username": TEST_USER,
            "password": TEST_PASSWORD,
            "from_email": "facturacion@acme.mx",
            "from_name": "ACME Facturación",
        },
    )
    assert account.status_code == 201, account.text
    return World(runtime, tenant, smtp_server, account.json()["id"])


def make_party(world: World, code: str, language: str) -> dict[str, Any]:
    return world.api(
        "POST",
        "/parties",
        201,
        json={
            "code": code,
            "name": f"Cliente {code}",
            "tax_id": "XAXX010101000",
            "email": f"general@{code.lower()}.mx",
            "language": language,
            "contacts": [
                {
                    "name": "Fina Finanzas",
                    "email": f"finance@{code.lower()}.mx",
                    "roles": ["finance"],
                },
                {
                    "name": "Eva Fiscal",
                    "email": f"einvoice@{code.lower()}.mx",
                    "roles": ["einvoice"],
                },
                {"name": "Otto Otro", "email": f"other@{code.lower()}.mx", "roles": []},
            ],
        },
    )


def make_document(world: World, doc_type: str, number: str, party: str, **extra: Any) -> dict:
    body = {
        "type": doc_type,
        "number": number,
        "party_code": party,
        "issue_date": "2026-11-20",
        "due_date": "2026-12-20",
        "total": "1160.00",
        "currency": "MXN",
        "status": extra.pop("status", "stamped"),
        "fiscal_id": "C2832671-DA6D-11EF-A83D-00155D012007",
        "attachments": [
            {
                "filename": f"{number}.pdf",
                "content_type": "application/pdf",
                "content_base64": b64(PDF),
            },
            {
                "filename": f"{number}.xml",
                "content_type": "application/xml",
                "content_base64": b64(XML),
            },
        ],
        **extra,
    }
    return world.api("POST", "/documents", 201, json=body)


def attachments_of(received: Any) -> dict[str, bytes]:
    return {part.get_filename(): part.get_content() for part in received.message.iter_attachments()}


EXPECTED_ROLE = {
    "invoice": {"finance", "einvoice"},
    "credit_note": {"finance", "einvoice"},
    "cash_receipt": {"finance"},
    "payment": {"finance"},
    "boleto": {"finance"},
    "nfe": {"einvoice"},
    "retention": {"finance"},
    "statement": {"finance"},
}


@pytest.mark.parametrize("language", ["es", "pt", "en"])
def test_each_document_type_reaches_the_right_contacts_in_the_party_language(
    world: World, language: str
) -> None:
    party = make_party(world, "CLI1", language)
    assert len(party["contacts"]) == 3
    for index, (doc_type, roles) in enumerate(EXPECTED_ROLE.items()):
        doc = make_document(world, doc_type, f"D-{index}", "CLI1")
        composed = world.api("GET", f"/documents/{doc['id']}/compose", 200)
        want = sorted(f"{role}@cli1.mx" for role in roles)
        assert sorted(a.split("<")[-1].rstrip(">") for a in composed["to"]) == want
        sent = world.api("POST", f"/documents/{doc['id']}/send", 202, json={})
        assert sent["state"] == "queued"
        assert world.deliver() == 1
        received = world.smtp.wait_for(index + 1)[-1]
        assert sorted(received.rcpt_tos) == want
        assert received.username == TEST_USER
        type_name = default_type(doc_type).names[language]  # type: ignore[union-attr]
        assert type_name.lower() in str(received.message["Subject"]).lower()
        assert received.message["Message-ID"] == sent["message_id"]
        files = attachments_of(received)
        assert files[f"D-{index}.pdf"] == PDF
        assert files[f"D-{index}.xml"] == XML.encode()
        log = world.api("GET", f"/messages/{sent['id']}", 200)
        assert log["state"] == "sent" and log["smtp_code"] == 250
        assert log["attempt_log"][0]["outcome"] == "sent"
    assert len(world.smtp.messages) == len(EXPECTED_ROLE)


def test_a_quote_needs_a_typed_address(world: World) -> None:
    make_party(world, "PROS", "es")
    quote = make_document(world, "quote", "COT-7", "PROS", status="draft")
    composed = world.api("GET", f"/documents/{quote['id']}/compose", 200)
    assert composed["to"] == [] and composed["manual_address_required"]
    error = world.api("POST", f"/documents/{quote['id']}/send", 422, json={})
    assert error["field"] == "to"
    world.api("POST", f"/documents/{quote['id']}/send", 202, json={"to": ["compras@pros.mx"]})
    world.deliver()
    assert world.smtp.wait_for(1)[0].rcpt_tos == ["compras@pros.mx"]


def test_a_retention_is_sent_only_once_stamped(world: World) -> None:
    make_party(world, "RET", "es")
    doc = make_document(world, "retention", "RET-1", "RET", status="issued")
    error = world.api("POST", f"/documents/{doc['id']}/send", 409, json={})
    assert "stamped" in error["error"]
    assert world.api("GET", "/messages", 200)["total"] == 0
    world.api("PATCH", f"/documents/{doc['id']}", 200, json={"status": "stamped"})
    world.api("POST", f"/documents/{doc['id']}/send", 202, json={})
    world.deliver()
    assert len(world.smtp.wait_for(1)) == 1


def test_the_same_idempotency_key_twice_sends_one_email(world: World) -> None:
    make_party(world, "IDEM", "es")
    doc = make_document(world, "invoice", "F-1", "IDEM")
    headers = {"Idempotency-Key": "erp-123"}
    first = world.api("POST", f"/documents/{doc['id']}/send", 202, json={}, headers=headers)
    again = world.api("POST", f"/documents/{doc['id']}/send", 200, json={}, headers=headers)
    assert again["id"] == first["id"] and again["replayed"] is True
    world.deliver()
    world.smtp.wait_for(1)
    assert world.deliver() == 0
    assert len(world.smtp.messages) == 1
    different = world.api(
        "POST", f"/documents/{doc['id']}/send", 409, json={"subject": "Other"}, headers=headers
    )
    assert different["field"] == "idempotency_key"


def test_user_edits_replace_the_prefilled_values(world: World) -> None:
    make_party(world, "EDIT", "es")
    doc = make_document(world, "invoice", "F-2", "EDIT")
    pdf_id = doc["attachments"][0]["id"]
    edits = {
        "to": ["Jefa Compras <jefa@edit.mx>"],
        "cc": ["copia@edit.mx"],
        "bcc": ["archivo@acme.mx"],
        "subject": "Su factura F-2 (corregida)",
        "body_text": "Hola,\n\nAdjunto la factura.\n",
        "attachment_ids": [pdf_id],
    }
    world.api("POST", f"/documents/{doc['id']}/send", 202, json=edits)
    world.deliver()
    received = world.smtp.wait_for(1)[0]
    assert sorted(received.rcpt_tos) == ["archivo@acme.mx", "copia@edit.mx", "jefa@edit.mx"]
    assert "Bcc" not in received.message
    assert received.message["Subject"] == "Su factura F-2 (corregida)"
    assert list(attachments_of(received)) == ["F-2.pdf"]
    text = received.message.get_body(("plain",)).get_content()
    assert "Adjunto la factura." in text


def test_server_refusal_fails_the_message_with_the_server_text(world: World) -> None:
    make_party(world, "BAD", "es")
    doc = make_document(world, "invoice", "F-3", "BAD")
    world.smtp.fail_next(550, "5.1.1 <finance@bad.mx>: Recipient address rejected", at="data")
    sent = world.api("POST", f"/documents/{doc['id']}/send", 202, json={})
    world.deliver()
    log = world.api("GET", f"/messages/{sent['id']}", 200)
    assert log["state"] == "failed"
    assert log["smtp_code"] == 550
    assert "Recipient address rejected" in (log["server_reply"] or "")
    assert world.smtp.messages == []


def test_temporary_refusal_is_retried_and_then_succeeds(world: World) -> None:
    make_party(world, "TMP", "es")
    doc = make_document(world, "invoice", "F-4", "TMP")
    world.smtp.fail_next(451, "4.3.0 Try again later", at="data")
    sent = world.api("POST", f"/documents/{doc['id']}/send", 202, json={})
    world.deliver()
    log = world.api("GET", f"/messages/{sent['id']}", 200)
    assert log["state"] == "sent" and log["attempts"] == 2
    outcomes = [a["outcome"] for a in log["attempt_log"]]
    assert outcomes == ["retrying", "sent"]
    assert "4.3.0 Try again later" in (log["attempt_log"][0]["detail"] or "")
    assert len(world.smtp.wait_for(1)) == 1


def test_a_wrong_password_gives_a_clear_error_on_account_test(world: World) -> None:
    good = world.api("POST", f"/accounts/{world.account_id}/test", 200)
    assert good["ok"] is True
    world.api("PATCH", f"/accounts/{world.account_id}", 200, json={"password": "wrong-pass"})
    bad = world.api("POST", f"/accounts/{world.account_id}/test", 200)
    assert bad["ok"] is False
    assert "refused the login" in bad["error"] and TEST_USER in bad["error"]
    assert "wrong-pass" not in str(bad)


def test_account_responses_never_show_the_password(world: World) -> None:
    listed = world.api("GET", "/accounts", 200)
    assert TEST_PASSWORD not in str(listed)
    assert listed["items"][0]["password_set"] is True


def test_sending_never_changes_the_document(world: World) -> None:
    make_party(world, "KEEP", "es")
    doc = make_document(world, "invoice", "F-5", "KEEP")
    sent = world.api("POST", f"/documents/{doc['id']}/send", 202, json={})
    world.api("POST", f"/messages/{sent['id']}/cancel", 200)
    after = world.api("GET", f"/documents/{doc['id']}", 200)
    assert {k: v for k, v in after.items()} == {k: v for k, v in doc.items() if k != "created"}
    assert world.deliver() == 0


def test_resend_creates_a_new_message_linked_to_the_first(world: World) -> None:
    make_party(world, "RES", "es")
    doc = make_document(world, "invoice", "F-6", "RES")
    first = world.api("POST", f"/documents/{doc['id']}/send", 202, json={})
    world.deliver()
    second = world.api("POST", f"/messages/{first['id']}/resend", 202)
    assert second["resend_of_id"] == first["id"]
    assert second["message_id"] != first["message_id"]
    world.deliver()
    assert len(world.smtp.wait_for(2)) == 2
    history = world.api("GET", f"/documents/{doc['id']}/messages", 200)
    assert [m["state"] for m in history["items"]] == ["sent", "sent"]


@pytest.mark.parametrize("mode,expected", [("per_document", 4), ("per_party", 2)])
def test_batch_sends_one_email_per_document_or_per_party(
    world: World, mode: str, expected: int
) -> None:
    make_party(world, "B1", "es")
    make_party(world, "B2", "pt")
    ids = [make_document(world, "invoice", f"B-{i}", f"B{i % 2 + 1}")["id"] for i in range(4)]
    result = world.api(
        "POST", "/documents/send-batch", 202, json={"document_ids": ids, "mode": mode}
    )
    assert result["emails"] == expected and result["queued"] == 4 and result["failed"] == 0
    world.deliver()
    received = world.smtp.wait_for(expected)
    assert len(received) == expected
    if mode == "per_party":
        assert sorted(len(attachments_of(r)) for r in received) == [4, 4]


def test_one_smtp_connection_carries_all_messages_of_an_account(world: World) -> None:
    make_party(world, "CONN", "es")
    ids = [make_document(world, "invoice", f"C-{i}", "CONN")["id"] for i in range(5)]
    world.api("POST", "/documents/send-batch", 202, json={"document_ids": ids})
    assert world.deliver() == 5
    assert len(world.smtp.wait_for(5)) == 5
    assert world.smtp.connections == 1


def test_smtp_passwords_are_encrypted_at_rest(world: World) -> None:
    from sqlalchemy import text

    with world.runtime.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_encrypted FROM mail_accounts")).scalar()
    assert stored and TEST_PASSWORD not in stored
    assert world.runtime.secrets.decrypt(stored) == TEST_PASSWORD
