"""POST /documents/bulk: many documents in one transaction, idempotent, all or nothing.

Against real SQLite and PostgreSQL; the emails of bulk-created documents go through
the worker to the aiosmtpd server on loopback with their attachments intact.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from docmail.adapters.db import tables as t
from docmail.services.runtime import Runtime
from docmail.worker.worker import Worker
from tests.support.app import Tenant, make_runtime, make_tenant
from tests.support.smtp_server import SmtpTestServer

API = "/api/v1"
PDF = b"%PDF-1.4 bulk " + bytes(range(256)) * 40


def document(number: str, party: str = "C1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "invoice",
        "number": number,
        "party_code": party,
        "total": "116.00",
        "currency": "MXN",
        **extra,
    }


def with_pdf(number: str) -> dict[str, Any]:
    return document(
        number,
        attachments=[
            {
                "filename": f"{number}.pdf",
                "content_type": "application/pdf",
                "content_base64": base64.b64encode(PDF + number.encode()).decode(),
            }
        ],
    )


@dataclass
class World:
    runtime: Runtime
    tenant: Tenant

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.tenant.client.post(f"{API}{path}", json=body)

    def documents(self) -> int:
        with self.runtime.session() as session:
            return int(session.scalar(select(func.count()).select_from(t.Document)) or 0)


@pytest.fixture
def world(database_url: str, tmp_path: Path, smtp_server_plain: SmtpTestServer) -> World:
    runtime = make_runtime(database_url, tmp_path / "data")
    tenant = make_tenant(runtime)
    account = {
        "name": "local",
        "host": "127.0.0.1",
        "port": smtp_server_plain.port,
        "security": "none",
        "from_email": "facturas@acme.mx",
        "is_default": True,
    }
    assert tenant.client.post(f"{API}/accounts", json=account).status_code == 201
    party = {
        "code": "C1",
        "name": "Cliente Uno",
        "contacts": [{"email": "cxp@uno.mx", "roles": ["finance"]}],
    }
    assert tenant.client.post(f"{API}/parties", json=party).status_code == 201
    return World(runtime, tenant)


def test_a_bulk_request_stores_every_document_and_a_repeat_creates_nothing(
    world: World,
) -> None:
    body = {"documents": [with_pdf("B-1"), with_pdf("B-2"), document("B-3")]}
    first = world.post("/documents/bulk", body)
    assert first.status_code == 201, first.text
    assert first.json()["created"] == 3
    assert [i["number"] for i in first.json()["items"]] == ["B-1", "B-2", "B-3"]

    again = world.post("/documents/bulk", body)
    assert again.status_code == 200
    assert again.json()["created"] == 0
    assert [i["id"] for i in again.json()["items"]] == [i["id"] for i in first.json()["items"]]
    assert world.documents() == 3

    stored = world.tenant.client.get(f"{API}/documents/{first.json()['items'][0]['id']}").json()
    assert [a["filename"] for a in stored["attachments"]] == ["B-1.pdf"]
    assert stored["total"] == "116.00"


def test_one_bad_document_rejects_the_whole_request_naming_it(world: World) -> None:
    body = {"documents": [with_pdf("X-1"), document("X-2", party="NOPE")]}
    answer = world.post("/documents/bulk", body)
    assert answer.status_code == 404
    assert answer.json()["field"] == "documents[1].party_code"
    assert "NOPE" in answer.json()["error"]
    assert world.documents() == 0


def test_the_same_number_twice_in_one_request_is_refused(world: World) -> None:
    body = {"documents": [document("D-1"), document("D-1")]}
    answer = world.post("/documents/bulk", body)
    assert answer.status_code == 422
    assert answer.json()["field"] == "documents[1].number"
    assert world.documents() == 0


def test_bad_base64_is_refused_with_the_item_and_field_named(world: World) -> None:
    bad = document(
        "E-1",
        attachments=[
            {"filename": "e.pdf", "content_type": "application/pdf", "content_base64": "%%"}
        ],
    )
    answer = world.post("/documents/bulk", {"documents": [bad]})
    assert answer.status_code == 422
    assert answer.json()["field"] == "documents[0].attachments[0].content_base64"
    assert world.documents() == 0


def test_bulk_documents_sent_as_a_batch_arrive_with_their_pdf_intact(
    world: World, smtp_server_plain: SmtpTestServer
) -> None:
    body = {"documents": [with_pdf(f"S-{n}") for n in range(3)]}
    ids = [i["id"] for i in world.post("/documents/bulk", body).json()["items"]]
    batch = world.post("/documents/send-batch", {"document_ids": ids})
    assert batch.status_code == 202, batch.text
    assert Worker(world.runtime, "bulk-worker").drain() == 3

    received = {}
    for caught in smtp_server_plain.messages:
        (part,) = list(caught.message.iter_attachments())
        received[part.get_filename()] = part.get_content()
    assert received == {f"S-{n}.pdf": PDF + f"S-{n}".encode() for n in range(3)}
