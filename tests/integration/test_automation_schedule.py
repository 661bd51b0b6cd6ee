"""Scheduled jobs, reminders and statements: once per occurrence, however many workers."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from pypdf import PdfReader
from sqlalchemy import func, select, update

from docmail.adapters.db import tables as t
from docmail.services.automation_inputs import JobIn, ReminderRuleIn
from docmail.services.automation_reminders import create_reminder_rule, evaluate_reminders
from docmail.services.automation_scheduler import create_job, run_due_jobs
from docmail.services.automation_statements import render_statement, send_statements
from docmail.services.runtime import Runtime
from tests.integration.test_automation_runs import (
    PartySpec,
    add_party,
    company,
    invoice,
    queued_document_ids,
)

NOW = datetime(2026, 11, 10, 14, 0, tzinfo=UTC)  # 08:00 in Mexico City


def _together(count: int, work: Callable[[int], None]) -> None:
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        work(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _count(runtime: Runtime, table: type[t.Base]) -> int:
    with runtime.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def _reminder_world(runtime: Runtime) -> tuple[object, set[int]]:
    actor = company(runtime)
    add_party(runtime, actor, PartySpec("A", True, False, True))
    create_reminder_rule(runtime, actor, ReminderRuleIn(offset_days=-3))
    create_reminder_rule(runtime, actor, ReminderRuleIn(offset_days=7))
    due_soon = invoice(runtime, actor, "D-1", "A", due_date="2026-11-13")
    overdue = invoice(runtime, actor, "D-2", "A", due_date="2026-11-03")
    invoice(runtime, actor, "D-3", "A", due_date="2026-11-13", data={"paid": True})
    invoice(runtime, actor, "D-4", "A", due_date="2026-11-13", status="cancelled")
    invoice(runtime, actor, "D-5", "A", due_date="2026-12-30")
    return actor, {due_soon, overdue}


def test_two_workers_never_run_a_recurring_job_or_a_reminder_twice(runtime: Runtime) -> None:
    actor, expected = _reminder_world(runtime)
    runtime.clock = lambda: NOW
    job = create_job(
        runtime,
        actor,  # type: ignore[arg-type]
        JobIn(name="daily", kind="reminders", cron="0 8 * * *", timezone="America/Mexico_City"),
    )
    assert job.next_run_at == datetime(2026, 11, 11, 14, 0, tzinfo=UTC)
    with runtime.session() as session:  # as if yesterday's run were still due
        session.execute(update(t.ScheduledJob).values(next_run_at=NOW - timedelta(minutes=1)))

    def worker(index: int) -> None:
        for _ in range(5):
            run_due_jobs(runtime, f"w{index}")
            evaluate_reminders(runtime, actor, NOW)  # type: ignore[arg-type]

    _together(2, worker)
    assert _count(runtime, t.JobExecution) == 1
    assert set(queued_document_ids(runtime)) == expected
    assert sum(queued_document_ids(runtime).values()) == 2
    with runtime.session() as session:
        row = session.scalars(select(t.ScheduledJob)).one()
        execution = session.scalars(select(t.JobExecution)).one()
    assert row.next_run_at == datetime(2026, 11, 11, 14, 0, tzinfo=UTC) and row.locked_until is None
    assert execution.outcome == "done"

    runtime.clock = lambda: NOW + timedelta(days=1, minutes=1)  # the next occurrence: once more
    _together(2, lambda i: [run_due_jobs(runtime, f"w{i}") for _ in range(3)] and None)
    assert _count(runtime, t.JobExecution) == 2
    assert sum(queued_document_ids(runtime).values()) == 2  # reminders never repeat


def test_a_one_off_send_job_runs_once_at_its_time(runtime: Runtime) -> None:
    actor = company(runtime)
    add_party(runtime, actor, PartySpec("A", True, False, True))
    doc = invoice(runtime, actor, "O-1", "A")
    runtime.clock = lambda: NOW
    create_job(
        runtime,
        actor,
        JobIn(
            name="later",
            kind="send",
            run_at=NOW + timedelta(hours=1),
            params={"document_ids": [doc]},
        ),
    )
    assert run_due_jobs(runtime, "w") == 0 and queued_document_ids(runtime) == {}
    runtime.clock = lambda: NOW + timedelta(hours=1)
    _together(2, lambda i: [run_due_jobs(runtime, f"w{i}") for _ in range(3)] and None)
    assert queued_document_ids(runtime) == {doc: 1}
    assert _count(runtime, t.JobExecution) == 1


def test_reminder_dry_run_queues_nothing_and_matches_the_real_run(runtime: Runtime) -> None:
    actor, expected = _reminder_world(runtime)
    plan = evaluate_reminders(runtime, actor, NOW, dry_run=True)  # type: ignore[arg-type]
    assert queued_document_ids(runtime) == {}
    real = evaluate_reminders(runtime, actor, NOW)  # type: ignore[arg-type]
    assert {(i.document_id, i.to, i.subject) for i in plan} == {
        (i.document_id, i.to, i.subject) for i in real
    }
    assert {i.document_id for i in real} == expected
    assert all(i.subject.startswith("Recordatorio de pago") for i in real)


def test_no_reminder_right_after_the_documents_own_email(runtime: Runtime) -> None:
    actor, expected = _reminder_world(runtime)
    first = min(expected)
    with runtime.session() as session:
        message = t.Message(
            company_id=actor.company_id,  # type: ignore[attr-defined]
            account_id=session.scalars(select(t.MailAccount.id)).one(),
            state="sent",
            from_email="a@b.mx",
            subject="x",
            message_id_header="<x@b.mx>",
            date_header=NOW,
            sent_at=NOW - timedelta(hours=2),
        )
        message.document_links = [t.MessageDocument(document_id=first)]
        session.add(message)
    sent = evaluate_reminders(runtime, actor, NOW)  # type: ignore[arg-type]
    assert {i.document_id for i in sent} == expected - {first}


def _pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_a_statement_pdf_shows_the_right_balances_and_is_sent_once(runtime: Runtime) -> None:
    actor = company(runtime)
    add_party(runtime, actor, PartySpec("A", True, False, True))
    as_of = date(2026, 12, 31)
    rows = [  # (type, due, total, data)
        ("invoice", date(2026, 12, 20), Decimal("1000.00"), {}),
        ("invoice", date(2026, 11, 10), Decimal("2500.50"), {}),
        ("invoice", date(2026, 10, 1), Decimal("700.00"), {"balance": "300.25"}),
        ("invoice", date(2026, 6, 1), Decimal("4000.00"), {}),
        ("invoice", date(2026, 6, 1), Decimal("9999.00"), {"paid": True}),
        ("credit_note", date(2026, 12, 15), Decimal("150.00"), {}),
        ("payment", date(2026, 11, 20), Decimal("500.00"), {}),
    ]
    for index, (kind, due, total, data) in enumerate(rows):
        from docmail.services.documents import create_document
        from docmail.services.inputs import DocumentIn

        create_document(
            runtime,
            actor,
            DocumentIn.model_validate(
                {  # type: ignore[arg-type]
                    "type": kind,
                    "number": f"S-{index}",
                    "party_code": "A",
                    "total": str(total),
                    "currency": "MXN",
                    "issue_date": str(due - timedelta(days=30)),
                    "due_date": str(due),
                    "data": data,
                }
            ),
        )
    # Worked out by hand, days past due on 31 Dec: invoice 11 and credit note 16 -> 0-30;
    # invoice 51 and payment 41 -> 31-60; balance 300.25 (91) and invoice (213) -> 90+.
    expected = ["850.00", "2,000.50", "0.00", "4,300.25", "7,150.75"]
    _, _, pdf = render_statement(runtime, actor, "A", as_of)  # type: ignore[arg-type]
    assert pdf is not None
    text = _pdf_text(pdf)
    numbers = re.findall(r"-?[\d,]+\.\d\d", text.split("0-30")[-1])
    assert numbers[:5] == expected, text

    plan = send_statements(runtime, actor, as_of, dry_run=True)  # type: ignore[arg-type]
    assert queued_document_ids(runtime) == {}
    sent = send_statements(runtime, actor, as_of)  # type: ignore[arg-type]
    again = send_statements(runtime, actor, as_of)  # type: ignore[arg-type]
    assert [(i.party_code, i.to, i.subject) for i in plan] == [
        (i.party_code, i.to, i.subject) for i in sent
    ]
    assert len(sent) == 1 and again[0].replayed and again[0].message_id == sent[0].message_id
    with runtime.session() as session:
        message = session.get_one(t.Message, sent[0].message_id)
        attachment = message.attachments[0]
        stored = session.get_one(t.Blob, attachment.blob_sha256).data
    assert attachment.content_type == "application/pdf"
    assert expected[-1] in _pdf_text(stored)
