"""Documents, document types and the rules about when they may be sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from docmail.errors import Conflict, ValidationError


class DocumentStatus(StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    STAMPED = "stamped"
    CANCELLED = "cancelled"


# Ordering of the life cycle: a document that is stamped has also been issued.
_STATUS_RANK = {
    DocumentStatus.DRAFT: 0,
    DocumentStatus.ISSUED: 1,
    DocumentStatus.STAMPED: 2,
}


class Fallback(StrEnum):
    """What to do when a party has no contact with the roles a document type wants."""

    GENERAL_EMAIL = "general_email"  # use the party's general address, with a warning
    NONE = "none"  # leave To empty; the user must type one
    MANUAL_ONLY = "manual_only"  # never pre-fill: the user always types the address (quotes)


LANGUAGES = ("es", "pt", "en")


def parse_status(value: str, field_name: str = "status") -> DocumentStatus:
    try:
        return DocumentStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in DocumentStatus)
        raise ValidationError(
            f"{field_name} {value!r} is not one of: {allowed}", field=field_name, value=value
        ) from None


def parse_language(value: str, field_name: str = "language") -> str:
    if value not in LANGUAGES:
        raise ValidationError(
            f"{field_name} {value!r} is not supported; use one of {', '.join(LANGUAGES)}",
            field=field_name,
            value=value,
        )
    return value


@dataclass(frozen=True)
class DocumentTypeRule:
    """How one document type is addressed and when it may be sent."""

    code: str
    name: str
    recipient_roles: tuple[str, ...]
    cc_roles: tuple[str, ...] = ()
    fallback: Fallback = Fallback.GENERAL_EMAIL
    required_status: DocumentStatus | None = None


def check_sendable(rule: DocumentTypeRule, number: str, status: DocumentStatus) -> None:
    """Raise :class:`Conflict` when a document in ``status`` may not be emailed yet."""
    if status is DocumentStatus.CANCELLED:
        raise Conflict(
            f"{rule.name} {number} is cancelled and cannot be sent",
            field="status",
            value=status.value,
        )
    required = rule.required_status
    if required is None:
        return
    if _STATUS_RANK[status] < _STATUS_RANK[required]:
        raise Conflict(
            f"{rule.name} {number} is {status.value}; it can only be sent once {required.value}",
            field="status",
            value=status.value,
        )


@dataclass(frozen=True)
class DefaultDocumentType:
    rule: DocumentTypeRule
    names: dict[str, str] = field(default_factory=dict)  # per language, for templates and UI


def _t(
    code: str,
    names: dict[str, str],
    roles: tuple[str, ...],
    fallback: Fallback = Fallback.GENERAL_EMAIL,
    required: DocumentStatus | None = None,
    cc_roles: tuple[str, ...] = (),
) -> DefaultDocumentType:
    rule = DocumentTypeRule(code, names["en"], roles, cc_roles, fallback, required)
    return DefaultDocumentType(rule, names)


DEFAULT_DOCUMENT_TYPES: tuple[DefaultDocumentType, ...] = (
    _t("invoice", {"en": "Invoice", "es": "Factura", "pt": "Fatura"}, ("finance", "einvoice")),
    _t(
        "credit_note",
        {"en": "Credit note", "es": "Nota de crédito", "pt": "Nota de crédito"},
        ("finance", "einvoice"),
    ),
    _t(
        "debit_note",
        {"en": "Debit note", "es": "Nota de débito", "pt": "Nota de débito"},
        ("finance", "einvoice"),
    ),
    _t(
        "cash_receipt",
        {"en": "Cash receipt", "es": "Recibo de caja", "pt": "Recibo"},
        ("finance",),
    ),
    _t(
        "payment",
        {"en": "Payment", "es": "Comprobante de pago", "pt": "Comprovante de pagamento"},
        ("finance",),
    ),
    _t(
        "bank_document",
        {"en": "Bank document", "es": "Documento bancario", "pt": "Documento bancário"},
        ("finance",),
    ),
    _t(
        "retention",
        {
            "en": "Withholding certificate",
            "es": "Certificado de retención",
            "pt": "Comprovante de retenção",
        },
        ("finance",),
        required=DocumentStatus.STAMPED,
    ),
    _t(
        "nfe",
        {"en": "NF-e", "es": "NF-e", "pt": "NF-e"},
        ("einvoice",),
        required=DocumentStatus.STAMPED,
    ),
    _t(
        "cte",
        {"en": "CT-e", "es": "CT-e", "pt": "CT-e"},
        ("einvoice",),
        required=DocumentStatus.STAMPED,
    ),
    _t("boleto", {"en": "Boleto", "es": "Boleto", "pt": "Boleto"}, ("finance",)),
    _t(
        "quote",
        {"en": "Quote", "es": "Cotización", "pt": "Orçamento"},
        (),
        fallback=Fallback.MANUAL_ONLY,
    ),
    _t(
        "statement",
        {"en": "Account statement", "es": "Estado de cuenta", "pt": "Extrato de conta"},
        ("finance",),
    ),
)

DEFAULT_TYPE_CODES = tuple(t.rule.code for t in DEFAULT_DOCUMENT_TYPES)


def default_type(code: str) -> DefaultDocumentType | None:
    for candidate in DEFAULT_DOCUMENT_TYPES:
        if candidate.rule.code == code:
            return candidate
    return None
