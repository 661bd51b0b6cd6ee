"""A small world for web tests: a company with an account, a party, users and documents."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from docmail.services import accounts, documents, parties
from docmail.services.companies import add_membership, create_company, create_user
from docmail.services.inputs import AccountIn, DocumentIn, PartyIn
from docmail.services.runtime import Actor, Role, Runtime

PASSWORD = "correct horse battery"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class WebWorld:
    company_id: int
    other_company_id: int
    admin: str
    sender: str
    viewer: str
    invoice_id: int
    other_invoice_id: int
    account_id: int


def party(code: str) -> PartyIn:
    return PartyIn.model_validate(
        {
            "code": code,
            "name": f"Cliente {code}",
            "email": f"general@{code.lower()}.mx",
            "language": "es",
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
            ],
        }
    )


def invoice(number: str, party_code: str) -> DocumentIn:
    return DocumentIn.model_validate(
        {
            "type": "invoice",
            "number": number,
            "party_code": party_code,
            "issue_date": "2026-11-20",
            "total": "1160.00",
            "currency": "MXN",
            "status": "stamped",
            "attachments": [
                {
                    "filename": f"{number}.pdf",
                    "content_type": "application/pdf",
                    "content_base64": base64.b64encode(PDF).decode(),
                }
            ],
        }
    )


def _user(runtime: Runtime, email: str, company_id: int, role: Role) -> str:
    user = create_user(runtime, email, PASSWORD, name=email.split("@")[0].title())
    add_membership(runtime, user.id, company_id, role)
    return email


def build_world(runtime: Runtime, smtp_port: int, invoices: int = 3) -> WebWorld:
    company = create_company(runtime, "ACME SA de CV", country="MX")
    other = create_company(runtime, "Otra Empresa SA", country="MX")
    actor = Actor(company.id, Role.ADMIN)
    account = accounts.create_account(
        runtime,
        actor,
        AccountIn(
            name="Facturación",
            host="127.0.0.1",
            port=smtp_port,
            security="none",
            from_email="facturacion@acme.mx",
            from_name="ACME Facturación",
            is_default=True,
        ),
    )
    for code in ("CLI01", "CLI02"):
        parties.create_party(runtime, actor, party(code))
    first = documents.create_document(runtime, actor, invoice("F-0001", "CLI01")).document
    for n in range(2, invoices + 1):
        documents.create_document(runtime, actor, invoice(f"F-{n:04d}", f"CLI0{1 + n % 2}"))
    other_actor = Actor(other.id, Role.ADMIN)
    parties.create_party(runtime, other_actor, party("OTRO"))
    foreign = documents.create_document(runtime, other_actor, invoice("X-1", "OTRO")).document
    admin = _user(runtime, "admin@acme.mx", company.id, Role.ADMIN)
    add_membership(runtime, _user_id(runtime, admin), other.id, Role.VIEWER)
    return WebWorld(
        company.id,
        other.id,
        admin,
        _user(runtime, "sender@acme.mx", company.id, Role.SENDER),
        _user(runtime, "viewer@acme.mx", company.id, Role.VIEWER),
        first.id,
        foreign.id,
        account.id,
    )


def _user_id(runtime: Runtime, email: str) -> int:
    from sqlalchemy import select

    from docmail.adapters.db import tables as t

    with runtime.session() as session:
        return session.scalar(select(t.User.id).where(t.User.email == email)) or 0
