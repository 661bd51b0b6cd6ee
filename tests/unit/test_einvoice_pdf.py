"""The printed form docmail renders when the ERP supplies none."""

from __future__ import annotations

import io
import time

import pytest
from pypdf import PdfReader

from docmail.adapters.pdf import html_to_pdf
from docmail.adapters.pdf.render import local_only_fetcher
from docmail.einvoice import parse_einvoice
from docmail.einvoice.printed import printed_form_html
from tests.support.einvoice_samples import ALL, BY_FILE, Sample

LIMIT = 10 * 1024 * 1024


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "".join(page.extract_text() for page in reader.pages)


def _squashed(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("sample", ALL, ids=lambda s: s.file)
def test_the_rendered_pdf_shows_the_fiscal_id_and_the_total(sample: Sample) -> None:
    invoice = parse_einvoice(sample.data, LIMIT)
    pdf = html_to_pdf(printed_form_html(invoice))
    assert pdf.startswith(b"%PDF-")
    text = _squashed(_text(pdf))
    assert _squashed(sample.fiscal_id) in text
    integer, _, cents = sample.total.partition(".")
    separator = "," if sample.country in ("BR", "CO") else "."
    grouped = f"{int(integer):,}".replace(",", "." if separator == "," else ",")
    assert f"{grouped}{separator}{(cents or '00').ljust(2, '0')}" in text


def test_xml_text_is_escaped_not_interpreted_in_the_printed_form() -> None:
    sample = BY_FILE["mx-cfdi40-pagos20.xml"]
    html = printed_form_html(parse_einvoice(sample.data, LIMIT))
    assert "HERRERIA &amp; ELECTRICOS" in html and "HERRERIA & ELECTRICOS" not in html


def test_the_renderer_refuses_remote_and_local_urls() -> None:
    fetcher = local_only_fetcher()
    for url in ("http://127.0.0.1:9/x.css", "https://example.com/a.png", "file:///etc/passwd"):
        with pytest.raises(ValueError, match="disallowed protocol"):
            fetcher(url)
    html = '<img src="http://127.0.0.1:9/logo.png"><p>Hola</p>'
    assert "Hola" in _text(html_to_pdf(html))


def test_a_warm_render_takes_well_under_a_second() -> None:
    invoice = parse_einvoice(BY_FILE["mx-cfdi40-invoice.xml"].data, LIMIT)
    html_to_pdf(printed_form_html(invoice))
    started = time.perf_counter()
    html_to_pdf(printed_form_html(invoice))
    assert time.perf_counter() - started < 1.0
