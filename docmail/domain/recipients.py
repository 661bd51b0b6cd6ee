"""Who receives a document: contacts by role, fallbacks, and the warnings a clerk must see."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from docmail.domain.addresses import Mailbox
from docmail.domain.documents import DocumentTypeRule, Fallback


@dataclass(frozen=True)
class ContactInfo:
    name: str
    email: str
    roles: tuple[str, ...]
    bouncing: bool = False
    bounce_reason: str | None = None


@dataclass(frozen=True)
class PartyInfo:
    code: str
    name: str
    email: str | None
    contacts: tuple[ContactInfo, ...] = ()


@dataclass
class RecipientPlan:
    """The pre-filled To/Cc and what the user should know before confirming."""

    to: list[Mailbox] = field(default_factory=list)
    cc: list[Mailbox] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    manual_address_required: bool = False

    @property
    def is_addressable(self) -> bool:
        return bool(self.to)


def _with_roles(
    contacts: Iterable[ContactInfo], roles: tuple[str, ...], plan: RecipientPlan
) -> list[Mailbox]:
    chosen: list[Mailbox] = []
    for contact in contacts:
        if not set(contact.roles) & set(roles):
            continue
        if contact.bouncing:
            reason = f" ({contact.bounce_reason})" if contact.bounce_reason else ""
            plan.warnings.append(f"skipped {contact.email}: address is bouncing{reason}")
            continue
        chosen.append(Mailbox(contact.email, contact.name))
    return chosen


def _dedupe(mailboxes: list[Mailbox], exclude: set[str]) -> list[Mailbox]:
    result = []
    for mailbox in mailboxes:
        key = mailbox.email.lower()
        if key not in exclude:
            exclude.add(key)
            result.append(mailbox)
    return result


def plan_recipients(rule: DocumentTypeRule, party: PartyInfo) -> RecipientPlan:
    """Apply a document type's recipient rule to a party and its contacts."""
    plan = RecipientPlan()
    if rule.fallback is Fallback.MANUAL_ONLY:
        plan.manual_address_required = True
        plan.warnings.append(f"{rule.name}: type the recipient's address")
        return plan
    seen: set[str] = set()
    plan.to = _dedupe(_with_roles(party.contacts, rule.recipient_roles, plan), seen)
    plan.cc = _dedupe(_with_roles(party.contacts, rule.cc_roles, plan), seen)
    if plan.to:
        return plan
    roles = " or ".join(rule.recipient_roles) or "any role"
    if rule.fallback is Fallback.GENERAL_EMAIL and party.email:
        plan.to = [Mailbox(party.email, party.name)]
        plan.warnings.append(f"no contact with role {roles}; using general email {party.email}")
    elif rule.fallback is Fallback.GENERAL_EMAIL:
        plan.warnings.append(
            f"no contact with role {roles} and party {party.code} has no general email; "
            "type an address"
        )
        plan.manual_address_required = True
    else:
        plan.warnings.append(f"no contact with role {roles}; type an address")
        plan.manual_address_required = True
    return plan
