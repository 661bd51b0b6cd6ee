"""Recognise an e-invoice by its root element and read it."""

from __future__ import annotations

from decimal import Decimal

from docmail.einvoice import brazil, cfdi, dian
from docmail.einvoice.model import EInvoice, invalid
from docmail.einvoice.safexml import local, namespace, parse_xml
from docmail.errors import PayloadTooLarge

#: Digits before the point of ``documents.total`` (NUMERIC(20, 6), as ``DocumentIn.total``).
MAX_TOTAL_DIGITS = 14
KNOWN = (
    "CFDI 3.3/4.0 (cfdi:Comprobante), Retenciones (retenciones:Retenciones), "
    "nfeProc, cteProc, DIAN UBL 2.1 Invoice/CreditNote/DebitNote or AttachedDocument"
)


def parse_einvoice(data: bytes, max_bytes: int) -> EInvoice:
    """Read one e-invoice XML file (at most ``max_bytes``).

    Raises a 4xx :class:`~docmail.errors.DocmailError` with field ``file`` for
    oversize, unsafe (DTD, entities) or malformed XML, an unknown root element,
    or a document that is not stamped/authorised or lacks required parts.
    """
    invoice = _read(data, max_bytes)
    _check_storable(invoice.total)
    return invoice


def _read(data: bytes, max_bytes: int) -> EInvoice:
    root = parse_xml(data, max_bytes)
    ns, name = namespace(root.tag), local(root.tag)
    if name == "Comprobante" and ns in cfdi.CFDI_NAMESPACES:
        return cfdi.parse_cfdi(root, ns)
    if name == "Retenciones" and ns in cfdi.RETENTION_NAMESPACES:
        return cfdi.parse_retention(root, ns)
    if name == "nfeProc" and ns == brazil.NFE_NS:
        _check_layout_size(data, "an NF-e")
        return brazil.parse_nfe(root)
    if name == "cteProc" and ns == brazil.CTE_NS:
        _check_layout_size(data, "a CT-e")
        return brazil.parse_cte(root)
    if ns in dian.UBL_ROOTS and name == dian.UBL_ROOTS[ns]:
        return dian.parse_ubl(root)
    if name == "AttachedDocument" and ns == dian.ATTACHED_NS:
        return dian.parse_attached(root, max_bytes)
    if name in ("NFe", "CTe"):
        raise invalid(
            f"file: a bare {name} is not authorised yet; import the {name.lower()}Proc "
            "XML (with the SEFAZ protocol)"
        )
    shown = f"{{{ns}}}{name}" if ns else name
    raise invalid(f"file: root element {shown} is not an e-invoice docmail reads; expected {KNOWN}")


def _check_layout_size(data: bytes, what: str) -> None:
    """SEFAZ refuses messages over 500 KB (MOC 7.0, cStat 214), so no authorised NF-e or
    CT-e is larger; twice that leaves room for the protocol and re-indented files."""
    if len(data) > brazil.MAX_XML_BYTES:
        raise PayloadTooLarge(
            f"file is {len(data):,} bytes; {what} is at most {brazil.MAX_XML_BYTES:,} bytes "
            "(SEFAZ takes messages of up to 500 KB)",
            field="file",
            value=len(data),
        )


def _check_storable(total: Decimal | None) -> None:
    """The formats allow totals of up to 18 digits (CFDI); a document's total is stored with
    at most 14 before the point and 6 after (``documents.total``, NUMERIC(20, 6))."""
    if total is not None and total.adjusted() >= MAX_TOTAL_DIGITS:
        raise invalid(
            f"file: the total {total} has more than {MAX_TOTAL_DIGITS} digits before the "
            "decimal point; docmail stores totals of up to 14 digits"
        )
