"""When a document may be sent."""

import pytest

from docmail.domain.documents import (
    DEFAULT_TYPE_CODES,
    DocumentStatus,
    check_sendable,
    default_type,
)
from docmail.errors import Conflict

REQUIRED_TYPES = {
    "invoice",
    "credit_note",
    "debit_note",
    "cash_receipt",
    "payment",
    "bank_document",
    "retention",
    "nfe",
    "boleto",
    "quote",
    "statement",
}


def test_every_required_document_type_has_a_default() -> None:
    assert set(DEFAULT_TYPE_CODES) >= REQUIRED_TYPES


def test_retention_cannot_be_sent_before_it_is_stamped() -> None:
    retention = default_type("retention")
    assert retention is not None
    with pytest.raises(Conflict) as err:
        check_sendable(retention.rule, "R-1", DocumentStatus.ISSUED)
    assert "stamped" in err.value.message
    check_sendable(retention.rule, "R-1", DocumentStatus.STAMPED)


def test_cancelled_documents_cannot_be_sent() -> None:
    invoice = default_type("invoice")
    assert invoice is not None
    with pytest.raises(Conflict):
        check_sendable(invoice.rule, "A-1", DocumentStatus.CANCELLED)


def test_types_without_a_required_state_can_be_sent_as_drafts() -> None:
    quote = default_type("quote")
    assert quote is not None
    check_sendable(quote.rule, "Q-1", DocumentStatus.DRAFT)
