"""Auto-send rules: CRUD, and firing them when documents are created or change status.

Documents leave an automation event in their own transaction
(``automation_events``); workers evaluate it (``docmail.worker.events`` calls
``evaluate_document``). A document in an open run waits for the run's close
(see ``automation_runs``); any other document is decided at once, counted
within its (closed) run, or as a run of one. Each (rule, document, trigger)
fires once ever: see ``automation_queue``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.automation.policy import (
    PartySwitches,
    Policy,
    RuleSettings,
    decide,
    rule_applies,
    rule_key,
)
from docmail.errors import Conflict, NotFound
from docmail.services import audit
from docmail.services.automation_inputs import RuleIn, RulePatch
from docmail.services.automation_queue import Builder, PlanItem, Prepared, Scope, queue_once
from docmail.services.compose import (
    Composition,
    compose_in_session,
    document_context,
    template_context,
)
from docmail.services.doctypes import get_type_row
from docmail.services.documents import get_document_row
from docmail.services.runtime import Actor, Role, Runtime
from docmail.services.templates import effective_template
from docmail.templates.engine import TemplateSource

log = logging.getLogger("docmail.automation")


@dataclass(frozen=True)
class RuleView:
    """A rule as evaluation needs it (read once, used outside its session)."""

    id: int
    doc_type: str
    trigger: str
    settings: RuleSettings
    delay: timedelta
    subject: str | None
    body_html: str | None
    body_text: str | None

    @classmethod
    def of(cls, row: t.AutomationRule) -> RuleView:
        return cls(
            row.id,
            row.doc_type,
            row.trigger,
            RuleSettings(row.enabled, Policy(row.policy)),
            timedelta(seconds=row.delay_seconds),
            row.subject,
            row.body_html,
            row.body_text,
        )

    @property
    def overrides(self) -> bool:
        return any(v is not None for v in (self.subject, self.body_html, self.body_text))


# ---------------------------------------------------------------- CRUD


def _rule_row(session: Session, actor: Actor, rule_id: int) -> t.AutomationRule:
    row = session.get(t.AutomationRule, rule_id)
    if row is None or row.company_id != actor.company_id:
        raise NotFound(f"rule {rule_id} not found", field="rule_id", value=rule_id)
    return row


def _check_templates(runtime: Runtime, values: dict[str, str | None]) -> None:
    if any(v is not None for v in values.values()):
        runtime.templates.check(
            TemplateSource(
                values.get("subject") or "x",
                values.get("body_html") or "",
                values.get("body_text") or "",
            )
        )


def create_rule(runtime: Runtime, actor: Actor, data: RuleIn) -> t.AutomationRule:
    """Store a rule; one per company, document type and trigger (else 409)."""
    actor.require(Role.ADMIN)
    _check_templates(runtime, data.model_dump(include={"subject", "body_html", "body_text"}))
    try:
        with runtime.session() as session:
            get_type_row(session, actor, data.doc_type)
            row = t.AutomationRule(company_id=actor.company_id, **data.model_dump())
            session.add(row)
            session.flush()
            detail = data.model_dump(exclude={"subject", "body_html", "body_text"})
            audit.record(session, actor, "automation_rule.created", _target(row), detail)
            return row
    except IntegrityError:
        raise Conflict(
            f"a rule for {data.doc_type} on {data.trigger} exists already; change that one",
            field="trigger",
            value=data.trigger,
        ) from None


def update_rule(runtime: Runtime, actor: Actor, rule_id: int, patch: RulePatch) -> t.AutomationRule:
    actor.require(Role.ADMIN)
    changes = patch.model_dump(exclude_unset=True)
    _check_templates(runtime, {k: changes.get(k) for k in ("subject", "body_html", "body_text")})
    with runtime.session() as session:
        row = _rule_row(session, actor, rule_id)
        diff = audit.changed(row, changes)
        for body in ("body_html", "body_text"):  # too long for the list: only say it changed
            if body in diff:
                diff[body] = "changed"
        for key, value in changes.items():
            setattr(row, key, value)
        session.flush()
        if diff:
            audit.record(session, actor, "automation_rule.updated", _target(row), diff)
        return row


def delete_rule(runtime: Runtime, actor: Actor, rule_id: int) -> None:
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        row = _rule_row(session, actor, rule_id)
        session.delete(row)
        audit.record(session, actor, "automation_rule.deleted", _target(row))


def _target(row: t.AutomationRule) -> str:
    return f"automation_rule:{row.id} {row.doc_type}/{row.trigger}"


def get_rule(runtime: Runtime, actor: Actor, rule_id: int) -> t.AutomationRule:
    with runtime.session() as session:
        return _rule_row(session, actor, rule_id)


def list_rules(runtime: Runtime, actor: Actor) -> list[t.AutomationRule]:
    with runtime.session() as session:
        return list(
            session.scalars(
                select(t.AutomationRule)
                .where(t.AutomationRule.company_id == actor.company_id)
                .order_by(t.AutomationRule.id)
            )
        )


# ---------------------------------------------------------------- evaluation


def rules_for(session: Session, actor: Actor, doc_type: str) -> list[RuleView]:
    rows = session.scalars(
        select(t.AutomationRule)
        .where(
            t.AutomationRule.company_id == actor.company_id, t.AutomationRule.doc_type == doc_type
        )
        .order_by(t.AutomationRule.id)
    )
    return [RuleView.of(r) for r in rows]


def run_count(session: Session, run_id: int | None, party_id: int, doc_type: str) -> int:
    """Documents of ``doc_type`` the party has in the run (1: a document outside any run)."""
    if run_id is None:
        return 1
    count = session.scalar(
        select(func.count())
        .select_from(t.AutomationRunDocument)
        .join(t.Document, t.Document.id == t.AutomationRunDocument.document_id)
        .where(
            t.AutomationRunDocument.run_id == run_id,
            t.Document.party_id == party_id,
            t.Document.doc_type == doc_type,
        )
    )
    return int(count or 0)


def _apply_overrides(
    runtime: Runtime,
    session: Session,
    actor: Actor,
    rule: RuleView,
    doc: t.Document,
    composed: Composition,
) -> Composition:
    """The rule's own subject/body templates, rendered with the document's usual context."""
    if not rule.overrides:
        return composed
    base = effective_template(runtime, session, actor, doc.doc_type, composed.language).source
    source = TemplateSource(
        rule.subject or base.subject,
        rule.body_html or base.body_html,
        rule.body_text or base.body_text,
    )
    company = session.get_one(t.Company, actor.company_id)
    type_name = get_type_row(session, actor, doc.doc_type).name
    context = template_context(
        company, doc.party, [document_context(doc, type_name)], composed.account
    )
    rendered = runtime.templates.render(source, context, composed.locale)
    return replace(
        composed,
        subject=rendered.subject,
        body_html=rendered.body_html,
        body_text=rendered.body_text,
    )


def _rule_builder(
    runtime: Runtime, actor: Actor, rule: RuleView, doc_id: int, count: int
) -> Builder:
    def build(session: Session) -> Prepared:
        doc = get_document_row(session, actor, doc_id)
        party = doc.party
        decision = decide(
            rule.settings, PartySwitches(party.auto_send, party.auto_send_only_multiple), count
        )
        if not decision.send:
            return Prepared(party, doc, skip=decision.reason)
        composed = compose_in_session(runtime, session, actor, [doc])
        composed = _apply_overrides(runtime, session, actor, rule, doc, composed)
        return Prepared(party, doc, composed, send_at=doc.created_at + rule.delay)

    return build


def fire_rule(
    runtime: Runtime,
    actor: Actor,
    rule: RuleView,
    doc_id: int,
    *,
    run_id: int | None,
    count: int,
    dry_run: bool = False,
) -> PlanItem:
    """Decide and (unless ``dry_run``) queue one rule's email for one document, once ever."""
    key = rule_key(rule.id, doc_id, rule.trigger)
    build = _rule_builder(runtime, actor, rule, doc_id, count)
    return queue_once(runtime, actor, key, Scope("rule", run_id, rule.id), build, dry_run=dry_run)


@dataclass(frozen=True)
class _DocState:
    doc_type: str
    status: str
    party_id: int
    run_id: int | None
    run_open: bool


def _doc_state(session: Session, actor: Actor, doc_id: int) -> _DocState:
    doc = get_document_row(session, actor, doc_id)
    run = session.execute(
        select(t.AutomationRun.id, t.AutomationRun.state)
        .join(t.AutomationRunDocument, t.AutomationRunDocument.run_id == t.AutomationRun.id)
        .where(t.AutomationRunDocument.document_id == doc_id)
        .order_by(t.AutomationRun.id.desc())
        .limit(1)
    ).first()
    run_id, state = (run[0], run[1]) if run else (None, None)
    return _DocState(doc.doc_type, doc.status, doc.party_id, run_id, state == "open")


def evaluate_document(
    runtime: Runtime,
    actor: Actor,
    doc_id: int,
    event: str,
    *,
    dry_run: bool = False,
    ignore_open_run: bool = False,
) -> list[PlanItem]:
    """Fire every rule of the document's type that ``event`` triggers.

    Nothing happens while the document's run is open (its close decides), unless
    ``ignore_open_run`` (the close itself).
    """
    with runtime.session() as session:
        state = _doc_state(session, actor, doc_id)
        if state.run_open and not ignore_open_run:
            return []
        rules = [
            r
            for r in rules_for(session, actor, state.doc_type)
            if rule_applies(r.trigger, event, state.status)
        ]
        count = run_count(session, state.run_id, state.party_id, state.doc_type)
    return [
        fire_rule(runtime, actor, r, doc_id, run_id=state.run_id, count=count, dry_run=dry_run)
        for r in rules
    ]


def dry_run_rule(
    runtime: Runtime, actor: Actor, rule_id: int, doc_ids: list[int]
) -> list[PlanItem]:
    """What the rule would send for these documents now (as if triggered), queueing nothing."""
    with runtime.session() as session:
        rule = RuleView.of(_rule_row(session, actor, rule_id))
        counts = {}
        for doc_id in doc_ids:
            state = _doc_state(session, actor, doc_id)
            counts[doc_id] = (
                state.run_id,
                run_count(session, state.run_id, state.party_id, state.doc_type),
            )
    return [
        fire_rule(runtime, actor, rule, d, run_id=counts[d][0], count=counts[d][1], dry_run=True)
        for d in doc_ids
    ]
