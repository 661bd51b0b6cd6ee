"""Recognise an e-invoice by its root element and read it."""

from __future__ import annotations

from docmail.einvoice import brazil, cfdi, dian
from docmail.einvoice.model import EInvoice, invalid
from docmail.einvoice.safexml import local, namespace, parse_xml

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
    root = parse_xml(data, max_bytes)
    ns, name = namespace(root.tag), local(root.tag)
    if name == "Comprobante" and ns in cfdi.CFDI_NAMESPACES:
        return cfdi.parse_cfdi(root, ns)
    if name == "Retenciones" and ns in cfdi.RETENTION_NAMESPACES:
        return cfdi.parse_retention(root, ns)
    if name == "nfeProc" and ns == brazil.NFE_NS:
        return brazil.parse_nfe(root)
    if name == "cteProc" and ns == brazil.CTE_NS:
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
