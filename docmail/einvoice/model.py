"""What docmail reads from an e-invoice, whatever its country and format."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

from docmail.errors import ValidationError

FIELD = "file"

# Language of a party created from an e-invoice, by the country of the format.
COUNTRY_LANGUAGE = {"MX": "es", "CO": "es", "BR": "pt"}


def invalid(message: str, field_name: str = FIELD) -> ValidationError:
    """The error for a file docmail cannot take: HTTP 422 naming ``field_name``."""
    return ValidationError(message, field=field_name)


@dataclass(frozen=True)
class TaxParty:
    """An issuer or receiver: tax id (RFC, CNPJ/CPF, NIT) and registered name."""

    tax_id: str
    name: str

    def as_dict(self) -> dict[str, str]:
        return {"tax_id": self.tax_id, "name": self.name}


@dataclass(frozen=True)
class EInvoice:
    """One parsed e-invoice.

    ``doc_type`` is a docmail document type code (invoice, payment, nfe, ...);
    ``fiscal_id`` the country's identifier (CFDI UUID, NF-e/CT-e access key, CUFE);
    ``data`` holds the country-specific fields offered to templates, always with
    an ``einvoice`` entry (format, country, issuer, receiver) and one per format
    (``cfdi``, ``pagos``, ``nfe``, ``cte``, ``dian``).
    """

    country: str
    format: str
    doc_type: str
    number: str
    issue_date: date | None
    issuer: TaxParty
    receiver: TaxParty
    total: Decimal | None
    currency: str | None
    fiscal_id: str
    data: dict[str, Any] = field(default_factory=dict)
    due_date: date | None = None

    def document_data(self) -> dict[str, Any]:
        """``data`` plus the common ``einvoice`` summary, JSON-ready."""
        summary = {
            "format": self.format,
            "country": self.country,
            "issuer": self.issuer.as_dict(),
            "receiver": self.receiver.as_dict(),
        }
        return {**self.data, "einvoice": summary}


@dataclass(frozen=True)
class AmountRule:
    """An official decimal type: digits before the point, decimals after it, and whether a
    minus sign is allowed. No exponent, NaN or Infinity (``Decimal`` takes ``1e100000000``,
    whose printed form is a 133 MB string)."""

    name: str
    integer_digits: int
    min_decimals: int
    max_decimals: int
    signed: bool = False

    @property
    def pattern(self) -> re.Pattern[str]:
        return _amount_pattern(self)

    def describe(self) -> str:
        decimals = (
            f"{self.max_decimals}"
            if self.min_decimals == self.max_decimals
            else f"{self.min_decimals} to {self.max_decimals}"
        )
        sign = "an optional minus, " if self.signed else ""
        return (
            f"{self.name} amount ({sign}up to {self.integer_digits} digits, optionally a point "
            f"and {decimals} decimals; no exponent)"
        )


@cache
def _amount_pattern(rule: AmountRule) -> re.Pattern[str]:
    sign = "-?" if rule.signed else ""
    decimals = f"[0-9]{{{rule.min_decimals},{rule.max_decimals}}}"
    return re.compile(rf"{sign}[0-9]{{1,{rule.integer_digits}}}(?:\.{decimals})?", re.ASCII)


#: SAT's CFDI 4.0 / Pagos 2.0 / Retenciones 2.0 ``t_Importe``: [0-9]{1,18}(.[0-9]{1,6})?
#: (Anexo 20; the same pattern bounds Cantidad and TipoCambio). Never negative.
CFDI_IMPORTE = AmountRule("CFDI t_Importe", 18, 1, 6)
#: NF-e/CT-e layout 4.00 (tiposBasico_v4.00.xsd): TDec_1302 for totals and item values
#: (13 digits, 2 decimals), TDec_1110v for vUnCom (11 digits, 1 to 10 decimals).
NFE_TDEC_1302 = AmountRule("NF-e TDec_1302", 13, 2, 2)
NFE_TDEC_1110V = AmountRule("NF-e TDec_1110v", 11, 1, 10)
#: UBL 2.1 AmountType is xsd:decimal (a sign allowed, no exponent); DIAN's Anexo Técnico
#: takes up to 6 decimals. The 18 integer digits are docmail's bound (as CFDI's).
DIAN_AMOUNT = AmountRule("DIAN UBL 2.1", 18, 1, 6, signed=True)


def parse_amount(text: str | None, where: str, rule: AmountRule) -> Decimal | None:
    """The amount at ``where`` (e.g. ``Comprobante/@Total``) if it follows ``rule``."""
    if text is None or text.strip() == "":
        return None
    value = text.strip()
    if not rule.pattern.fullmatch(value):
        shown = value if len(value) <= 40 else f"{value[:40]}..."
        raise invalid(f"file: {where} {shown!r} is not a {rule.describe()}")
    return Decimal(value)


def checked_amount(text: str | None, where: str, rule: AmountRule) -> str:
    """``text`` (kept as written, for the printed form) once it follows ``rule``."""
    parse_amount(text, where, rule)
    return (text or "").strip()


def check_count(count: int, where: str, limit: int, source: str) -> None:
    """Refuse more repeated elements than the format allows (``source`` says who set it)."""
    if count > limit:
        raise invalid(f"file: {count:,} {where} elements; {source} allows at most {limit:,}")


def parse_day(text: str | None, what: str) -> date | None:
    """The date part of an ISO date or date-time (``2025-01-24T10:10:41``)."""
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise invalid(f"file: {what} {text!r} is not a date (YYYY-MM-DD...)") from None


def require(value: str | None, what: str) -> str:
    if value is None or not value.strip():
        raise invalid(f"file: {what} is missing")
    return value.strip()
