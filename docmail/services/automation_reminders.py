"""Payment reminders: rules CRUD and the (daily) evaluation that queues them.

Eligibility is pure (``docmail.automation.reminders``); this module loads the
candidates (documents whose due date puts them in a rule's window), and queues
each reminder once ever under ``reminder_key(rule, document)`` through
``automation_queue``. The email uses the ``reminder`` template (company's own,
or the built-in) with the document's usual recipients and attachments.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.automation.policy import NO_RECIPIENT, reminder_key
from docmail.automation.reminders import Receivable, due_window, reminder_decision
from docmail.errors import Conflict, NotFound
from docmail.services.automation_inputs import ReminderRuleIn
from docmail.services.automation_queue import Builder, PlanItem, Prepared, Scope, queue_once
from docmail.services.compose import compose_in_session, document_context, template_context
from docmail.services.doctypes import get_type_row
from docmail.services.documents import get_document_row
from docmail.services.runtime import Actor, Role, Runtime
from docmail.services.templates import effective_template

REMINDER = "reminder"  # notice template: templates/defaults/*/reminder.txt


def create_reminder_rule(runtime: Runtime, actor: Actor, data: ReminderRuleIn) -> t.ReminderRule:
    actor.require(Role.ADMIN)
    try:
        with runtime.session() as session:
            get_type_row(session, actor, data.doc_type)
            row = t.ReminderRule(company_id=actor.company_id, **data.model_dump())
            session.add(row)
            session.flush()
            return row
    except IntegrityError:
        raise Conflict(
            f"a reminder for {data.doc_type} at {data.offset_days} days exists already",
            field="offset_days",
            value=data.offset_days,
        ) from None


def list_reminder_rules(runtime: Runtime, actor: Actor) -> list[t.ReminderRule]:
    with runtime.session() as session:
        return list(
            session.scalars(
                select(t.ReminderRule)
                .where(t.ReminderRule.company_id == actor.company_id)
                .order_by(t.ReminderRule.id)
            )
        )


def delete_reminder_rule(runtime: Runtime, actor: Actor, rule_id: int) -> None:
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        row = session.get(t.ReminderRule, rule_id)
        if row is None or row.company_id != actor.company_id:
            raise NotFound(f"reminder rule {rule_id} not found", field="rule_id", value=rule_id)
        session.delete(row)


def _first_sent(session: Session, doc_id: int) -> datetime | None:
    first: datetime | None = session.scalar(
        select(func.min(t.Message.sent_at))
        .join(t.MessageDocument, t.MessageDocument.message_id == t.Message.id)
        .where(t.MessageDocument.document_id == doc_id, t.Message.state == "sent")
    )
    return first


def _receivable(session: Session, doc: t.Document) -> Receivable:
    return Receivable(doc.status, doc.due_date, dict(doc.data or {}), _first_sent(session, doc.id))


def _builder(runtime: Runtime, actor: Actor, offset: int, doc_id: int, now: datetime) -> Builder:
    def build(session: Session) -> Prepared:
        doc = get_document_row(session, actor, doc_id)
        today = now.date()
        decision = reminder_decision(offset, _receivable(session, doc), today, now)
        if not decision.send:
            return Prepared(doc.party, doc, skip=decision.reason, final=False)
        composed = compose_in_session(runtime, session, actor, [doc])
        company = session.get_one(t.Company, actor.company_id)
        name = get_type_row(session, actor, doc.doc_type).name
        docs = [document_context(doc, name)]
        context = template_context(company, doc.party, docs, composed.account)
        template = effective_template(runtime, session, actor, REMINDER, composed.language)
        rendered = runtime.templates.render(template.source, context, composed.locale)
        composed = replace(
            composed,
            subject=rendered.subject,
            body_html=rendered.body_html,
            body_text=rendered.body_text,
        )
        return Prepared(doc.party, doc, composed)

    return build


def _candidates(session: Session, actor: Actor, rule: t.ReminderRule, today: datetime) -> list[int]:
    first, last = due_window(today.date(), rule.offset_days)
    return list(
        session.scalars(
            select(t.Document.id)
            .where(
                t.Document.company_id == actor.company_id,
                t.Document.doc_type == rule.doc_type,
                t.Document.status.in_(["issued", "stamped"]),
                t.Document.due_date >= first,
                t.Document.due_date <= last,
            )
            .order_by(t.Document.id)
        )
    )


def evaluate_reminders(
    runtime: Runtime,
    actor: Actor,
    now: datetime | None = None,
    zone: ZoneInfo | None = None,
    *,
    dry_run: bool = False,
) -> list[PlanItem]:
    """Queue every reminder due at ``now`` (its date taken in ``zone``), each once ever.

    Returns the reminders sent (or, dry run, that would be), and those that failed
    or found no recipient; documents not due yet or paid are left out.
    """
    actor.require(Role.SENDER)
    local = (now or runtime.clock()).astimezone(zone or ZoneInfo("UTC"))
    with runtime.session() as session:
        rules = session.scalars(
            select(t.ReminderRule).where(
                t.ReminderRule.company_id == actor.company_id, t.ReminderRule.enabled.is_(True)
            )
        ).all()
        work = [
            (r.id, r.offset_days, d) for r in rules for d in _candidates(session, actor, r, local)
        ]
    items = []
    for rule_id, offset, doc_id in work:
        key = reminder_key(rule_id, doc_id)
        build = _builder(runtime, actor, offset, doc_id, local)
        item = queue_once(
            runtime, actor, key, Scope("reminder", None, rule_id), build, dry_run=dry_run
        )
        if not item.replayed and (item.status != "skipped" or item.reason == NO_RECIPIENT):
            items.append(item)
    return items
