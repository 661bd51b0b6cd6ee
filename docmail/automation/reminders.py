"""Payment reminders: which documents get which reminder, and when.

A reminder rule says "``offset_days`` from the due date" (negative: before it).
A document gets a rule's reminder once (the services enforce that with a
unique key), on the day it becomes due or within ``CATCH_UP_DAYS`` after (a
worker that was down catches up, but a week-old "due in 3 days" is not sent),
and never:

* once it is settled: cancelled, ``data.paid: true`` or ``data.balance`` 0;
* without a due date;
* within ``QUIET_AFTER_FIRST_EMAIL`` of the document's own first email, so a
  customer does not get the invoice and a reminder back to back.

Every "not now" here is temporary: the daily job looks again tomorrow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from docmail.automation.policy import Decision
from docmail.automation.statements import is_settled

CATCH_UP_DAYS = 3
QUIET_AFTER_FIRST_EMAIL = timedelta(hours=24)
REMINDABLE_STATUSES = ("issued", "stamped")

CANCELLED = "cancelled"
NOT_ISSUED = "not issued"
PAID = "paid"
NO_DUE_DATE = "no due date"
NOT_YET = "not yet"
TOO_LATE = "missed by more than the catch-up days"
JUST_SENT = "the document's own email went out less than 24 h ago"


@dataclass(frozen=True)
class Receivable:
    status: str
    due_date: date | None
    data: Mapping[str, Any]
    first_sent_at: datetime | None  # the document's first delivered email, if any


def remind_on(due_date: date, offset_days: int) -> date:
    return due_date + timedelta(days=offset_days)


def reminder_decision(offset_days: int, doc: Receivable, today: date, now: datetime) -> Decision:
    """Whether a reminder ``offset_days`` from the due date goes out now for ``doc``."""
    if doc.status == CANCELLED:
        return Decision(False, CANCELLED)
    if doc.status not in REMINDABLE_STATUSES:
        return Decision(False, NOT_ISSUED)
    if is_settled(doc.data):
        return Decision(False, PAID)
    if doc.due_date is None:
        return Decision(False, NO_DUE_DATE)
    day = remind_on(doc.due_date, offset_days)
    if today < day:
        return Decision(False, NOT_YET)
    if (today - day).days > CATCH_UP_DAYS:
        return Decision(False, TOO_LATE)
    if doc.first_sent_at is not None and now - doc.first_sent_at < QUIET_AFTER_FIRST_EMAIL:
        return Decision(False, JUST_SENT)
    return Decision(True)


def due_window(today: date, offset_days: int) -> tuple[date, date]:
    """The due dates whose reminder may go out ``today`` (for the services' query)."""
    latest = today - timedelta(days=offset_days)
    return latest - timedelta(days=CATCH_UP_DAYS), latest
