"""Auto-send decisions, reminder eligibility and aging: pure rules, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from docmail.automation.policy import (
    ONLY_ONE,
    PARTY_OFF,
    RULE_DISABLED,
    PartySwitches,
    Policy,
    RuleSettings,
    decide,
    rule_applies,
    rule_key,
)
from docmail.automation.reminders import JUST_SENT, NOT_YET, PAID, Receivable, reminder_decision
from docmail.automation.statements import LedgerEntry, bucket_for, build_statement

ALL = RuleSettings(True, Policy.ALL)
SEVERAL = RuleSettings(True, Policy.ONLY_MULTIPLE)
ON = PartySwitches(True, False)


def test_a_party_switched_off_never_gets_automatic_email() -> None:
    assert decide(ALL, PartySwitches(False, False), 5) == decide(ALL, PartySwitches(False, True), 5)
    assert decide(ALL, PartySwitches(False, False), 5).reason == PARTY_OFF


def test_a_disabled_rule_says_so_before_anything_else() -> None:
    assert decide(RuleSettings(False, Policy.ALL), PartySwitches(False, False), 1).reason == (
        RULE_DISABLED
    )


def test_only_multiple_needs_two_documents_in_the_run() -> None:
    assert decide(SEVERAL, ON, 1).reason == ONLY_ONE
    assert decide(SEVERAL, ON, 2).send


def test_a_partys_own_only_when_several_applies_even_under_policy_all() -> None:
    assert decide(ALL, PartySwitches(True, True), 1).reason == ONLY_ONE
    assert decide(ALL, PartySwitches(True, True), 3).send
    assert decide(ALL, ON, 1).send


def test_status_rules_fire_once_the_state_is_reached_and_created_rules_only_on_creation() -> None:
    assert rule_applies("stamped", "status:stamped", "stamped")
    assert rule_applies("stamped", "created", "stamped")
    assert not rule_applies("stamped", "status:issued", "issued")
    assert not rule_applies("stamped", "status:cancelled", "cancelled")
    assert rule_applies("created", "created", "draft")
    assert not rule_applies("created", "status:stamped", "stamped")
    assert rule_applies("cancelled", "status:cancelled", "cancelled")


def test_rule_keys_differ_per_rule_document_and_trigger() -> None:
    keys = {rule_key(1, 2, "created"), rule_key(1, 2, "stamped"), rule_key(2, 2, "created")}
    assert len(keys) == 3


NOW = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)


def _doc(due: date | None, **data: object) -> Receivable:
    return Receivable("issued", due, data, None)


def test_a_reminder_goes_out_on_its_day_and_within_the_catch_up_days_only() -> None:
    assert reminder_decision(-3, _doc(date(2026, 11, 13)), NOW.date(), NOW).send
    assert reminder_decision(-3, _doc(date(2026, 11, 14)), NOW.date(), NOW).reason == NOT_YET
    assert reminder_decision(7, _doc(date(2026, 11, 3)), NOW.date(), NOW).send
    assert not reminder_decision(7, _doc(date(2026, 10, 20)), NOW.date(), NOW).send


def test_no_reminder_for_paid_or_cancelled_documents() -> None:
    assert reminder_decision(0, _doc(NOW.date(), paid=True), NOW.date(), NOW).reason == PAID
    assert reminder_decision(0, _doc(NOW.date(), balance=0), NOW.date(), NOW).reason == PAID
    cancelled = Receivable("cancelled", NOW.date(), {}, None)
    assert not reminder_decision(0, cancelled, NOW.date(), NOW).send


def test_no_reminder_within_a_day_of_the_documents_own_email() -> None:
    recent = Receivable("issued", NOW.date(), {}, NOW - timedelta(hours=5))
    assert reminder_decision(0, recent, NOW.date(), NOW).reason == JUST_SENT
    older = Receivable("issued", NOW.date(), {}, NOW - timedelta(hours=25))
    assert reminder_decision(0, older, NOW.date(), NOW).send


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (-5, "0-30"),
        (0, "0-30"),
        (30, "0-30"),
        (31, "31-60"),
        (61, "61-90"),
        (90, "61-90"),
        (91, "90+"),
    ],
)
def test_aging_buckets_have_inclusive_upper_limits(days: int, bucket: str) -> None:
    assert bucket_for(days) == bucket


def _entry(
    kind: str, number: str, due: date, total: str, status: str = "issued", **data: object
) -> LedgerEntry:
    return LedgerEntry(kind, number, status, due, due, Decimal(total), "MXN", data)


def test_a_statement_adds_debits_subtracts_credits_and_leaves_out_what_is_settled() -> None:
    as_of = date(2026, 12, 31)
    entries = [
        _entry("invoice", "A", date(2026, 12, 20), "100"),
        _entry("invoice", "B", date(2026, 11, 15), "200"),
        _entry("invoice", "C", date(2026, 8, 1), "300", balance="120.50"),
        _entry("invoice", "D", date(2026, 8, 1), "999", paid=True),
        _entry("invoice", "E", date(2026, 8, 1), "999", status="cancelled"),
        _entry("credit_note", "F", date(2026, 12, 1), "40"),
        _entry("debit_note", "G", date(2026, 10, 15), "10"),
        _entry("invoice", "H", date(2027, 1, 5), "500"),  # issued after the as-of date
        _entry("quote", "Q", date(2026, 12, 1), "1000"),
    ]
    section = build_statement("P", "Party", entries, as_of).sections[0]
    assert section.buckets == {
        "0-30": Decimal("60"),
        "31-60": Decimal("200"),
        "61-90": Decimal("10"),
        "90+": Decimal("120.50"),
    }
    assert section.balance == Decimal("390.50")
    assert [i.number for i in section.items] == ["C", "G", "B", "F", "A"]
