"""The e-invoice samples in tests/data/samples and what SOURCES.md says they contain."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


@dataclass(frozen=True)
class Sample:
    file: str
    doc_type: str
    fiscal_id: str
    total: str
    currency: str
    issuer: str
    receiver: str
    receiver_name: str
    country: str
    pdf: str | None = None  # the printed form that belongs to it, if the set has one

    @property
    def data(self) -> bytes:
        return (SAMPLES / self.file).read_bytes()

    @property
    def pdf_data(self) -> bytes | None:
        return (SAMPLES / self.pdf).read_bytes() if self.pdf else None


# Values copied from tests/data/samples/SOURCES.md (read independently of the parser).
ALL = [
    Sample("mx-cfdi40-invoice.xml", "invoice", "C2832671-DA6D-11EF-A83D-00155D012007",
           "1000.00", "MXN", "ISD950921HE5", "COSC8001137NA", "CARLOS CORTES SOTO", "MX"),
    Sample("mx-cfdi40-pagos20.xml", "payment", "5b64ada3-aa4c-40b4-a2f5-572ced52be31",
           "17852.75", "MXN", "H&E951128469", "KIJ0906199R1", "KIJ, S.A DE C.V.", "MX"),
    Sample("mx-cfdi33-invoice-for-pdf.xml", "invoice", "9FB6ED1A-5F37-4FEF-980A-7F8C83B51894",
           "2382870", "MXN", "AAA010101AAA", "COSC8001137NA", "CARLOS CORTES SOTO", "MX",
           pdf="mx-cfdi33-invoice.pdf"),
    Sample("br-nfe400-nfeproc-signed.xml", "nfe", "41170706117473000150550010000463202612756525",
           "84.90", "BRL", "06117473000150", "27373722000148",
           "NF-E EMITIDA EM AMBIENTE DE HOMOLOGACAO - SEM VALOR FISCAL", "BR"),
    Sample("br-nfe-for-danfe.xml", "nfe", "35200159594315000157550010000000022062777169",
           "1950.00", "BRL", "81583054000129", "76586507812", "EMPRESA FICTÍCIA LTDA", "BR",
           pdf="br-danfe.pdf"),
    Sample("br-cte300-cteproc.xml", "cte", "41181028796029000140570260000000081486169211",
           "100.00", "BRL", "28796029000140", "01234567890",
           "CT-E EMITIDO EM AMBIENTE DE HOMOLOGACAO - SEM VALOR FISCAL", "BR"),
    Sample("co-dian-ubl21-invoice.xml", "invoice",
           "941cf36af62dbbc06f105d2a80e9bfe683a90e84960eae4d351cc3afbe8f848c"
           "26c39bac4fbc80fa254824c6369ea694",
           "14024.07", "COP", "800197268", "900108281", "OPTICAS GMO COLOMBIA S A S", "CO"),
]  # fmt: skip

BY_FILE = {s.file: s for s in ALL}


def attached_document(invoice_xml: bytes) -> bytes:
    """A DIAN AttachedDocument wrapping ``invoice_xml`` in CDATA, as a PT sends the buyer."""
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<AttachedDocument xmlns="urn:oasis:names:specification:ubl:schema:xsd:AttachedDocument-2"'
        b' xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"'
        b' xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">'
        b"<cbc:ID>AD-1</cbc:ID><cbc:ParentDocumentID>SETP990000002</cbc:ParentDocumentID>"
        b"<cac:Attachment><cac:ExternalReference><cbc:MimeCode>text/xml</cbc:MimeCode>"
        b"<cbc:Description><![CDATA[" + invoice_xml + b"]]></cbc:Description>"
        b"</cac:ExternalReference></cac:Attachment>"
        b"<cac:ParentDocumentLineReference><cbc:LineID>1</cbc:LineID><cac:DocumentReference>"
        b"<cbc:ID>SETP990000002</cbc:ID><cac:ResultOfVerification>"
        b"<cbc:ValidationResultCode>02</cbc:ValidationResultCode>"
        b"<cbc:ValidationDate>2019-06-20</cbc:ValidationDate></cac:ResultOfVerification>"
        b"</cac:DocumentReference></cac:ParentDocumentLineReference></AttachedDocument>"
    )


HOSTILE = {
    "billion laughs": b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b"<lolz>&lol3;</lolz>",
    "a DTD": b'<?xml version="1.0"?><!DOCTYPE Comprobante SYSTEM "cfdi.dtd">'
    b'<cfdi:Comprobante xmlns:cfdi="http://www.sat.gob.mx/cfd/4"/>',
    "an external entity": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM '
    b'"file:///etc/passwd">]><r>&x;</r>',
    "not XML": b"%PDF-1.4 this is not XML at all",
    "a wrong root": b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"/>',
    "an unstamped CFDI": b'<cfdi:Comprobante xmlns:cfdi="http://www.sat.gob.mx/cfd/4"'
    b' TipoDeComprobante="I" Total="1"/>',
}
