"""Queue an automatic email at most once per key, and record what was decided.

Every automatic email (a rule firing for a document, a payment reminder, a
statement) has a key. In one transaction this module checks the key's
recorded outcome, composes the email through the normal path
(``compose_in_session`` + ``build_message_row``), queues it with the key as the
message's idempotency key, and records the outcome under the same key. Both
keys are unique in the database, so two workers (or a repeated event) queue
one email: the loser's transaction fails on the constraint and it returns the
winner's outcome.

Dry run executes the very same code inside a SAVEPOINT and rolls it back, so a
plan is exactly what a real run would do at that moment, and nothing stays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from docmail.adapters.db import outbox_store as store
from docmail.adapters.db import tables as t
from docmail.automation.policy import NO_RECIPIENT, NOT_SENDABLE
from docmail.errors import DocmailError
from docmail.services.compose import Composition
from docmail.services.inputs import SendIn
from docmail.services.runtime import Actor, Runtime
from docmail.services.sending import build_message_row

SENT, SKIPPED, FAILED, WOULD_SEND = "sent", "skipped", "failed", "would_send"


@dataclass
class Prepared:
    """What a builder made of one key: an email to queue, or a reason not to.

    ``final``: a skip is recorded under the key (decided for good); a temporary
    skip (``final=False``, e.g. "not yet") is only reported.
    """

    party: t.Party
    document: t.Document | None = None
    composed: Composition | None = None
    edits: SendIn = field(default_factory=SendIn)
    send_at: datetime | None = None
    skip: str | None = None
    final: bool = True


@dataclass(frozen=True)
class Scope:
    """Where an outcome belongs: its kind, and the run and rule it came from."""

    kind: str
    run_id: int | None = None
    rule_id: int | None = None


@dataclass(frozen=True)
class PlanItem:
    """One automatic email: sent (queued), would send (dry run), skipped or failed."""

    key: str
    kind: str
    status: str
    party_code: str
    document_id: int | None = None
    document_number: str | None = None
    rule_id: int | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    subject: str = ""
    reason: str | None = None
    message_id: int | None = None
    replayed: bool = False
    message_state: str | None = None  # the outbox state, for recorded outcomes


Builder = Callable[[Session], Prepared]


def find_outcome(session: Session, actor: Actor, key: str) -> t.AutomationOutcome | None:
    return session.scalar(
        select(t.AutomationOutcome).where(
            t.AutomationOutcome.company_id == actor.company_id, t.AutomationOutcome.key == key
        )
    )


def item_of_outcome(session: Session, row: t.AutomationOutcome, replayed: bool) -> PlanItem:
    """A plan item from a recorded outcome (report, or a repeated event's answer)."""
    party = session.get(t.Party, row.party_id) if row.party_id else None
    doc = session.get(t.Document, row.document_id) if row.document_id else None
    message = session.get(t.Message, row.message_id) if row.message_id else None
    return PlanItem(
        key=row.key,
        kind=row.kind,
        status=row.status,
        party_code=party.code if party else "",
        document_id=row.document_id,
        document_number=doc.number if doc else None,
        rule_id=row.rule_id,
        to=tuple(message.to) if message else (),
        cc=tuple(message.cc) if message else (),
        subject=message.subject if message else "",
        reason=row.reason,
        message_id=row.message_id,
        replayed=replayed,
        message_state=message.state if message else None,
    )


def _skip_reason(composed: Composition) -> str | None:
    if composed.blocked_reason:
        return f"{NOT_SENDABLE}: {composed.blocked_reason}"
    if not composed.to:
        return NO_RECIPIENT
    return None


def _message(
    runtime: Runtime, session: Session, actor: Actor, key: str, scope: Scope, prepared: Prepared
) -> t.Message:
    assert prepared.composed is not None
    message = build_message_row(runtime, session, actor, prepared.composed, prepared.edits)
    message.idempotency_key = key
    # Queued by a rule, a reminder or a statement run, whoever's event woke it.
    message.created_by = f"automation:{scope.kind}"
    if prepared.send_at is not None and prepared.send_at > message.next_attempt_at:
        message.next_attempt_at = prepared.send_at
    session.add(message)
    session.flush()
    return message


def _item(key: str, scope: Scope, prepared: Prepared, status: str, **extra: object) -> PlanItem:
    composed, doc = prepared.composed, prepared.document
    values: dict[str, object] = {
        "key": key,
        "kind": scope.kind,
        "status": status,
        "party_code": prepared.party.code,
        "document_id": doc.id if doc else None,
        "document_number": doc.number if doc else None,
        "rule_id": scope.rule_id,
    }
    if composed is not None:
        values.update(
            to=tuple(m.formatted() for m in composed.to),
            cc=tuple(m.formatted() for m in composed.cc),
            subject=composed.subject,
        )
    values.update(extra)
    return PlanItem(**values)  # type: ignore[arg-type]


def _attempt(
    runtime: Runtime, session: Session, actor: Actor, key: str, scope: Scope, build: Builder
) -> tuple[PlanItem, bool]:
    """Build, queue and record one key; returns (item, whether to record it)."""
    prepared = build(session)
    reason = prepared.skip or (_skip_reason(prepared.composed) if prepared.composed else None)
    if reason:
        return _item(key, scope, prepared, SKIPPED, reason=reason), prepared.final
    try:
        with session.begin_nested():
            message = _message(runtime, session, actor, key, scope, prepared)
    except DocmailError as exc:
        return _item(key, scope, prepared, FAILED, reason=exc.message), True
    return _item(key, scope, prepared, SENT, message_id=message.id), True


def _record(session: Session, actor: Actor, scope: Scope, item: PlanItem, party_id: int) -> None:
    session.add(
        t.AutomationOutcome(
            company_id=actor.company_id,
            key=item.key,
            kind=scope.kind,
            status=item.status,
            reason=item.reason,
            run_id=scope.run_id,
            rule_id=scope.rule_id,
            document_id=item.document_id,
            party_id=party_id,
            message_id=item.message_id,
        )
    )
    session.flush()


def _party_id(session: Session, actor: Actor, code: str) -> int:
    return int(
        session.scalar(
            select(t.Party.id).where(t.Party.company_id == actor.company_id, t.Party.code == code)
        )
        or 0
    )


def queue_once(
    runtime: Runtime, actor: Actor, key: str, scope: Scope, build: Builder, *, dry_run: bool
) -> PlanItem:
    """Queue the email ``build`` prepares unless ``key`` was decided before; say what happened."""
    try:
        with runtime.session() as session:
            earlier = find_outcome(session, actor, key)
            if earlier is not None:
                return item_of_outcome(session, earlier, replayed=True)
            if dry_run:
                return _dry(runtime, session, actor, key, scope, build)
            item, record = _attempt(runtime, session, actor, key, scope, build)
            if record:
                _record(session, actor, scope, item, _party_id(session, actor, item.party_code))
            if item.status == SENT:
                store.notify_queued(session)
    except IntegrityError:
        with runtime.session() as session:  # a concurrent twin decided this key first
            earlier = find_outcome(session, actor, key)
            if earlier is None:
                raise
            return item_of_outcome(session, earlier, replayed=True)
    if item.status == SENT:
        runtime.wakeup()
    return item


def _dry(
    runtime: Runtime, session: Session, actor: Actor, key: str, scope: Scope, build: Builder
) -> PlanItem:
    savepoint = session.begin_nested()
    try:
        item, _ = _attempt(runtime, session, actor, key, scope, build)
    finally:
        savepoint.rollback()
    if item.status == SENT:
        return PlanItem(**{**item.__dict__, "status": WOULD_SEND, "message_id": None})
    return item
