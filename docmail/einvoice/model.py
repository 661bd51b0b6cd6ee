"""What docmail reads from an e-invoice, whatever its country and format."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
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


def parse_decimal(text: str | None, what: str) -> Decimal | None:
    if text is None or text.strip() == "":
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise invalid(f"file: {what} {text!r} is not a number") from None
    if not value.is_finite():
        raise invalid(f"file: {what} {text!r} is not a number")
    return value


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
