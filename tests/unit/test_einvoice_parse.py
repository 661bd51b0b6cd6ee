"""Reading e-invoice XML: identifiers of every sample, and hostile files refused."""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal
from xml.etree import ElementTree

import pytest

from docmail.einvoice import parse_einvoice
from docmail.einvoice.dian_mail import build_zip, subject, zip_names
from docmail.errors import DocmailError, PayloadTooLarge
from tests.support.einvoice_samples import ALL, BY_FILE, HOSTILE, Sample, attached_document

LIMIT = 10 * 1024 * 1024


@pytest.mark.parametrize("sample", ALL, ids=lambda s: s.file)
def test_each_sample_yields_the_identifiers_its_source_states(sample: Sample) -> None:
    parsed = parse_einvoice(sample.data, LIMIT)
    assert parsed.doc_type == sample.doc_type
    assert parsed.fiscal_id == sample.fiscal_id
    assert parsed.total == Decimal(sample.total)
    assert parsed.currency == sample.currency
    assert parsed.issuer.tax_id == sample.issuer
    assert parsed.receiver.tax_id == sample.receiver
    assert parsed.receiver.name == sample.receiver_name
    assert parsed.country == sample.country
    assert parsed.document_data()["einvoice"]["issuer"]["tax_id"] == sample.issuer


def test_cfdi_number_and_date_match_an_independent_read_of_the_xml() -> None:
    sample = BY_FILE["mx-cfdi40-invoice.xml"]
    root = ElementTree.fromstring(sample.data)  # noqa: S314 - a trusted test sample
    parsed = parse_einvoice(sample.data, LIMIT)
    assert parsed.number == f"{root.get('Serie')}-{root.get('Folio')}"
    assert parsed.issue_date is not None
    assert parsed.issue_date.isoformat() == root.get("Fecha", "")[:10]
    assert parsed.data["cfdi"]["forma_pago"] == root.get("FormaPago") == "04"


def test_a_payment_receipt_offers_its_pagos_to_templates() -> None:
    parsed = parse_einvoice(BY_FILE["mx-cfdi40-pagos20.xml"].data, LIMIT)
    (pago,) = parsed.data["pagos"]
    assert pago["monto"] == "17852.75" and pago["forma_pago"] == "03"
    assert pago["documentos"][0]["id_documento"] == "6d7434a6-e3f2-47ad-9e4c-08849946afa0"
    assert pago["documentos"][0]["imp_saldo_insoluto"] == "0.00"


def test_an_nfe_keeps_its_authorisation_protocol() -> None:
    parsed = parse_einvoice(BY_FILE["br-nfe400-nfeproc-signed.xml"].data, LIMIT)
    assert parsed.number == "1-46320"
    assert parsed.data["nfe"]["protocolo"] == "141170000487910"
    assert parsed.data["nfe"]["status"] == "100"


def test_a_dian_attached_document_yields_the_invoice_inside_it() -> None:
    invoice = BY_FILE["co-dian-ubl21-invoice.xml"]
    parsed = parse_einvoice(attached_document(invoice.data), LIMIT)
    assert parsed.number == "SETP990000002"
    assert parsed.fiscal_id == invoice.fiscal_id
    assert parsed.format == "dian_attached"
    assert parsed.data["dian"]["attached_document"]["validation_code"] == "02"


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_or_foreign_xml_is_refused_with_a_clear_error(name: str) -> None:
    with pytest.raises(DocmailError) as caught:
        parse_einvoice(HOSTILE[name], LIMIT)
    assert caught.value.field == "file"
    assert 400 <= caught.value.status_code < 500
    assert caught.value.message


def test_a_file_over_the_limit_is_refused_before_parsing() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        parse_einvoice(b"<a>" + b" " * 2000 + b"</a>", 1000)
    assert "limit" in caught.value.message and caught.value.status_code == 413


def test_dian_names_follow_the_annex_pattern_and_the_zip_is_reproducible() -> None:
    from datetime import date

    zip_name, xml_name, pdf_name = zip_names(
        "800197268", "SETP990000002", date(2019, 6, 20), "Invoice"
    )
    assert zip_name == f"z0800197268000{19:02d}{990000002:08x}.zip"
    assert xml_name == zip_name.replace("z", "ad", 1).replace(".zip", ".xml")
    assert pdf_name.startswith("fv0800197268") and pdf_name.endswith(".pdf")
    files = [(xml_name, b"<x/>"), (pdf_name, b"%PDF-1.4")]
    assert build_zip(files) == build_zip(files)
    with zipfile.ZipFile(io.BytesIO(build_zip(files))) as archive:
        assert archive.namelist() == [xml_name, pdf_name]


def test_the_dian_subject_has_six_fields_and_no_stray_separators() -> None:
    text = subject("900373076", "EMPRESA; SAS", "SETP990000002", "01", "EMPRESA", "Facturación")
    assert text == "900373076;EMPRESA, SAS;SETP990000002;01;EMPRESA;Facturación"
