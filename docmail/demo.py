"""Demo data for ``docmail serve --demo``: a company, a catcher account, parties, documents.

Everything goes through the services, so the demo data passes the same
validation as real data. Loading is idempotent: a second run reuses the demo
company and skips parties and documents that exist.
"""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from sqlalchemy import select

from docmail.adapters.db import tables as t
from docmail.errors import AuthenticationRequired, Conflict
from docmail.services.accounts import create_account, list_accounts, update_account
from docmail.services.companies import (
    add_membership,
    authenticate_token,
    create_api_token,
    create_company,
    create_user,
)
from docmail.services.documents import create_document
from docmail.services.inputs import AccountIn, AccountPatch, AttachmentIn, DocumentIn, PartyIn
from docmail.services.parties import create_party
from docmail.services.runtime import Actor, Role, Runtime

DEMO_COMPANY = "Demo Comercial SA de CV"
DEMO_ACCOUNT = "Demo mail catcher"
# email-validator refuses the reserved .test TLD, so the demo uses example.com names.
DEMO_FROM = "facturacion@demo-docmail.example.com"
DEMO_USER = "demo@docmail.example.com"
DEMO_PASSWORD = "demo-docmail"  # noqa: S105 - the published demo sign-in, demo data only
DEMO_TOKEN_FILE = "demo-token.txt"  # noqa: S105 (a file name, not a secret)
DEMO_RFC = "DCO200101AB1"


@dataclass(frozen=True)
class DemoInfo:
    company_id: int
    token: str
    account_id: int


# ---------------------------------------------------------------- attachments


def _pdf_text(text: str) -> bytes:
    """A PDF literal string in WinAnsi encoding, with ( ) \\ and 8-bit bytes escaped."""
    out = bytearray(b"(")
    for byte in text.encode("cp1252", errors="replace"):
        if byte in b"()\\":
            out += b"\\" + bytes([byte])
        elif byte < 32 or byte > 126:
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    return bytes(out + b")")


def _content_stream(title: str, lines: list[str]) -> bytes:
    ops = [b"BT /F1 20 Tf 72 770 Td " + _pdf_text(title) + b" Tj ET"]
    y = 730
    for line in lines:
        ops.append(b"BT /F1 12 Tf 72 %d Td " % y + _pdf_text(line) + b" Tj ET")
        y -= 18
    return b"\n".join(ops) + b"\n"


def minimal_pdf(title: str, lines: list[str]) -> bytes:
    """A small, valid one-page A4 PDF showing ``title`` and ``lines`` in Helvetica."""
    stream = _content_stream(title, lines)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def nfe_access_key(uf: int, yymm: str, cnpj: str, series: int, number: int, code: int) -> str:
    """A 44-digit NF-e access key with its modulo-11 check digit."""
    digits = "".join(c for c in cnpj if c.isdigit())
    body = f"{uf:02d}{yymm}{digits:0>14}55{series:03d}{number:09d}1{code:08d}"
    total = sum(int(d) * (2 + i % 8) for i, d in enumerate(reversed(body)))
    check = 11 - total % 11
    return body + str(0 if check >= 10 else check)


def _attrs(values: dict[str, str]) -> str:
    return " ".join(f"{key}={quoteattr(value)}" for key, value in values.items())


def cfdi_xml(doc: DocumentIn, party: PartyIn, kind: str) -> bytes:
    """A small CFDI 4.0-shaped XML with its fiscal stamp (TimbreFiscalDigital)."""
    head = _attrs(
        {
            "Version": "4.0",
            "Folio": doc.number,
            "Fecha": f"{doc.issue_date}T10:00:00",
            "Moneda": doc.currency or "MXN",
            "Total": f"{doc.total:.2f}",
            "TipoDeComprobante": kind,
        }
    )
    emisor = _attrs({"Rfc": DEMO_RFC, "Nombre": DEMO_COMPANY.upper(), "RegimenFiscal": "601"})
    receptor = _attrs({"Rfc": party.tax_id or "XAXX010101000", "Nombre": party.name.upper()})
    stamp = _attrs(
        {
            "Version": "1.1",
            "UUID": doc.fiscal_id or "",
            "FechaTimbrado": f"{doc.issue_date}T10:01:12",
        }
    )
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<cfdi:Comprobante xmlns:cfdi="http://www.sat.gob.mx/cfd/4" '
        f'xmlns:tfd="http://www.sat.gob.mx/TimbreFiscalDigital" {head}>\n'
        f"  <cfdi:Emisor {emisor}/>\n  <cfdi:Receptor {receptor}/>\n"
        f"  <cfdi:Complemento><tfd:TimbreFiscalDigital {stamp}/></cfdi:Complemento>\n"
        "</cfdi:Comprobante>\n"
    )
    return text.encode()


def nfe_xml(doc: DocumentIn, party: PartyIn) -> bytes:
    """A small NF-e 4.00-shaped XML (nfeProc) with its authorisation protocol."""
    key = doc.fiscal_id or ""
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<nfeProc xmlns="http://www.portalfiscal.inf.br/nfe" versao="4.00">\n'
        f'  <NFe><infNFe Id="NFe{key}" versao="4.00">\n'
        f"    <ide><nNF>{int(doc.number)}</nNF><serie>1</serie>"
        f"<dhEmi>{doc.issue_date}T09:30:00-03:00</dhEmi></ide>\n"
        "    <emit><CNPJ>11222333000181</CNPJ><xNome>Demo Comercial do Brasil Ltda</xNome></emit>\n"
        f"    <dest><CNPJ>{escape(''.join(c for c in party.tax_id or '' if c.isdigit()))}</CNPJ>"
        f"<xNome>{escape(party.name)}</xNome></dest>\n"
        f"    <total><ICMSTot><vNF>{doc.total:.2f}</vNF></ICMSTot></total>\n"
        "  </infNFe></NFe>\n"
        f'  <protNFe versao="4.00"><infProt><chNFe>{key}</chNFe>'
        "<nProt>135250001234567</nProt><cStat>100</cStat>"
        "<xMotivo>Autorizado o uso da NF-e</xMotivo></infProt></protNFe>\n"
        "</nfeProc>\n"
    )
    return text.encode()


# ---------------------------------------------------------------- demo records


def _contact(name: str, email: str, *roles: str) -> dict[str, Any]:
    return {"name": name, "email": email, "roles": list(roles)}


DEMO_PARTIES: tuple[dict[str, Any], ...] = (
    {
        "code": "ESPERANZA",
        "name": "Abarrotes La Esperanza SA de CV",
        "tax_id": "AES010203AB1",
        "email": "facturas@laesperanza.example.com",
        "language": "es",
        "contacts": [
            _contact("Laura Méndez", "cxp@laesperanza.example.com", "finance"),
            _contact("Buzón CFDI", "cfdi@laesperanza.example.com", "einvoice"),
            _contact("Jorge Salinas", "compras@laesperanza.example.com"),
        ],
    },
    {
        "code": "PAULISTA",
        "name": "Comércio de Alimentos Paulista Ltda",
        "tax_id": "12.345.678/0001-95",
        "email": "contato@paulista.example.com",
        "language": "pt",
        "contacts": [
            _contact("Ana Souza", "financeiro@paulista.example.com", "finance"),
            _contact("Recebimento NF-e", "nfe@paulista.example.com", "einvoice"),
        ],
    },
    {
        "code": "NORTHWIND",
        "name": "Northwind Traders LLC",
        "tax_id": "12-3456789",
        "language": "en",
        "contacts": [
            _contact("Accounts Payable", "ap@northwind.example.com", "finance", "einvoice"),
            _contact("Mike Chen", "mike.chen@northwind.example.com"),
        ],
    },
    {
        "code": "MARTILLO",
        "name": "Ferretería El Martillo",
        "tax_id": "FMA990512KL3",
        "email": "contacto@elmartillo.example.com",
        "language": "es",
    },
    {
        "code": "CAFETERA",
        "name": "Distribuidora Cafetera del Valle SAS",
        "tax_id": "900.123.456-7",
        "email": "info@cafeteradelvalle.example.com",
        "language": "es",
        "contacts": [_contact("Tesorería", "tesoreria@cafeteradelvalle.example.com", "finance")],
    },
    {
        "code": "PROSPECTO-ANDINA",
        "name": "Constructora Andina SAS",
        "tax_id": "901.555.432-1",
        "email": "compras@constructoraandina.example.com",
        "language": "es",
        "auto_send": False,
    },
)


def _uuid(number: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://demo.docmail/cfdi/{number}")).upper()


_NFE_KEY = nfe_access_key(35, "2509", "11.222.333/0001-81", 1, 123456, 48213957)


def _doc(
    type_: str, number: str, party: str, issued: date, total: str, currency: str, **extra: Any
) -> dict[str, Any]:
    return {
        "type": type_,
        "number": number,
        "party_code": party,
        "issue_date": issued,
        "total": Decimal(total),
        "currency": currency,
        **extra,
    }


DEMO_DOCUMENTS: tuple[dict[str, Any], ...] = (
    _doc(
        "invoice",
        "A-1001",
        "ESPERANZA",
        date(2025, 9, 1),
        "11600.00",
        "MXN",
        due_date=date(2025, 10, 1),
        status="stamped",
        fiscal_id=_uuid("A-1001"),
        data={
            "purchase_order": "OC-7781",
            "payment_terms": "30 días",
            "subtotal": "10000.00",
            "iva": "1600.00",
        },
    ),
    _doc(
        "invoice",
        "A-1002",
        "MARTILLO",
        date(2025, 9, 3),
        "4872.00",
        "MXN",
        due_date=date(2025, 9, 18),
        data={"payment_terms": "15 días"},
    ),
    _doc(
        "invoice",
        "INV-2025-0042",
        "NORTHWIND",
        date(2025, 9, 5),
        "2450.00",
        "USD",
        due_date=date(2025, 10, 5),
        data={"purchase_order": "PO-55120", "incoterm": "FOB"},
    ),
    _doc(
        "credit_note",
        "NC-0201",
        "ESPERANZA",
        date(2025, 9, 10),
        "1160.00",
        "MXN",
        status="stamped",
        fiscal_id=_uuid("NC-0201"),
        data={"related_invoice": "A-1001", "reason": "Devolución de mercancía"},
    ),
    _doc(
        "cash_receipt",
        "RC-3301",
        "CAFETERA",
        date(2025, 9, 12),
        "2450000.00",
        "COP",
        data={"method": "Transferencia", "bank": "Bancolombia"},
    ),
    _doc(
        "payment",
        "CP-0088",
        "ESPERANZA",
        date(2025, 9, 30),
        "10440.00",
        "MXN",
        status="stamped",
        fiscal_id=_uuid("CP-0088"),
        data={"paid_invoices": ["A-1001"], "method": "SPEI"},
    ),
    _doc(
        "retention",
        "RET-2025-07",
        "ESPERANZA",
        date(2025, 8, 1),
        "1250.00",
        "MXN",
        data={"period": "2025-07", "tax": "ISR"},
    ),
    _doc(
        "retention",
        "RET-2025-06",
        "ESPERANZA",
        date(2025, 7, 1),
        "1180.00",
        "MXN",
        status="stamped",
        fiscal_id=_uuid("RET-2025-06"),
        data={"period": "2025-06", "tax": "ISR"},
    ),
    _doc(
        "nfe",
        "000123456",
        "PAULISTA",
        date(2025, 9, 8),
        "15780.50",
        "BRL",
        status="stamped",
        fiscal_id=_NFE_KEY,
        data={"series": "1", "cfop": "5102"},
    ),
    _doc(
        "boleto",
        "BOL-7788",
        "PAULISTA",
        date(2025, 9, 8),
        "15780.50",
        "BRL",
        due_date=date(2025, 10, 8),
        data={
            "nosso_numero": "00077880012",
            "linha_digitavel": "34191.79001 01043.510047 91020.150008 8 12340001578050",
        },
    ),
    _doc(
        "quote",
        "COT-0456",
        "PROSPECTO-ANDINA",
        date(2025, 9, 15),
        "38500000.00",
        "COP",
        due_date=date(2025, 10, 15),
        data={"valid_days": 30, "project": "Bodega Funza"},
    ),
    _doc(
        "statement",
        "EC-2025-09",
        "ESPERANZA",
        date(2025, 9, 30),
        "4032.00",
        "MXN",
        data={"period": "2025-09", "open_invoices": ["A-1001"], "credits": ["NC-0201"]},
    ),
)

_CFDI_KIND = {"invoice": "I", "credit_note": "E", "payment": "P", "retention": "R"}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def document_pdf(doc: DocumentIn, party: PartyIn) -> bytes:
    lines = [
        f"Number: {doc.number}",
        f"Customer: {party.name} ({party.tax_id or '-'})",
        f"Issued: {doc.issue_date}" + (f"   Due: {doc.due_date}" if doc.due_date else ""),
        f"Total: {doc.total:,.2f} {doc.currency}",
    ]
    if doc.fiscal_id:
        lines.append(f"Fiscal id: {doc.fiscal_id}")
    return minimal_pdf(f"{DEMO_COMPANY} - {doc.type} {doc.number}", lines)


def with_attachments(doc: DocumentIn, party: PartyIn) -> DocumentIn:
    """The document plus its PDF and, for stamped e-documents, its XML."""
    files = [
        AttachmentIn(
            filename=f"{doc.number}.pdf",
            content_type="application/pdf",
            content_base64=_b64(document_pdf(doc, party)),
        )
    ]
    xml = None
    if doc.type == "nfe":
        xml = nfe_xml(doc, party)
    elif doc.type in _CFDI_KIND and doc.status == "stamped":
        xml = cfdi_xml(doc, party, _CFDI_KIND[doc.type])
    if xml is not None:
        files.append(
            AttachmentIn(
                filename=f"{doc.number}.xml",
                content_type="application/xml",
                content_base64=_b64(xml),
            )
        )
    return doc.model_copy(update={"attachments": files})


# ---------------------------------------------------------------- loading


def find_company(runtime: Runtime, name: str) -> int | None:
    """The id of the company with exactly this name, if any (the oldest one)."""
    with runtime.session() as session:
        return session.scalar(
            select(t.Company.id).where(t.Company.name == name.strip()).order_by(t.Company.id)
        )


def _ensure_account(runtime: Runtime, actor: Actor, port: int) -> int:
    for account in list_accounts(runtime, actor):
        if account.name == DEMO_ACCOUNT:
            if account.port != port or account.host != "127.0.0.1" or account.paused:
                patch = AccountPatch(host="127.0.0.1", port=port, paused=False, is_default=True)
                update_account(runtime, actor, account.id, patch)
            return account.id
    data = AccountIn(
        name=DEMO_ACCOUNT,
        host="127.0.0.1",
        port=port,
        security="none",
        from_email=DEMO_FROM,
        from_name="Demo Comercial - Facturación",
        is_default=True,
    )
    return create_account(runtime, actor, data).id


def _load_records(runtime: Runtime, actor: Actor) -> None:
    parties = {p["code"]: PartyIn.model_validate(p) for p in DEMO_PARTIES}
    for party in parties.values():
        try:
            create_party(runtime, actor, party)
        except Conflict as exc:
            if exc.field != "code":
                raise
    for raw in DEMO_DOCUMENTS:
        doc = DocumentIn.model_validate(raw)
        create_document(runtime, actor, with_attachments(doc, parties[doc.party_code]))


def demo_token(runtime: Runtime, company_id: int) -> str:
    """The demo API token, kept in DATA_DIR/demo-token.txt (mode 0600) across restarts."""
    path: Path = runtime.settings.data_dir / DEMO_TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        try:
            if authenticate_token(runtime, token).company_id == company_id:
                return token
        except AuthenticationRequired:
            pass
    token = create_api_token(runtime, company_id, "demo", Role.ADMIN, created_by="demo")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def _ensure_demo_user(runtime: Runtime, company_id: int) -> None:
    """The demo admin who signs in to the web pages (created once, then reused)."""
    with runtime.session() as session:
        user_id = session.scalar(select(t.User.id).where(t.User.email == DEMO_USER))
        member = user_id is not None and session.scalar(
            select(t.Membership.id).where(
                t.Membership.user_id == user_id, t.Membership.company_id == company_id
            )
        )
    if user_id is None:
        user_id = create_user(runtime, DEMO_USER, DEMO_PASSWORD, name="Demo", language="es").id
    if not member:
        add_membership(runtime, user_id, company_id, Role.ADMIN)


def load_demo(runtime: Runtime, catcher_port: int = 2525) -> DemoInfo:
    """Create (or reuse) the demo company with its account, parties and documents."""
    company_id = find_company(runtime, DEMO_COMPANY)
    if company_id is None:
        company_id = create_company(runtime, DEMO_COMPANY, country="MX", language="es").id
    actor = Actor(company_id=company_id, role=Role.ADMIN, label="demo")
    account_id = _ensure_account(runtime, actor, catcher_port)
    _load_records(runtime, actor)
    _ensure_demo_user(runtime, company_id)
    return DemoInfo(company_id, demo_token(runtime, company_id), account_id)
