"""What every benchmark sends: a ~100 KB email per document, the same for every tool.

Each document has its own 60 KB PDF and 8 KB XML (unique bytes, as real invoices
have), and the email has an HTML and a text body rendered from one template.
Generating them is cheap and deterministic so the measured work is the tools'.
"""

from __future__ import annotations

import email.policy
import random
from email.message import EmailMessage

PDF_BYTES = 60 * 1024
XML_BYTES = 8 * 1024
SENDER = "facturas@bench.mx"
RECIPIENT = "cxp@cliente.mx"

# The same words for docmail (Jinja2) and django-post_office (Django templates).
SUBJECT = "Factura {{ number }} de Bench SA"
BODY_TEXT = (
    "Estimado cliente {{ party }}:\n\n"
    "Le enviamos la factura {{ number }} por un total de {{ total }}.\n"
    "Adjuntamos el PDF y el XML.\n\nSaludos,\nBench SA\n"
)
BODY_HTML = (
    "<html><body><p>Estimado cliente <b>{{ party }}</b>:</p>"
    "<p>Le enviamos la factura <b>{{ number }}</b> por un total de {{ total }}.</p>"
    + "<p>Adjuntamos el PDF y el XML del comprobante fiscal.</p>" * 20
    + "<p>Saludos,<br>Bench SA</p></body></html>"
)

_FILLER = random.Random(7).randbytes(PDF_BYTES)


def number(index: int) -> str:
    return f"F-{index:07d}"


def pdf_for(index: int) -> bytes:
    """A PDF-shaped file of exactly 60 KB whose bytes differ per document."""
    tail = b"\nendstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    head_template = (
        b"%%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
        b"%% " + number(index).encode() + b"\n4 0 obj<</Length %010d>>stream\n"
    )
    size = PDF_BYTES - len(head_template % 0) - len(tail)
    salt = index.to_bytes(8, "big")
    body = bytes(b ^ salt[i % 8] for i, b in enumerate(_FILLER[:64])) + _FILLER[64:size]
    return (head_template % size) + body + tail


def xml_for(index: int) -> bytes:
    """An 8 KB CFDI-like XML for the document."""
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<cfdi:Comprobante xmlns:cfdi="http://www.sat.gob.mx/cfd/4" Folio="{number(index)}" '
        'Total="1160.00" Moneda="MXN">\n<cfdi:Conceptos>\n'
    )
    line = '<cfdi:Concepto Descripcion="Servicio de consultoría contable" Importe="10.00"/>\n'
    tail = "</cfdi:Conceptos>\n</cfdi:Comprobante>\n"
    count = (XML_BYTES - len(head) - len(tail)) // len(line.encode())
    text = head + line * count + tail
    return (text + " " * (XML_BYTES - len(text.encode()))).encode()


def context(index: int) -> dict[str, str]:
    return {"party": "Cliente Uno SA", "number": number(index), "total": "$1,160.00 MXN"}


def prebuilt_message(index: int = 0) -> bytes:
    """The baseline's message: the same shape and size as what the tools send."""
    ctx = context(index)

    def fill(template: str) -> str:
        for key, value in ctx.items():
            template = template.replace("{{ " + key + " }}", value)
        return template

    message = EmailMessage()
    message["From"], message["To"] = SENDER, RECIPIENT
    message["Subject"] = fill(SUBJECT)
    message["Message-ID"] = f"<baseline-{index}@bench.mx>"
    message.set_content(fill(BODY_TEXT))
    message.add_alternative(fill(BODY_HTML), subtype="html")
    message.add_attachment(pdf_for(index), "application", "pdf", filename=f"{number(index)}.pdf")
    message.add_attachment(xml_for(index), "application", "xml", filename=f"{number(index)}.xml")
    return message.as_bytes(policy=email.policy.SMTP)


def docmail_template(text: str) -> str:
    """The same template in docmail's names (Jinja2, with Babel money formatting)."""
    return (
        text.replace("{{ party }}", "{{ party.name }}")
        .replace("{{ number }}", "{{ document.number }}")
        .replace("{{ total }}", "{{ document.total|money(document.currency) }}")
    )
