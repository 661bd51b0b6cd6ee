"""Imported e-invoices reach a real SMTP server (loopback) the way each country expects."""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from docmail.domain.outbox import RetryPolicy
from docmail.services.runtime import Runtime
from docmail.worker.worker import Worker
from tests.support.app import Tenant, make_runtime, make_tenant
from tests.support.einvoice_samples import BY_FILE, attached_document
from tests.support.smtp_server import TEST_PASSWORD, TEST_USER, SmtpTestServer


@dataclass
class World:
    runtime: Runtime
    tenant: Tenant
    smtp: SmtpTestServer

    def api(self, method: str, path: str, expect: int, **kw: Any) -> Any:
        response = self.tenant.client.request(method, f"/api/v1{path}", **kw)
        assert response.status_code == expect, response.text
        return response.json()

    def deliver(self) -> int:
        return Worker(self.runtime, "einvoice-worker", RetryPolicy(timedelta(0), 0.0)).drain()

    def import_(self, xml: bytes, pdf: bytes | None = None) -> dict[str, Any]:
        files: dict[str, Any] = {"file": ("in.xml", xml, "application/xml")}
        if pdf is not None:
            files["pdf"] = ("in.pdf", pdf, "application/pdf")
        doc = self.api("POST", "/einvoices/import", 201, files=files)
        contacts = [
            {"name": "Fina", "email": "finance@buyer.example.com", "roles": ["finance"]},
            {"name": "Eva", "email": "einvoice@buyer.example.com", "roles": ["einvoice"]},
        ]
        self.api("PATCH", f"/parties/{doc['party_id']}", 200, json={"contacts": contacts})
        return doc

    def send(self, doc: dict[str, Any]) -> Any:
        before = len(self.smtp.messages)
        self.api("POST", f"/documents/{doc['id']}/send", 202, json={})
        assert self.deliver() == 1
        return self.smtp.wait_for(before + 1)[-1]


def make_world(database_url: str, tmp_path: Path, smtp: SmtpTestServer, country: str) -> World:
    runtime = make_runtime(database_url, tmp_path / "data", ca_file=smtp.ca_file)
    tenant = make_tenant(runtime, name="Emisor SA", country=country)
    account = {
        "name": "Facturación",
        "host": "127.0.0.1",
        "port": smtp.port,
        "username": TEST_USER,
        "password": TEST_PASSWORD,
        "from_email": "facturacion@emisor.example.com",
    }
    response = tenant.client.post("/api/v1/accounts", json=account)
    assert response.status_code == 201, response.text
    return World(runtime, tenant, smtp)


@pytest.fixture
def world_for(database_url: str, tmp_path: Path, smtp_server: SmtpTestServer) -> Any:
    return lambda country: make_world(database_url, tmp_path, smtp_server, country)


def files_of(received: Any) -> dict[str, bytes]:
    return {p.get_filename(): p.get_content() for p in received.message.iter_attachments()}


def test_a_cfdi_is_sent_with_xml_and_pdf_named_by_its_uuid(world_for: Any) -> None:
    world = world_for("MX")
    sample = BY_FILE["mx-cfdi33-invoice-for-pdf.xml"]
    received = world.send(world.import_(sample.data, sample.pdf_data))
    uuid = sample.fiscal_id.upper()
    assert files_of(received) == {f"{uuid}.xml": sample.data, f"{uuid}.pdf": sample.pdf_data}
    assert sorted(received.rcpt_tos) == ["einvoice@buyer.example.com", "finance@buyer.example.com"]


def test_a_payment_receipt_goes_to_finance_with_a_rendered_pdf(world_for: Any) -> None:
    world = world_for("MX")
    sample = BY_FILE["mx-cfdi40-pagos20.xml"]
    received = world.send(world.import_(sample.data))
    files = files_of(received)
    uuid = sample.fiscal_id.upper()
    assert files[f"{uuid}.xml"] == sample.data
    assert files[f"{uuid}.pdf"].startswith(b"%PDF-")
    assert received.rcpt_tos == ["finance@buyer.example.com"]


def test_an_nfe_goes_to_the_einvoice_contact_with_its_danfe(world_for: Any) -> None:
    world = world_for("BR")
    sample = BY_FILE["br-nfe-for-danfe.xml"]
    received = world.send(world.import_(sample.data, sample.pdf_data))
    key = sample.fiscal_id
    assert files_of(received) == {
        f"{key}-procNFe.xml": sample.data,
        f"{key}-danfe.pdf": sample.pdf_data,
    }
    assert received.rcpt_tos == ["einvoice@buyer.example.com"]
    assert "NF-e" in str(received.message["Subject"])


def test_a_dian_invoice_travels_as_one_zip_with_dian_subject(world_for: Any) -> None:
    world = world_for("CO")
    sample = BY_FILE["co-dian-ubl21-invoice.xml"]
    container = attached_document(sample.data)
    pdf = BY_FILE["br-nfe-for-danfe.xml"].pdf_data  # any real PDF: the ERP's printed form
    doc = world.import_(container, pdf)
    received = world.send(doc)
    assert received.message["Subject"] == "800197268;DIAN;SETP990000002;01;Nombre Tienda;"
    ((name, data),) = files_of(received).items()
    stem = f"0800197268000{19:02d}{990000002:08x}"
    assert name == f"z{stem}.zip"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == [f"ad{stem}.xml", f"fv{stem}.pdf"]
        assert archive.read(f"ad{stem}.xml") == container
        assert archive.read(f"fv{stem}.pdf") == pdf


def test_a_dian_zip_over_two_megabytes_blocks_the_send_with_the_reason(world_for: Any) -> None:
    world = world_for("CO")
    big_pdf = b"%PDF-1.4\n" + os.urandom(2_300_000)  # random bytes do not compress
    doc = world.import_(BY_FILE["co-dian-ubl21-invoice.xml"].data, big_pdf)
    composed = world.api("GET", f"/documents/{doc['id']}/compose", 200)
    assert composed["can_send"] is False and "2 MB" in composed["blocked_reason"]
    assert any("2 MB" in w for w in composed["warnings"])
    refused = world.api("POST", f"/documents/{doc['id']}/send", 409, json={})
    assert "2 MB" in refused["error"]


def test_a_cancelled_cfdi_is_announced_but_never_sent_again(world_for: Any) -> None:
    world = world_for("MX")
    sample = BY_FILE["mx-cfdi40-invoice.xml"]
    doc = world.import_(sample.data)
    world.api("POST", f"/documents/{doc['id']}/announce-cancellation", 409, json={})
    world.api("PATCH", f"/documents/{doc['id']}", 200, json={"status": "cancelled"})
    refused = world.api("POST", f"/documents/{doc['id']}/send", 409, json={})
    assert "cancelled" in refused["error"]
    preview = world.api("GET", f"/documents/{doc['id']}/announce-cancellation", 200)
    assert preview["attachments"] == [] and preview["can_send"] is True
    headers = {"Idempotency-Key": "cancel-1"}
    path = f"/documents/{doc['id']}/announce-cancellation"
    world.api("POST", path, 202, json={}, headers=headers)
    world.api("POST", path, 200, json={}, headers=headers)
    assert world.deliver() == 1
    received = world.smtp.wait_for(1)[0]
    assert str(received.message["Subject"]).startswith("Cancelación: Factura O-52375239")
    text = received.message.get_body(("plain",)).get_content()
    assert "cancelado" in text and sample.fiscal_id in text
    assert sorted(received.rcpt_tos) == ["einvoice@buyer.example.com", "finance@buyer.example.com"]
