"""Auto-send rules: when a rule fires for a document, and whether the party gets it.

A rule belongs to one company and document type. It fires on a *trigger*:
``created`` (the document was stored) or a status the document reaches
(``issued``, ``stamped``, ``cancelled``). Whether the email is then sent
depends on the rule (enabled, recipient policy) and the party's switches:

* the party's ``auto_send`` off wins over everything;
* ``only_multiple`` (the rule's policy, or the party's own switch, which
  applies to that party alone) sends only when the party received more than
  one document of that type in the same run; a document outside any run is a
  run of one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from docmail.errors import ValidationError

CREATED = "created"
TRIGGERS = (CREATED, "issued", "stamped", "cancelled")
_RANK = {"draft": 0, "issued": 1, "stamped": 2}

# Why an automatic email was not sent; shown in run reports.
RULE_DISABLED = "rule disabled"
PARTY_OFF = "party off"
ONLY_ONE = "only one document"
NO_RECIPIENT = "no recipient"
NOT_SENDABLE = "not sendable"


class Policy(StrEnum):
    ALL = "all"
    ONLY_MULTIPLE = "only_multiple"


@dataclass(frozen=True)
class RuleSettings:
    enabled: bool
    policy: Policy


@dataclass(frozen=True)
class PartySwitches:
    auto_send: bool
    only_multiple: bool


@dataclass(frozen=True)
class Decision:
    """``send`` or not, and why not (one of the reason constants above)."""

    send: bool
    reason: str | None = None


SEND = Decision(True)


def parse_trigger(value: str, field_name: str = "trigger") -> str:
    if value not in TRIGGERS:
        raise ValidationError(
            f"{field_name} {value!r} is not one of: {', '.join(TRIGGERS)}",
            field=field_name,
            value=value,
        )
    return value


def status_reached(current: str, wanted: str) -> bool:
    """Whether a document in ``current`` has reached ``wanted`` (cancelled reaches nothing else)."""
    if wanted == "cancelled" or current == "cancelled":
        return current == wanted
    return _RANK.get(current, -1) >= _RANK[wanted]


def rule_applies(trigger: str, event: str, status: str) -> bool:
    """Whether a rule with ``trigger`` fires on ``event`` for a document now in ``status``.

    ``event`` is ``created`` (also used when a run closes: everything already
    true fires) or ``status:<new>``. A ``created`` rule never fires on a status change.
    """
    if trigger == CREATED:
        return event == CREATED
    return status_reached(status, trigger)


def decide(rule: RuleSettings, party: PartySwitches, documents_in_run: int) -> Decision:
    """Send one document's automatic email, or say why not.

    ``documents_in_run``: how many documents of the rule's type the party has
    in the document's run (1 for a document outside any run).
    """
    if not rule.enabled:
        return Decision(False, RULE_DISABLED)
    if not party.auto_send:
        return Decision(False, PARTY_OFF)
    needs_several = rule.policy is Policy.ONLY_MULTIPLE or party.only_multiple
    if needs_several and documents_in_run < 2:
        return Decision(False, ONLY_ONE)
    return SEND


def count_per_party(members: Iterable[tuple[int, str]]) -> Counter[tuple[int, str]]:
    """Documents per (party id, document type) among a run's ``(party_id, doc_type)`` members."""
    return Counter(members)


def rule_key(rule_id: int, document_id: int, trigger: str) -> str:
    """The idempotency key of a rule's email for a document: it fires once, ever."""
    return f"auto:rule:{rule_id}:doc:{document_id}:{trigger}"


def reminder_key(rule_id: int, document_id: int) -> str:
    return f"auto:reminder:{rule_id}:doc:{document_id}"


def statement_key(party_id: int, as_of: date) -> str:
    return f"auto:statement:party:{party_id}:{as_of.isoformat()}"


def job_key(job_id: int, scheduled_for: datetime) -> str:
    return f"auto:job:{job_id}:{scheduled_for.isoformat()}"
