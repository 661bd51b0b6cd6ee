"""Colombia: DIAN UBL 2.1 Invoice, CreditNote, DebitNote and the AttachedDocument container."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from xml.etree.ElementTree import Element

from docmail.einvoice.model import (
    DIAN_AMOUNT,
    EInvoice,
    TaxParty,
    check_count,
    checked_amount,
    invalid,
    parse_amount,
    parse_day,
    require,
)
from docmail.einvoice.safexml import Reader, local, namespace, parse_xml

CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
UBL_ROOTS = {
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2": "Invoice",
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2": "CreditNote",
    "urn:oasis:names:specification:ubl:schema:xsd:DebitNote-2": "DebitNote",
}
ATTACHED_NS = "urn:oasis:names:specification:ubl:schema:xsd:AttachedDocument-2"
# root -> (docmail type, DIAN document type code when the XML has none, line element)
_KINDS = {
    "Invoice": ("invoice", "01", "InvoiceLine", "InvoicedQuantity", "LegalMonetaryTotal"),
    "CreditNote": ("credit_note", "91", "CreditNoteLine", "CreditedQuantity", "LegalMonetaryTotal"),
    "DebitNote": ("debit_note", "92", "DebitNoteLine", "DebitedQuantity", "RequestedMonetaryTotal"),
}
MAX_LINES = 500  # lines kept for the printed form
#: DIAN's Anexo Técnico sets no number of lines; docmail refuses more than this.
MAX_UBL_LINES = 5000


class _Ubl:
    """Lookups written with ``cbc:``/``cac:`` prefixes, as in the DIAN annex."""

    def __init__(self) -> None:
        self.cbc, self.cac = Reader(CBC), Reader(CAC)

    def _path(self, path: str) -> str:
        parts = []
        for part in path.split("/"):
            prefix, _, name = part.partition(":")
            parts.append(f"{{{CBC if prefix == 'cbc' else CAC}}}{name}")
        return "/".join(parts)

    def find(self, el: Element | None, path: str) -> Element | None:
        return None if el is None else el.find(self._path(path))

    def findall(self, el: Element | None, path: str) -> list[Element]:
        return [] if el is None else el.findall(self._path(path))

    def text(self, el: Element | None, path: str) -> str | None:
        found = self.find(el, path)
        return None if found is None or found.text is None else found.text.strip()


U = _Ubl()


def _party(root: Element, role: str) -> tuple[TaxParty, dict[str, str]]:
    party = U.find(root, f"cac:{role}/cac:Party")
    if party is None:
        raise invalid(f"file: the {role} is missing")
    scheme = U.find(party, "cac:PartyTaxScheme/cbc:CompanyID")
    legal = U.find(party, "cac:PartyLegalEntity/cbc:CompanyID")
    id_el = scheme if scheme is not None else legal
    nit = require(id_el.text if id_el is not None else None, f"{role} CompanyID (NIT)")
    name = (
        U.text(party, "cac:PartyLegalEntity/cbc:RegistrationName")
        or U.text(party, "cac:PartyTaxScheme/cbc:RegistrationName")
        or U.text(party, "cac:PartyName/cbc:Name")
        or ""
    )
    extra = {
        "dv": id_el.get("schemeID", "") if id_el is not None else "",
        "trade_name": U.text(party, "cac:PartyName/cbc:Name") or name,
        "email": U.text(party, "cac:Contact/cbc:ElectronicMail") or "",
    }
    return TaxParty(nit, name), extra


def _lines(root: Element, line_tag: str, quantity_tag: str) -> list[dict[str, str]]:
    lines = U.findall(root, f"cac:{line_tag}")
    check_count(len(lines), f"cac:{line_tag}", MAX_UBL_LINES, "docmail")
    return [
        {
            "id": U.text(line, "cbc:ID") or "",
            "quantity": U.text(line, f"cbc:{quantity_tag}") or "",
            "description": U.text(line, "cac:Item/cbc:Description") or "",
            "price": _amount(line, "cac:Price/cbc:PriceAmount"),
            "amount": _amount(line, "cbc:LineExtensionAmount"),
        }
        for line in lines[:MAX_LINES]
    ]


def _amount(el: Element | None, path: str) -> str:
    return checked_amount(U.text(el, path), path, DIAN_AMOUNT)


def _tax_total(root: Element) -> str:
    amounts = [
        parse_amount(U.text(t, "cbc:TaxAmount"), "cac:TaxTotal/cbc:TaxAmount", DIAN_AMOUNT)
        for t in U.findall(root, "cac:TaxTotal")
    ]
    return str(sum((a for a in amounts if a is not None), Decimal(0)))


def parse_ubl(root: Element, attached: dict[str, Any] | None = None) -> EInvoice:
    """A DIAN UBL 2.1 Invoice, CreditNote or DebitNote (``attached``: its container's data)."""
    kind = UBL_ROOTS[namespace(root.tag)]
    doc_type, default_code, line_tag, quantity_tag, totals_tag = _KINDS[kind]
    cufe = U.find(root, "cbc:UUID")
    if cufe is None or not (cufe.text or "").strip():
        raise invalid(f"file: the DIAN {kind} has no cbc:UUID (CUFE/CUDE)")
    supplier, supplier_extra = _party(root, "AccountingSupplierParty")
    customer, customer_extra = _party(root, "AccountingCustomerParty")
    totals = U.find(root, f"cac:{totals_tag}")
    type_code = U.text(root, f"cbc:{kind}TypeCode") or default_code
    dian = {
        "kind": kind,
        "profile_execution_id": U.text(root, "cbc:ProfileExecutionID") or "",
        "document_type_code": type_code,
        "cufe": (cufe.text or "").strip(),
        "cufe_scheme": cufe.get("schemeName", ""),
        "issue_time": U.text(root, "cbc:IssueTime") or "",
        "supplier_dv": supplier_extra["dv"],
        "supplier_trade_name": supplier_extra["trade_name"],
        "customer_dv": customer_extra["dv"],
        "line_extension": _amount(totals, "cbc:LineExtensionAmount"),
        "tax_exclusive": _amount(totals, "cbc:TaxExclusiveAmount"),
        "tax_inclusive": _amount(totals, "cbc:TaxInclusiveAmount"),
        "tax_total": _tax_total(root),
        "payable": U.text(totals, "cbc:PayableAmount") or "",
        "lines": _lines(root, line_tag, quantity_tag),
        "attached_document": attached or None,
    }
    return EInvoice(
        country="CO",
        format="dian_attached" if attached else "dian_ubl21",
        doc_type=doc_type,
        number=require(U.text(root, "cbc:ID"), f"{kind} cbc:ID"),
        issue_date=parse_day(U.text(root, "cbc:IssueDate"), f"{kind} IssueDate"),
        due_date=parse_day(
            U.text(root, "cbc:DueDate") or U.text(root, "cac:PaymentMeans/cbc:PaymentDueDate"),
            "DueDate",
        ),
        issuer=supplier,
        receiver=customer,
        total=parse_amount(U.text(totals, "cbc:PayableAmount"), "cbc:PayableAmount", DIAN_AMOUNT),
        currency=U.text(root, "cbc:DocumentCurrencyCode") or "COP",
        fiscal_id=(cufe.text or "").strip(),
        data={"dian": dian},
    )


def parse_attached(root: Element, max_bytes: int) -> EInvoice:
    """An AttachedDocument: the invoice inside it (CDATA), plus DIAN's validation result."""
    embedded = U.text(root, "cac:Attachment/cac:ExternalReference/cbc:Description")
    if not embedded:
        raise invalid("file: the AttachedDocument carries no document in its cac:Attachment")
    inner = parse_xml(embedded.encode("utf-8"), max_bytes, "file (embedded document)")
    if namespace(inner.tag) not in UBL_ROOTS:
        raise invalid(
            f"file: the AttachedDocument holds a {local(inner.tag)}, "
            "not an Invoice, CreditNote or DebitNote"
        )
    response = U.find(root, "cac:ParentDocumentLineReference/cac:DocumentReference")
    verification = U.find(response, "cac:ResultOfVerification")
    attached = {
        "id": U.text(root, "cbc:ID") or "",
        "parent_document_id": U.text(root, "cbc:ParentDocumentID") or "",
        "validation_code": U.text(verification, "cbc:ValidationResultCode") or "",
        "validation_date": U.text(verification, "cbc:ValidationDate") or "",
    }
    return parse_ubl(inner, attached)
