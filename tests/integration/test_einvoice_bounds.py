"""E-invoice amounts, item counts and sizes are bounded by each format's official layout.

Every hostile file is a real sample with one attribute or element edited; each is
answered 422 (413 for size) naming the element and the rule, and nothing is stored:
no document, no party, no blob. The real samples still import (test_einvoice_import.py).
"""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest

from docmail.adapters.db import tables as t
from docmail.einvoice import parse_einvoice
from docmail.einvoice.printed import _amount, printed_form_html
from docmail.services.runtime import Runtime
from tests.integration.test_einvoice_import import count, upload
from tests.support.app import Tenant, make_tenant
from tests.support.einvoice_samples import BY_FILE

CFDI = BY_FILE["mx-cfdi40-invoice.xml"].data
PAGOS = BY_FILE["mx-cfdi40-pagos20.xml"].data
NFE = BY_FILE["br-nfe400-nfeproc-signed.xml"].data
DIAN = BY_FILE["co-dian-ubl21-invoice.xml"].data


def edit(xml: bytes, pattern: bytes, replacement: bytes) -> bytes:
    edited, found = re.subn(pattern, replacement, xml, count=1, flags=re.S)
    assert found == 1, pattern
    return edited


def repeat(xml: bytes, pattern: bytes, times: int, compact: bytes | None = None) -> bytes:
    """``xml`` with the first element matching ``pattern`` (or ``compact``) ``times`` times."""
    found = re.search(pattern, xml, re.S)
    assert found is not None, pattern
    element = compact if compact is not None else found.group(0)
    return xml[: found.start()] + element * times + xml[found.end() :]


@pytest.fixture
def tenant(runtime: Runtime) -> Tenant:
    return make_tenant(runtime)


TOTAL, VNF, PAYABLE = rb' Total="[^"]*"', rb"<vNF>[^<]*", rb"(<cbc:PayableAmount[^>]*>)[^<]*"
#: name: (sample, what to edit, its replacement, the element named, the rule named)
BAD_AMOUNTS = {
    "CFDI Total with a huge exponent": (
        CFDI,
        TOTAL,
        b' Total="1e999999"',
        "Comprobante/@Total",
        "t_Importe",
    ),
    "CFDI Total NaN": (CFDI, TOTAL, b' Total="NaN"', "Comprobante/@Total", ""),
    "CFDI Total Infinity": (CFDI, TOTAL, b' Total="Infinity"', "Comprobante/@Total", ""),
    "CFDI negative Total": (CFDI, TOTAL, b' Total="-1000.00"', "Comprobante/@Total", ""),
    "CFDI Total of 19 digits": (
        CFDI,
        TOTAL,
        b' Total="1234567890123456789"',
        "Comprobante/@Total",
        "",
    ),
    "CFDI Total with 7 decimals": (CFDI, TOTAL, b' Total="1.1234567"', "Comprobante/@Total", ""),
    "CFDI Importe of 1e100000000": (
        CFDI,
        rb'Importe="[^"]*"',
        b'Importe="1e100000000"',
        "Concepto/@Importe",
        "",
    ),
    "CFDI SubTotal 1E5": (
        CFDI,
        rb'SubTotal="[^"]*"',
        b'SubTotal="1E5"',
        "Comprobante/@SubTotal",
        "",
    ),
    "Pagos Monto": (PAGOS, rb' Monto="[^"]*"', b' Monto="1e999"', "Pago/@Monto", ""),
    "NF-e vNF exponent": (NFE, VNF, b"<vNF>1e999", "ICMSTot/vNF", "TDec_1302"),
    "NF-e vNF of 14 digits": (NFE, VNF, b"<vNF>12345678901234.00", "ICMSTot/vNF", ""),
    "NF-e vUnCom with 11 decimals": (
        NFE,
        rb"<vUnCom>[^<]*",
        b"<vUnCom>84.90000000000",
        "det/prod/vUnCom",
        "TDec_1110v",
    ),
    "DIAN PayableAmount exponent": (DIAN, PAYABLE, rb"\g<1>1e5", "cbc:PayableAmount", "DIAN"),
    "DIAN PayableAmount with 7 decimals": (
        DIAN,
        PAYABLE,
        rb"\g<1>1.1234567",
        "cbc:PayableAmount",
        "",
    ),
}


@pytest.mark.parametrize("name", list(BAD_AMOUNTS))
def test_an_amount_outside_its_format_is_a_422_naming_the_element_and_nothing_is_stored(
    runtime: Runtime, tenant: Tenant, name: str
) -> None:
    sample, pattern, replacement, where, rule = BAD_AMOUNTS[name]
    response = upload(tenant, edit(sample, pattern, replacement))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == "file"
    assert where in body["error"] and rule in body["error"] and "no exponent" in body["error"]
    for table in (t.Document, t.Party, t.Blob):
        assert count(runtime, table) == 0


TOO_MANY = {
    "991 NF-e items": (
        repeat(
            NFE, rb"<det .*?</det>", 991, b'<det nItem="1"><prod><vProd>1.00</vProd></prod></det>'
        ),
        "990",
    ),
    "5,001 CFDI Conceptos": (repeat(CFDI, rb"<cfdi:Concepto .*?</cfdi:Concepto>", 5001), "5,000"),
    "5,001 DIAN lines": (
        repeat(
            DIAN,
            rb"<cac:InvoiceLine>.*?</cac:InvoiceLine>",
            5001,
            b"<cac:InvoiceLine><cbc:ID>1</cbc:ID></cac:InvoiceLine>",
        ),
        "5,000",
    ),
}


@pytest.mark.parametrize("name", list(TOO_MANY))
def test_more_items_than_the_format_allows_are_refused_and_nothing_is_stored(
    runtime: Runtime, tenant: Tenant, name: str
) -> None:
    xml, limit = TOO_MANY[name]
    response = upload(tenant, xml)
    assert response.status_code == 422, response.text
    assert f"at most {limit}" in response.json()["error"]
    for table in (t.Document, t.Party, t.Blob):
        assert count(runtime, table) == 0


def test_a_3_mb_nfe_is_refused_as_larger_than_sefaz_takes(runtime: Runtime, tenant: Tenant) -> None:
    xml = repeat(NFE, rb"<det .*?</det>", 2750)
    assert len(xml) > 3_000_000
    response = upload(tenant, xml)
    assert response.status_code == 413, response.text
    assert response.json()["field"] == "file" and "500 KB" in response.json()["error"]
    assert count(runtime, t.Document) == 0 and count(runtime, t.Party) == 0


def test_the_largest_amount_the_formats_allow_prints_quickly() -> None:
    huge = b"999999999999999999.999999"  # 18 digits, 6 decimals: t_Importe's largest
    xml = edit(CFDI, rb'Importe="[^"]*"', b'Importe="' + huge + b'"')
    invoice = parse_einvoice(xml, 10 * 1024 * 1024)
    assert invoice.data["cfdi"]["conceptos"][0]["Importe"] == huge.decode()
    started = time.monotonic()
    html = printed_form_html(invoice)
    assert time.monotonic() - started < 1
    assert "1,000,000,000,000,000,000.00" in html


def test_a_total_larger_than_a_document_stores_is_a_422_and_the_largest_storable_imports(
    runtime: Runtime, tenant: Tenant
) -> None:
    too_large = edit(CFDI, rb' Total="[^"]*"', b' Total="123456789012345.00"')
    response = upload(tenant, too_large)
    assert response.status_code == 422, response.text
    assert "more than 14 digits" in response.json()["error"]
    assert count(runtime, t.Document) == 0 and count(runtime, t.Party) == 0
    largest = edit(CFDI, rb' Total="[^"]*"', b' Total="99999999999999.5"')
    response = upload(tenant, largest)
    assert response.status_code == 201, response.text
    assert Decimal(response.json()["total"]) == Decimal("99999999999999.5")


def test_the_printed_form_never_expands_text_that_is_no_plain_amount() -> None:
    started = time.monotonic()
    assert _amount("1e100000000") == "1e100000000"
    assert _amount(Decimal("1e100000000")) == "1E+100000000"
    assert time.monotonic() - started < 0.1
    assert _amount("1950", "BR") == "1.950,00"
