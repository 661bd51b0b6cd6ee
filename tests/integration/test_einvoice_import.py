"""Importing e-invoice files over the API and the CLI, on real databases."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from docmail.adapters.db import tables as t
from docmail.cli.main import cli
from docmail.services.runtime import Runtime
from tests.support.app import Tenant, make_tenant
from tests.support.einvoice_samples import ALL, BY_FILE, HOSTILE, SAMPLES

LANGUAGE = {"MX": "es", "CO": "es", "BR": "pt"}


@pytest.fixture
def tenant(runtime: Runtime) -> Tenant:
    return make_tenant(runtime)


def upload(tenant: Tenant, xml: bytes, pdf: bytes | None = None, **form: str) -> Any:
    files: dict[str, Any] = {"file": ("doc.xml", xml, "application/xml")}
    if pdf is not None:
        files["pdf"] = ("doc.pdf", pdf, "application/pdf")
    return tenant.client.post("/api/v1/einvoices/import", files=files, data=form)


def count(runtime: Runtime, table: type[t.Base]) -> int:
    with runtime.session() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def test_every_sample_imports_once_with_its_identifiers_and_a_party_by_tax_id(
    runtime: Runtime, tenant: Tenant
) -> None:
    for sample in ALL:
        response = upload(tenant, sample.data, sample.pdf_data)
        assert response.status_code == 201, (sample.file, response.text)
        doc = response.json()
        assert (doc["type"], doc["fiscal_id"], doc["status"]) == (
            sample.doc_type,
            sample.fiscal_id,
            "stamped",
        )
        assert Decimal(doc["total"]) == Decimal(sample.total)
        assert doc["currency"] == sample.currency
        assert doc["data"]["einvoice"]["issuer"]["tax_id"] == sample.issuer
        party = tenant.client.get(f"/api/v1/parties/{doc['party_id']}").json()
        assert party["tax_id"] == sample.receiver
        assert party["language"] == LANGUAGE[sample.country]
        xml = next(a for a in doc["attachments"] if a["content_type"] == "application/xml")
        stored = tenant.client.get(f"/api/v1/documents/{doc['id']}/attachments/{xml['id']}")
        assert stored.content == sample.data
        if sample.pdf_data is not None:
            pdf = next(a for a in doc["attachments"] if a["content_type"] == "application/pdf")
            got = tenant.client.get(f"/api/v1/documents/{doc['id']}/attachments/{pdf['id']}")
            assert got.content == sample.pdf_data
        again = upload(tenant, sample.data)
        assert again.status_code == 200 and again.json()["id"] == doc["id"]
        assert again.json()["created"] is False
    assert count(runtime, t.Document) == len(ALL)
    # The two CFDIs for COSC8001137NA share one party.
    assert count(runtime, t.Party) == len({s.receiver for s in ALL})


def test_party_language_overrides_the_country_default(tenant: Tenant) -> None:
    sample = BY_FILE["br-cte300-cteproc.xml"]
    doc = upload(tenant, sample.data, party_language="en").json()
    party = tenant.client.get(f"/api/v1/parties/{doc['party_id']}").json()
    assert party["language"] == "en" and party["code"] == sample.receiver


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_files_get_a_clear_4xx_and_nothing_is_stored(
    runtime: Runtime, tenant: Tenant, name: str
) -> None:
    response = upload(tenant, HOSTILE[name])
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert body["field"] == "file" and body["error"]
    for table in (t.Document, t.Party, t.Blob):
        assert count(runtime, table) == 0


def test_a_file_over_the_attachment_limit_is_refused(runtime: Runtime, tenant: Tenant) -> None:
    limit = runtime.settings.max_attachment_bytes
    response = upload(tenant, b"<a>" + b" " * limit + b"</a>")
    assert response.status_code == 413 and response.json()["field"] == "file"
    assert count(runtime, t.Document) == 0


def test_a_pdf_that_is_not_a_pdf_is_refused(runtime: Runtime, tenant: Tenant) -> None:
    response = upload(tenant, BY_FILE["mx-cfdi40-invoice.xml"].data, b"<html>not a pdf")
    assert response.status_code == 422 and response.json()["field"] == "pdf"
    assert count(runtime, t.Party) == 0


def test_the_cli_imports_an_einvoice_and_reports_a_repeat(
    runtime: Runtime, tenant: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCMAIL_DATABASE_URL", runtime.settings.resolved_database_url)
    monkeypatch.setenv("DOCMAIL_DATA_DIR", str(tmp_path / "cli-data"))
    sample = BY_FILE["br-nfe-for-danfe.xml"]
    args = ["import-einvoice", str(SAMPLES / sample.file), "--pdf", str(SAMPLES / "br-danfe.pdf")]
    first = CliRunner().invoke(cli, [*args, "--token", tenant.token], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "created: document" in first.output and sample.fiscal_id in first.output
    again = CliRunner().invoke(cli, [*args, "--token", tenant.token], catch_exceptions=False)
    assert "existing, unchanged" in again.output
    bad = CliRunner().invoke(
        cli, [*args[:1], str(SAMPLES / "br-danfe.pdf"), "--token", tenant.token]
    )
    assert bad.exit_code == 2 and "not well-formed XML" in bad.output
