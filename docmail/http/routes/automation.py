"""Automation: auto-send rules, runs, reminders, statements and scheduled jobs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from docmail.adapters.db import tables as t
from docmail.automation.cron import parse_zone
from docmail.http.auth import current_actor, runtime_of
from docmail.http.openapi import binary
from docmail.http.params import IdPath
from docmail.services import (
    automation,
    automation_reminders,
    automation_runs,
    automation_scheduler,
    automation_statements,
)
from docmail.services.automation_inputs import (
    CloseIn,
    DryRunIn,
    JobIn,
    JobPatch,
    ReminderRuleIn,
    RemindersRunIn,
    RuleIn,
    RulePatch,
    RunIn,
    StatementsIn,
)
from docmail.services.automation_queue import PlanItem
from docmail.services.runtime import Actor

router = APIRouter(prefix="/automation", tags=["automation"])
Json = dict[str, Any]


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def rule_json(row: t.AutomationRule) -> Json:
    return {
        "id": row.id,
        "doc_type": row.doc_type,
        "trigger": row.trigger,
        "enabled": row.enabled,
        "policy": row.policy,
        "delay_seconds": row.delay_seconds,
        "subject": row.subject,
        "body_html": row.body_html,
        "body_text": row.body_text,
    }


def item_json(item: PlanItem) -> Json:
    return {
        "kind": item.kind,
        "status": item.status,
        "party_code": item.party_code,
        "document_id": item.document_id,
        "document_number": item.document_number,
        "rule_id": item.rule_id,
        "to": list(item.to),
        "cc": list(item.cc),
        "subject": item.subject,
        "reason": item.reason,
        "message_id": item.message_id,
        "message_state": item.message_state,
        "replayed": item.replayed,
    }


def _items(items: list[PlanItem]) -> Json:
    return {"items": [item_json(i) for i in items]}


def report_json(report: automation_runs.RunReport, dry_run: bool = False) -> Json:
    body: Json = {
        "name": report.name,
        "state": report.state,
        "documents": report.documents,
        "created_at": _when(report.created_at),
        "closed_at": _when(report.closed_at),
        "sent": [item_json(i) for i in report.sent],
        "skipped": [item_json(i) for i in report.skipped],
        "failed": [item_json(i) for i in report.failed],
    }
    if dry_run:
        body["dry_run"] = True
        body["planned"] = [item_json(i) for i in report.planned]
    return body


def job_json(row: t.ScheduledJob) -> Json:
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "cron": row.cron,
        "timezone": row.timezone,
        "run_at": _when(row.run_at),
        "params": row.params,
        "enabled": row.enabled,
        "next_run_at": _when(row.next_run_at),
        "last_run_at": _when(row.last_run_at),
        "last_error": row.last_error,
    }


# ---------------------------------------------------------------- rules


@router.get("/rules")
def list_rules(request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return {"items": [rule_json(r) for r in automation.list_rules(runtime_of(request), actor)]}


@router.post("/rules", status_code=201)
def create_rule(body: RuleIn, request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return rule_json(automation.create_rule(runtime_of(request), actor, body))


@router.get("/rules/{rule_id}")
def get_rule(rule_id: IdPath, request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return rule_json(automation.get_rule(runtime_of(request), actor, rule_id))


@router.patch("/rules/{rule_id}")
def patch_rule(
    rule_id: IdPath, body: RulePatch, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    return rule_json(automation.update_rule(runtime_of(request), actor, rule_id, body))


@router.delete("/rules/{rule_id}", status_code=204)
def delete_rule(
    rule_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    automation.delete_rule(runtime_of(request), actor, rule_id)
    return Response(status_code=204)


@router.post("/rules/{rule_id}/dry-run")
def dry_run_rule(
    rule_id: IdPath, body: DryRunIn, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    """What the rule would send for these documents now; nothing is queued."""
    return _items(automation.dry_run_rule(runtime_of(request), actor, rule_id, body.document_ids))


# ---------------------------------------------------------------- runs


@router.post("/runs", status_code=201)
def open_run(body: RunIn, request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return report_json(automation_runs.open_run(runtime_of(request), actor, body))


@router.get("/runs/{name}")
def run_report(name: str, request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return report_json(automation_runs.run_report(runtime_of(request), actor, name))


@router.post("/runs/{name}/close")
async def close_run(
    name: str, request: Request, body: CloseIn | None = None, actor: Actor = Depends(current_actor)
) -> Json:
    """Decide and queue the run's emails (``dry_run``: only say what would be sent)."""
    dry = bool(body and body.dry_run)
    report = await run_in_threadpool(
        automation_runs.close_run, runtime_of(request), actor, name, dry_run=dry
    )
    return report_json(report, dry_run=dry)


# ---------------------------------------------------------------- reminders


@router.get("/reminders")
def list_reminders(request: Request, actor: Actor = Depends(current_actor)) -> Json:
    rows = automation_reminders.list_reminder_rules(runtime_of(request), actor)
    return {
        "items": [
            {"id": r.id, "doc_type": r.doc_type, "offset_days": r.offset_days, "enabled": r.enabled}
            for r in rows
        ]
    }


@router.post("/reminders", status_code=201)
def create_reminder(
    body: ReminderRuleIn, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    row = automation_reminders.create_reminder_rule(runtime_of(request), actor, body)
    return {
        "id": row.id,
        "doc_type": row.doc_type,
        "offset_days": row.offset_days,
        "enabled": row.enabled,
    }


@router.delete("/reminders/{rule_id}", status_code=204)
def delete_reminder(
    rule_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    automation_reminders.delete_reminder_rule(runtime_of(request), actor, rule_id)
    return Response(status_code=204)


@router.post("/reminders/run")
async def run_reminders(
    body: RemindersRunIn, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    """Queue the reminders due at ``now`` (default: the server's clock); each goes out once."""
    items = await run_in_threadpool(
        automation_reminders.evaluate_reminders,
        runtime_of(request),
        actor,
        body.now,
        parse_zone(body.timezone),
        dry_run=body.dry_run,
    )
    return {**_items(items), "dry_run": body.dry_run}


# ---------------------------------------------------------------- statements


@router.post("/statements/send")
async def send_statements(
    body: StatementsIn, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    """Email each party's statement as of a date (once per party and date)."""
    items = await run_in_threadpool(
        automation_statements.send_statements,
        runtime_of(request),
        actor,
        body.as_of,
        body.party_codes,
        dry_run=body.dry_run,
    )
    return {**_items(items), "dry_run": body.dry_run}


@router.get(
    "/statements/{party_code}.pdf",
    response_class=Response,
    responses=binary("application/pdf", "The statement as a PDF"),
)
async def statement_pdf(
    party_code: str, as_of: date, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    _, _, pdf = await run_in_threadpool(
        automation_statements.render_statement, runtime_of(request), actor, party_code, as_of
    )
    return Response(pdf, media_type="application/pdf")


@router.get("/statements/{party_code}")
def statement(
    party_code: str, as_of: date, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    result = automation_statements.statement_of(runtime_of(request), actor, party_code, as_of)
    return {
        "party_code": result.party_code,
        "as_of": result.as_of.isoformat(),
        "sections": [
            {
                "currency": s.currency,
                "balance": str(s.balance),
                "buckets": {k: str(v) for k, v in s.buckets.items()},
                "items": [
                    {
                        "type": i.doc_type,
                        "number": i.number,
                        "due_date": i.due_date.isoformat() if i.due_date else None,
                        "days_overdue": i.days_overdue,
                        "bucket": i.bucket,
                        "amount": str(i.amount),
                    }
                    for i in s.items
                ],
            }
            for s in result.sections
        ],
    }


# ---------------------------------------------------------------- jobs


@router.get("/jobs")
def list_jobs(request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return {
        "items": [job_json(j) for j in automation_scheduler.list_jobs(runtime_of(request), actor)]
    }


@router.post("/jobs", status_code=201)
def create_job(body: JobIn, request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return job_json(automation_scheduler.create_job(runtime_of(request), actor, body))


@router.patch("/jobs/{job_id}")
def patch_job(
    job_id: IdPath, body: JobPatch, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    return job_json(automation_scheduler.update_job(runtime_of(request), actor, job_id, body))


@router.delete("/jobs/{job_id}", status_code=204)
def delete_job(job_id: IdPath, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    automation_scheduler.delete_job(runtime_of(request), actor, job_id)
    return Response(status_code=204)


@router.get("/jobs/{job_id}/executions")
def job_executions(job_id: IdPath, request: Request, actor: Actor = Depends(current_actor)) -> Json:
    rows = automation_scheduler.job_executions(runtime_of(request), actor, job_id)
    return {
        "items": [
            {
                "scheduled_for": _when(r.scheduled_for),
                "worker": r.worker,
                "started_at": _when(r.started_at),
                "finished_at": _when(r.finished_at),
                "outcome": r.outcome,
                "detail": r.detail,
            }
            for r in rows
        ]
    }


@router.post("/jobs/{job_id}/dry-run")
async def dry_run_job(
    job_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    """What the job's next occurrence would send; nothing is queued."""
    return await run_in_threadpool(
        automation_scheduler.dry_run_job, runtime_of(request), actor, job_id
    )
