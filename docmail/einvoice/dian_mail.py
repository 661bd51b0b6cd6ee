"""How DIAN (Colombia) expects an electronic invoice to be emailed to the buyer.

Anexo técnico de factura electrónica de venta (Resolución 000042 de 2020),
"entrega al adquiriente": one email per document carrying ONE ZIP file with
the AttachedDocument XML and the graphic representation (PDF), at most 2 MB,
with the subject ``NIT del emisor;Nombre del emisor;Número del documento;
Código tipo de documento;Nombre comercial;Línea de negocio``.

File names follow the annex's pattern ``<prefix><NIT, 10 digits><PT code,
3 digits><year, 2 digits><consecutive, 8 hex digits>``: ``z`` for the ZIP,
``ad`` for the AttachedDocument. docmail keeps no per-year counter of sent
files, so the consecutive is the document number's digits in hexadecimal
(unique per number, stable across resends); the PT code is ``000`` (own
software). The PDF inside takes the document's prefix (``fv`` invoice,
``nc`` credit note, ``nd`` debit note) on the same name.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date

MAX_ZIP_BYTES = 2 * 1024 * 1024
PROVIDER_CODE = "000"
PDF_PREFIX = {"Invoice": "fv", "CreditNote": "nc", "DebitNote": "nd"}
# A fixed timestamp inside the ZIP: the same files always make the same bytes.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def file_stem(nit: str, number: str, issued: date | None) -> str:
    """``<NIT 10 digits>000<yy><8 hex>``, the part shared by the ZIP and its files."""
    digits = re.sub(r"\D", "", nit)[-10:].rjust(10, "0")
    year = f"{(issued.year if issued else 0) % 100:02d}"
    number_digits = re.sub(r"\D", "", number) or "0"
    consecutive = f"{int(number_digits) % 16**8:08x}"
    return f"{digits}{PROVIDER_CODE}{year}{consecutive}"


def zip_names(nit: str, number: str, issued: date | None, kind: str) -> tuple[str, str, str]:
    """(ZIP name, XML name, PDF name) for one document."""
    stem = file_stem(nit, number, issued)
    return f"z{stem}.zip", f"ad{stem}.xml", f"{PDF_PREFIX.get(kind, 'fv')}{stem}.pdf"


def build_zip(files: list[tuple[str, bytes]]) -> bytes:
    """A deflated ZIP of ``files`` (name, bytes), byte-for-byte reproducible."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _field(value: str) -> str:
    """A subject field: one line, no ';' (the separator)."""
    return " ".join(value.replace(";", ",").split())


def subject(
    nit: str, issuer: str, number: str, type_code: str, trade_name: str, business_line: str
) -> str:
    """DIAN's subject line, e.g. ``900373076;EMPRESA SAS;SETP990000002;01;EMPRESA;Facturación``."""
    parts = (nit, issuer, number, type_code, trade_name or issuer, business_line)
    return ";".join(_field(p) for p in parts)
