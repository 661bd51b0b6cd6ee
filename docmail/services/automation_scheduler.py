"""Scheduled jobs: one-off sends and recurring (cron) statements and reminders.

Jobs live in the database and are claimed like outbox messages: in one write
transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite) a worker takes a due job, inserts the execution record (unique per job
and scheduled time), advances ``next_run_at`` and takes a lease. So two workers
never run the same occurrence, and a job never overlaps itself. A recurring job
that was missed for a while runs once, then continues from now.

``run_due_jobs`` is the worker's duty: a cheap read-only look first (no write
lock when nothing is due), then at most one job and one quiet run per round.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from docmail.adapters.db import tables as t
from docmail.adapters.db.engine import write_transaction
from docmail.automation.cron import next_after, parse_cron, parse_zone
from docmail.automation.policy import job_key
from docmail.errors import Conflict, DocmailError, NotFound
from docmail.services.automation_inputs import JobIn, JobPatch
from docmail.services.automation_queue import PlanItem
from docmail.services.automation_reminders import evaluate_reminders
from docmail.services.automation_runs import close_quiet_runs
from docmail.services.automation_statements import send_statements
from docmail.services.batches import send_batch
from docmail.services.inputs import BatchIn
from docmail.services.runtime import Actor, Role, Runtime

log = logging.getLogger("docmail.scheduler")
JOB_LEASE = timedelta(minutes=10)


def first_run(job: t.ScheduledJob | JobIn, now: datetime) -> datetime | None:
    """When a job runs next: its ``run_at``, or the cron's next time after ``now``."""
    if job.cron is None:
        return job.run_at
    return next_after(parse_cron(job.cron), parse_zone(job.timezone), now)


# ---------------------------------------------------------------- CRUD


def _job_row(session: Any, actor: Actor, job_id: int) -> t.ScheduledJob:
    row = session.get(t.ScheduledJob, job_id)
    if row is None or row.company_id != actor.company_id:
        raise NotFound(f"job {job_id} not found", field="job_id", value=job_id)
    return row


def _check_params(job: JobIn | t.ScheduledJob) -> None:
    if job.kind == "send":
        try:
            BatchIn.model_validate(
                {
                    "document_ids": job.params.get("document_ids"),
                    "mode": job.params.get("mode", "per_document"),
                }
            )
        except ValueError as exc:
            raise Conflict(f"params: {exc}", field="params") from None


def create_job(runtime: Runtime, actor: Actor, data: JobIn) -> t.ScheduledJob:
    actor.require(Role.ADMIN)
    _check_params(data)
    row = t.ScheduledJob(
        company_id=actor.company_id,
        **data.model_dump(),
        next_run_at=first_run(data, runtime.clock()) if data.enabled else None,
    )
    try:
        with runtime.session() as session:
            session.add(row)
            session.flush()
            return row
    except IntegrityError:
        raise Conflict(f"a job named {data.name!r} exists already", field="name") from None


def update_job(runtime: Runtime, actor: Actor, job_id: int, patch: JobPatch) -> t.ScheduledJob:
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        row = _job_row(session, actor, job_id)
        for key, value in patch.model_dump(exclude_unset=True).items():
            setattr(row, key, value)
        _check_params(row)
        row.next_run_at = first_run(row, runtime.clock()) if row.enabled else None
        session.flush()
        return row


def delete_job(runtime: Runtime, actor: Actor, job_id: int) -> None:
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        session.delete(_job_row(session, actor, job_id))


def list_jobs(runtime: Runtime, actor: Actor) -> list[t.ScheduledJob]:
    with runtime.session() as session:
        return list(
            session.scalars(
                select(t.ScheduledJob)
                .where(t.ScheduledJob.company_id == actor.company_id)
                .order_by(t.ScheduledJob.id)
            )
        )


def job_executions(runtime: Runtime, actor: Actor, job_id: int) -> list[t.JobExecution]:
    with runtime.session() as session:
        _job_row(session, actor, job_id)
        return list(
            session.scalars(
                select(t.JobExecution)
                .where(t.JobExecution.job_id == job_id)
                .order_by(t.JobExecution.scheduled_for.desc())
                .limit(100)
            )
        )


# ---------------------------------------------------------------- claiming


@dataclass(frozen=True)
class JobClaim:
    job_id: int
    company_id: int
    kind: str
    timezone: str
    params: dict[str, Any]
    scheduled_for: datetime
    execution_id: int


def _due(now: datetime) -> Any:
    free = or_(t.ScheduledJob.locked_until.is_(None), t.ScheduledJob.locked_until < now)
    return and_(t.ScheduledJob.enabled.is_(True), t.ScheduledJob.next_run_at <= now, free)


def _anything_due(engine: Engine, now: datetime) -> bool:
    """A read-only look (no write lock on SQLite) for due jobs or runs to close."""
    runs = or_(
        and_(t.AutomationRun.state == "open", t.AutomationRun.closes_at <= now),
        and_(t.AutomationRun.state == "closing", t.AutomationRun.locked_until < now),
    )
    with engine.connect() as conn:
        conn.info["sqlite_begin_mode"] = "DEFERRED"
        found = conn.execute(
            select(exists().where(_due(now)).label("j"), exists().where(runs).label("r"))
        ).first()
        conn.rollback()
    return bool(found and (found[0] or found[1]))


def _advance(row: Any, now: datetime) -> datetime | None:
    if row.cron is None:
        return None  # one-off: done once claimed
    return next_after(parse_cron(row.cron), parse_zone(row.timezone), now)


def claim_job(engine: Engine, worker: str, now: datetime) -> JobClaim | None:
    """Take one due job: record its execution and advance it, in the claiming transaction."""
    with write_transaction(engine) as conn:
        query = (
            select(t.ScheduledJob).where(_due(now)).order_by(t.ScheduledJob.next_run_at).limit(1)
        )
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = conn.execute(query).first()
        if row is None:
            return None
        execution_id = conn.execute(
            insert(t.JobExecution)
            .values(
                job_id=row.id,
                scheduled_for=row.next_run_at,
                worker=worker,
                started_at=now,
                detail={},
            )
            .returning(t.JobExecution.id)
        ).scalar_one()
        next_run = _advance(row, now)
        conn.execute(
            update(t.ScheduledJob)
            .where(t.ScheduledJob.id == row.id)
            .values(
                next_run_at=next_run,
                enabled=next_run is not None,
                locked_by=worker,
                locked_until=now + JOB_LEASE,
                last_run_at=now,
            )
        )
        return JobClaim(
            row.id,
            row.company_id,
            row.kind,
            row.timezone,
            dict(row.params or {}),
            row.next_run_at,
            execution_id,
        )


def _finish(
    runtime: Runtime, claim: JobClaim, worker: str, outcome: str, detail: dict[str, Any]
) -> None:
    now = runtime.clock()
    with runtime.session() as session:
        session.execute(
            update(t.JobExecution)
            .where(t.JobExecution.id == claim.execution_id)
            .values(finished_at=now, outcome=outcome, detail=detail)
        )
        session.execute(
            update(t.ScheduledJob)
            .where(t.ScheduledJob.id == claim.job_id, t.ScheduledJob.locked_by == worker)
            .values(locked_until=None, last_error=detail.get("error"))
        )


# ---------------------------------------------------------------- running


def _summary(items: list[PlanItem]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.status] = counts.get(item.status, 0) + 1
    return {"counts": counts, "message_ids": [i.message_id for i in items if i.message_id]}


def execute(runtime: Runtime, claim: JobClaim, *, dry_run: bool = False) -> dict[str, Any]:
    """Run one occurrence of a job; every email it queues has a once-ever key."""
    actor = Actor(claim.company_id, Role.SENDER, label=f"job:{claim.job_id}", system=True)
    zone = parse_zone(claim.timezone)
    if claim.kind == "reminders":
        return _summary(
            evaluate_reminders(runtime, actor, claim.scheduled_for, zone, dry_run=dry_run)
        )
    if claim.kind == "statements":
        as_of = claim.scheduled_for.astimezone(zone).date()
        codes = claim.params.get("party_codes")
        return _summary(send_statements(runtime, actor, as_of, codes, dry_run=dry_run))
    if dry_run:
        return {"document_ids": claim.params["document_ids"]}
    result = send_batch(
        runtime,
        actor,
        BatchIn(
            document_ids=claim.params["document_ids"],
            mode=claim.params.get("mode", "per_document"),
            idempotency_key=job_key(claim.job_id, claim.scheduled_for),
        ),
    )
    return {"batch_id": result.batch_id, "queued": result.queued, "failed": result.failed}


def dry_run_job(
    runtime: Runtime, actor: Actor, job_id: int, when: datetime | None = None
) -> dict[str, Any]:
    """What the job's next occurrence (or one at ``when``) would send, queueing nothing."""
    with runtime.session() as session:
        row = _job_row(session, actor, job_id)
        scheduled = when or row.next_run_at or runtime.clock()
        claim = JobClaim(
            row.id, row.company_id, row.kind, row.timezone, dict(row.params), scheduled, 0
        )
    return execute(runtime, claim, dry_run=True)


def run_due_jobs(runtime: Runtime, worker: str) -> int:
    """Worker duty: run at most one due job and close at most one quiet run; 0 when idle."""
    now = runtime.clock()
    if not _anything_due(runtime.engine, now):
        return 0
    done = close_quiet_runs(runtime, worker)
    claim = claim_job(runtime.engine, worker, now)
    if claim is None:
        return done
    try:
        detail = execute(runtime, claim)
        _finish(runtime, claim, worker, "done", detail)
    except DocmailError as exc:
        _finish(runtime, claim, worker, "failed", {"error": exc.message})
    except Exception as exc:
        log.exception("job %s failed", claim.job_id)
        _finish(runtime, claim, worker, "failed", {"error": f"{type(exc).__name__}: {exc}"})
    return done + 1
