"""Account statements and aged receivables, from the documents' own amounts and dates.

What counts (decided here; the API and reports follow it):

* Signs: ``invoice`` and ``debit_note`` add to what the party owes;
  ``credit_note``, ``payment`` and ``cash_receipt`` subtract. Other types are
  not money owed and are left out.
* Open documents only: ``cancelled`` and ``draft`` documents are left out, and
  so are documents issued after the as-of date.
* ``data.paid: true`` settles a document (left out). ``data.balance`` (a
  number) is what is still open of it and replaces ``total``; a balance of 0
  settles it. Otherwise the open amount is ``total`` (no total: left out).
* Aging: days past the due date (the issue date when there is none) as of the
  date. Not yet due counts as 0-30. Credits are aged by their own date too, so a
  bucket may be negative; the balance is the sum of every open amount.
* One section per currency: amounts in different currencies are never added.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

SIGNS = {"invoice": 1, "debit_note": 1, "credit_note": -1, "payment": -1, "cash_receipt": -1}
BUCKETS = ("0-30", "31-60", "61-90", "90+")
_BUCKET_LIMITS = ((30, "0-30"), (60, "31-60"), (90, "61-90"))
_EXCLUDED_STATUSES = ("cancelled", "draft")


@dataclass(frozen=True)
class LedgerEntry:
    """What a statement needs of one document."""

    doc_type: str
    number: str
    status: str
    issue_date: date | None
    due_date: date | None
    total: Decimal | None
    currency: str | None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OpenItem:
    doc_type: str
    number: str
    issue_date: date | None
    due_date: date | None
    days_overdue: int
    bucket: str
    amount: Decimal  # signed: credits are negative


@dataclass(frozen=True)
class CurrencySection:
    currency: str
    items: list[OpenItem]
    buckets: dict[str, Decimal]
    balance: Decimal


@dataclass(frozen=True)
class Statement:
    party_code: str
    party_name: str
    as_of: date
    sections: list[CurrencySection]

    @property
    def empty(self) -> bool:
        return not self.sections


def is_settled(data: Mapping[str, Any]) -> bool:
    """``data.paid`` is true, or ``data.balance`` is zero."""
    if data.get("paid") is True:
        return True
    balance = declared_balance(data)
    return balance is not None and balance == 0


def declared_balance(data: Mapping[str, Any]) -> Decimal | None:
    """``data.balance`` as a number, or None when absent or not a number."""
    value = data.get("balance")
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def open_amount(entry: LedgerEntry, as_of: date) -> Decimal | None:
    """The signed amount still open of ``entry`` as of ``as_of``; None when it does not count."""
    sign = SIGNS.get(entry.doc_type)
    if sign is None or entry.status in _EXCLUDED_STATUSES:
        return None
    if entry.issue_date is not None and entry.issue_date > as_of:
        return None
    if is_settled(entry.data):
        return None
    amount = declared_balance(entry.data)
    if amount is None:
        amount = entry.total
    if amount is None:
        return None
    return sign * amount


def bucket_for(days_overdue: int) -> str:
    for limit, name in _BUCKET_LIMITS:
        if days_overdue <= limit:
            return name
    return BUCKETS[-1]


def _open_item(entry: LedgerEntry, as_of: date) -> OpenItem | None:
    amount = open_amount(entry, as_of)
    if amount is None:
        return None
    reference = entry.due_date or entry.issue_date or as_of
    days = (as_of - reference).days
    return OpenItem(
        entry.doc_type,
        entry.number,
        entry.issue_date,
        entry.due_date,
        max(days, 0),
        bucket_for(days),
        amount,
    )


def _section(currency: str, items: list[OpenItem]) -> CurrencySection:
    buckets = dict.fromkeys(BUCKETS, Decimal(0))
    for item in items:
        buckets[item.bucket] += item.amount
    items.sort(key=lambda i: (i.due_date or i.issue_date or date.min, i.number))
    return CurrencySection(currency, items, buckets, sum(buckets.values(), Decimal(0)))


def build_statement(
    party_code: str, party_name: str, entries: Iterable[LedgerEntry], as_of: date
) -> Statement:
    """The party's open items, aging buckets and balance per currency, as of ``as_of``."""
    by_currency: dict[str, list[OpenItem]] = {}
    for entry in entries:
        item = _open_item(entry, as_of)
        if item is not None:
            by_currency.setdefault(entry.currency or "", []).append(item)
    sections = [_section(c, items) for c, items in sorted(by_currency.items())]
    return Statement(party_code, party_name, as_of, sections)
