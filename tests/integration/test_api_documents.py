"""Documents through the HTTP API: multipart uploads, downloads, shared blobs, list filters.

Real database (SQLite file and PostgreSQL), real SMTP server on 127.0.0.1 with
STARTTLS and AUTH, and the real worker for the ``sent=`` filters.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from docmail.adapters.db import tables as t
from docmail.domain.outbox import RetryPolicy
from docmail.services.runtime import Runtime
from docmail.worker.worker import Worker
from tests.support.app import Tenant, make_runtime, make_tenant
from tests.support.smtp_server import TEST_PASSWORD, TEST_USER, SmtpTestServer

API = "/api/v1"
PDF = b"%PDF-1.4\n" + os.urandom(30_000) + b"\n%%EOF\n"
XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<nfeProc versao="4.00"><NFe><infNFe Id="NFe3524"><ide><nNF>1001</nNF></ide>'
    "<emit><xNome>Empresa Ação Ltda</xNome></emit></infNFe></NFe></nfeProc>\n"
).encode()


@dataclass
class World:
    runtime: Runtime
    tenant: Tenant
    smtp: SmtpTestServer

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.tenant.client.request(method, f"{API}{path}", **kw)

    def api(self, method: str, path: str, expect: int | None = None, **kw: Any) -> Any:
        response = self.request(method, path, **kw)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json() if response.content else None

    def numbers(self, query: str = "") -> list[str]:
        listed = self.api("GET", f"/documents?limit=500&{query}", 200)
        assert listed["total"] == len(listed["items"])
        return sorted(d["number"] for d in listed["items"])

    def deliver(self) -> int:
        policy = RetryPolicy(base_delay=timedelta(0), jitter=0.0)
        return Worker(self.runtime, "documents-worker", policy).drain()


@pytest.fixture
def world(database_url: str, tmp_path: Path, smtp_server: SmtpTestServer) -> World:
    runtime = make_runtime(database_url, tmp_path / "data", ca_file=smtp_server.ca_file)
    tenant = make_tenant(runtime)
    response = tenant.client.post(
        f"{API}/accounts",
        json={
            "name": "Facturação",
            "host": "127.0.0.1",
            "port": smtp_server.port,
            "security": "starttls",
            "username": TEST_USER,
            "password": TEST_PASSWORD,
            "from_email": "faturamento@empresa.com.br",
            "from_name": "Empresa Ação",
        },
    )
    assert response.status_code == 201, response.text
    world = World(runtime, tenant, smtp_server)
    for code, language in (("CLI1", "pt"), ("CLI2", "es")):
        world.api(
            "POST",
            "/parties",
            201,
            json={
                "code": code,
                "name": f"Cliente {code}",
                "language": language,
                "contacts": [
                    {"email": f"finance@{code.lower()}.com.br", "roles": ["finance"]},
                    {"email": f"nfe@{code.lower()}.com.br", "roles": ["einvoice"]},
                ],
            },
        )
    return world


def upload(world: World, number: str, files: list[tuple[str, bytes, str]], **fields: Any) -> Any:
    document = {"type": "nfe", "number": number, "party_code": "CLI1", "status": "stamped"}
    document.update(fields)
    response = world.request(
        "POST",
        "/documents",
        data={"document": json.dumps(document)},
        files=[("attachments", item) for item in files],
    )
    assert response.status_code == 201, response.text
    return response.json()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_multipart_upload_stores_both_files_with_sizes_and_hashes(world: World) -> None:
    doc = upload(
        world,
        "NFE-1001",
        [("NFE-1001.pdf", PDF, "application/pdf"), ("NFE-1001.xml", XML, "application/xml")],
        total="1160.00",
        currency="BRL",
        fiscal_id="35241112345678000190550010000010011000010019",
    )
    assert doc["created"] is True and doc["type"] == "nfe" and doc["party_code"] == "CLI1"
    files = {a["filename"]: a for a in doc["attachments"]}
    assert set(files) == {"NFE-1001.pdf", "NFE-1001.xml"}
    assert files["NFE-1001.pdf"]["size"] == len(PDF)
    assert files["NFE-1001.pdf"]["sha256"] == sha(PDF)
    assert files["NFE-1001.pdf"]["content_type"] == "application/pdf"
    assert files["NFE-1001.xml"]["size"] == len(XML)
    assert files["NFE-1001.xml"]["sha256"] == sha(XML)
    assert files["NFE-1001.xml"]["content_type"] == "application/xml"
    stored = world.api("GET", f"/documents/{doc['id']}", 200)
    assert stored["attachments"] == doc["attachments"]
    assert stored["fiscal_id"] == "35241112345678000190550010000010011000010019"


def test_a_downloaded_attachment_is_byte_for_byte_the_upload(world: World) -> None:
    doc = upload(
        world,
        "NFE-2",
        [("NFE-2.pdf", PDF, "application/pdf"), ("Nota fiscal nº 2.xml", XML, "application/xml")],
    )
    for attachment, data in zip(doc["attachments"], (PDF, XML), strict=True):
        response = world.request("GET", f"/documents/{doc['id']}/attachments/{attachment['id']}")
        assert response.status_code == 200, response.text
        assert response.content == data
        assert response.headers["content-type"].split(";")[0] == attachment["content_type"]
        assert "attachment" in response.headers["content-disposition"]
    xml_id = doc["attachments"][1]["id"]
    response = world.request("GET", f"/documents/{doc['id']}/attachments/{xml_id}")
    assert "Nota%20fiscal%20n%C2%BA%202.xml" in response.headers["content-disposition"]
    missing = world.request("GET", f"/documents/{doc['id']}/attachments/999999")
    assert missing.status_code == 404 and missing.json()["field"] == "attachment_id"


def test_two_documents_with_the_same_pdf_share_one_blob(world: World) -> None:
    first = upload(world, "NFE-10", [("a.pdf", PDF, "application/pdf")])
    second = upload(
        world, "NFE-11", [("b.pdf", PDF, "application/pdf"), ("b.xml", XML, "application/xml")]
    )
    assert first["attachments"][0]["sha256"] == second["attachments"][0]["sha256"] == sha(PDF)
    assert first["attachments"][0]["id"] != second["attachments"][0]["id"]
    with world.runtime.session() as session:
        count = session.scalar(
            select(func.count()).select_from(t.Blob).where(t.Blob.sha256 == sha(PDF))
        )
        assert count == 1
        assert session.scalar(select(func.count()).select_from(t.Blob)) == 2
    for doc in (first, second):
        att = doc["attachments"][0]["id"]
        response = world.request("GET", f"/documents/{doc['id']}/attachments/{att}")
        assert response.content == PDF


def test_files_can_be_added_to_an_existing_document(world: World) -> None:
    doc = upload(world, "NFE-20", [("NFE-20.xml", XML, "application/xml")])
    response = world.request(
        "POST",
        f"/documents/{doc['id']}/attachments",
        files=[("attachments", ("NFE-20.pdf", PDF, "application/pdf"))],
    )
    assert response.status_code == 201, response.text
    names = [a["filename"] for a in world.api("GET", f"/documents/{doc['id']}", 200)["attachments"]]
    assert sorted(names) == ["NFE-20.pdf", "NFE-20.xml"]


def test_amounts_come_back_as_plain_decimals(world: World) -> None:
    for number, total in (("T-1", "1160.00"), ("T-2", "0.50"), ("T-3", "1000000")):
        doc = world.api(
            "POST",
            "/documents",
            201,
            json={"type": "invoice", "number": number, "party_code": "CLI2", "total": total},
        )
        assert Decimal(doc["total"]) == Decimal(total)
        assert "E" not in doc["total"].upper(), f"{total} came back as {doc['total']}"


def make(world: World, doc_type: str, number: str, party: str, status: str = "stamped") -> int:
    xml = {
        "filename": f"{number}.xml",
        "content_type": "application/xml",
        "content_base64": base64.b64encode(XML).decode(),
    }
    body = {
        "type": doc_type,
        "number": number,
        "party_code": party,
        "status": status,
        "attachments": [xml],
    }
    return int(world.api("POST", "/documents", 201, json=body)["id"])


def send(world: World, document_id: int) -> int:
    return int(world.api("POST", f"/documents/{document_id}/send", 202, json={})["id"])


def test_the_list_filters_by_type_status_party_number_and_sending_state(world: World) -> None:
    sent = make(world, "invoice", "F-100", "CLI1")
    failed = make(world, "invoice", "F-101", "CLI2")
    make(world, "nfe", "NFE_7", "CLI1")
    make(world, "nfe", "NFEX7", "CLI2", status="issued")
    make(world, "quote", "COT-1", "CLI2", status="draft")

    send(world, sent)
    assert world.deliver() == 1
    world.smtp.wait_for(1)
    world.smtp.fail_next(550, "5.1.1 <finance@cli2.com.br>: mailbox unavailable", at="data")
    failed_message = send(world, failed)
    assert world.deliver() == 1
    assert world.api("GET", f"/messages/{failed_message}", 200)["state"] == "failed"

    assert world.numbers() == ["COT-1", "F-100", "F-101", "NFEX7", "NFE_7"]
    assert world.numbers("type=invoice") == ["F-100", "F-101"]
    assert world.numbers("type=nfe") == ["NFEX7", "NFE_7"]
    assert world.numbers("type=boleto") == []
    assert world.numbers("status=issued") == ["NFEX7"]
    assert world.numbers("status=draft") == ["COT-1"]
    assert world.numbers("party_code=CLI1") == ["F-100", "NFE_7"]
    assert world.numbers("party_code=NOPE") == []
    assert world.numbers("number=F-10") == ["F-100", "F-101"]
    assert world.numbers("number=_") == ["NFE_7"]  # LIKE wildcards are literal
    assert world.numbers("number=%25") == []
    assert world.numbers("sent=sent") == ["F-100"]
    assert world.numbers("sent=failed") == ["F-101"]
    assert world.numbers("sent=unsent") == ["COT-1", "NFEX7", "NFE_7"]
    assert world.numbers("type=nfe&party_code=CLI2&status=issued&sent=unsent") == ["NFEX7"]

    page = world.api("GET", "/documents?limit=2&offset=1", 200)
    assert page["total"] == 5 and len(page["items"]) == 2
    bad = world.request("GET", "/documents?sent=maybe")
    assert bad.status_code == 422 and bad.json()["field"] == "sent"


def test_a_document_without_attachments_can_be_sent(world: World) -> None:
    body = {"type": "statement", "number": "EC-2026-11", "party_code": "CLI2"}
    doc = world.api("POST", "/documents", 201, json=body)
    assert doc["attachments"] == []
    response = world.request("POST", f"/documents/{doc['id']}/send", json={})
    queued = world.api("GET", "/messages", 200)["total"]
    assert response.status_code == 202, (response.text, f"{queued} message(s) queued anyway")
    message = response.json()
    assert message["state"] == "queued" and message["attachments"] == []
    assert world.deliver() == 1
    received = world.smtp.wait_for(1)[0]
    assert received.rcpt_tos == ["finance@cli2.com.br"]
    assert list(received.message.iter_attachments()) == []
    assert world.numbers("sent=sent") == ["EC-2026-11"]


def test_the_api_describes_itself_and_reports_health(world: World) -> None:
    client = world.tenant.client
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "post" in paths["/api/v1/documents/{document_id}/send"]
    assert "multipart/form-data" in paths["/api/v1/documents"]["post"]["requestBody"]["content"]
    health = client.get(f"{API}/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
