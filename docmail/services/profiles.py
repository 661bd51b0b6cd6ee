"""Country profiles: how each country's e-documents are packaged in the email.

Called at the end of compose with the composition about to be shown or sent;
a profile may rename attachments, bundle them, or set the subject a regulator
prescribes. Profiles touch only documents imported from an e-invoice of the
company's country (``document.data.einvoice``); everything else is unchanged.

* MX: the CFDI XML and its PDF are named by the UUID (``<UUID>.xml``/``.pdf``).
* BR: NF-e as ``<chave>-procNFe.xml`` + ``<chave>-danfe.pdf``; CT-e as
  ``<chave>-procCTe.xml`` + ``<chave>-dacte.pdf``.
* CO: one ZIP per document with the AttachedDocument (or invoice) XML and the
  PDF, DIAN's names and subject, and DIAN's 2 MB limit (over it: blocked).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.einvoice import dian_mail
from docmail.services.blobs import get_blob, put_blob

if TYPE_CHECKING:
    from docmail.services.compose import AttachmentRef, Composition

XML_TYPES = ("application/xml", "text/xml")
PDF_TYPE = "application/pdf"


def apply_country_profile(
    session: Session, company: t.Company, docs: list[t.Document], composition: Composition
) -> None:
    """Adjust ``composition`` in place for ``company.country`` (other countries: unchanged)."""
    einvoices = [d for d in docs if _einvoice(d).get("country") == company.country]
    if not einvoices:
        return
    if company.country == "MX":
        for doc in einvoices:
            key = (doc.fiscal_id or doc.number).upper()
            _rename(composition, doc, f"{key}.xml", f"{key}.pdf")
    elif company.country == "BR":
        for doc in einvoices:
            key = doc.fiscal_id or doc.number
            cte = "cte" in (doc.data or {})
            _rename(
                composition,
                doc,
                f"{key}-procCTe.xml" if cte else f"{key}-procNFe.xml",
                f"{key}-dacte.pdf" if cte else f"{key}-danfe.pdf",
            )
    elif company.country == "CO":
        _colombia(session, einvoices, composition)


def _einvoice(doc: t.Document) -> dict[str, Any]:
    summary = (doc.data or {}).get("einvoice")
    return summary if isinstance(summary, dict) else {}


def _first(doc: t.Document, types: tuple[str, ...]) -> t.DocumentAttachment | None:
    return next((a for a in doc.attachments if a.content_type in types), None)


def _rename(composition: Composition, doc: t.Document, xml_name: str, pdf_name: str) -> None:
    names = {}
    for types, name in ((XML_TYPES, xml_name), ((PDF_TYPE,), pdf_name)):
        row = _first(doc, types)
        if row is not None:
            names[row.id] = name
    composition.attachments = [
        replace(a, filename=names[a.id]) if a.id in names else a for a in composition.attachments
    ]


def _colombia(session: Session, docs: list[t.Document], composition: Composition) -> None:
    for doc in docs:
        _bundle(session, doc, composition)
    if len(docs) == 1:
        composition.subject = _dian_subject(docs[0])
    else:
        composition.warnings.append(
            "DIAN expects one email per electronic document; send these documents one by one"
        )


def _bundle(session: Session, doc: t.Document, composition: Composition) -> None:
    """Replace the document's XML and PDF by one ZIP, as DIAN prescribes."""
    from docmail.services.compose import AttachmentRef

    xml, pdf = _first(doc, XML_TYPES), _first(doc, (PDF_TYPE,))
    if xml is None or pdf is None:
        composition.warnings.append(
            f"{doc.number}: DIAN expects the XML and the PDF in one ZIP; "
            "this document lacks one of them, so its files are sent as they are"
        )
        return
    einvoice, dian = _einvoice(doc), (doc.data or {}).get("dian", {})
    zip_name, xml_name, pdf_name = dian_mail.zip_names(
        einvoice.get("issuer", {}).get("tax_id", ""),
        doc.number,
        doc.issue_date,
        dian.get("kind", "Invoice"),
    )
    data = dian_mail.build_zip(
        [
            (xml_name, get_blob(session, xml.blob_sha256)),
            (pdf_name, get_blob(session, pdf.blob_sha256)),
        ]
    )
    # In a read-only session (a preview, or composing before the write) the ZIP is
    # named by its hash and carried along; whoever queues the email stores it.
    read_only = bool(session.info.get("read_only"))
    digest = hashlib.sha256(data).hexdigest() if read_only else put_blob(session, data)
    bundled: AttachmentRef = AttachmentRef(
        None, digest, zip_name, "application/zip", len(data), data if read_only else None
    )
    replaced = {xml.id, pdf.id}
    composition.attachments = [a for a in composition.attachments if a.id not in replaced] + [
        bundled
    ]
    if len(data) > dian_mail.MAX_ZIP_BYTES:
        reason = (
            f"{doc.number}: the ZIP for DIAN is {len(data)} bytes; DIAN allows at most "
            f"{dian_mail.MAX_ZIP_BYTES} bytes (2 MB): make the PDF smaller"
        )
        composition.warnings.append(reason)
        composition.blocked_reason = "; ".join(filter(None, [composition.blocked_reason, reason]))


def _dian_subject(doc: t.Document) -> str:
    einvoice, dian = _einvoice(doc), (doc.data or {}).get("dian", {})
    issuer = einvoice.get("issuer", {})
    return dian_mail.subject(
        nit=issuer.get("tax_id", ""),
        issuer=issuer.get("name", ""),
        number=doc.number,
        type_code=dian.get("document_type_code", "01"),
        trade_name=dian.get("supplier_trade_name", ""),
        business_line=str((doc.data or {}).get("business_line", "")),
    )
