"""Automatic emails are never lost between a document's commit and its evaluation.

A document's creation (or change of state) writes an automation event in the same
transaction; workers consume the events. Before, automation ran in the request
thread after the commit: a crash in between lost the email, and an ERP retrying
its unanswered request got the stored document back and triggered nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from docmail.adapters.db import tables as t
from docmail.services import automation
from docmail.services.automation_inputs import RuleIn
from docmail.services.documents import create_document
from docmail.services.inputs import DocumentIn
from docmail.services.runtime import Actor, Runtime
from docmail.worker import events
from docmail.worker.events import process_due_events
from docmail.worker.worker import Worker
from tests.integration.test_automation_runs import PartySpec, add_party, company


def _invoice(number: str, party: str = "A") -> DocumentIn:
    return DocumentIn.model_validate(
        {
            "type": "invoice",
            "number": number,
            "party_code": party,
            "total": "100",
            "currency": "MXN",
        }
    )


def _emails_per_document(runtime: Runtime) -> Counter[int]:
    with runtime.session() as session:
        return Counter(session.scalars(select(t.MessageDocument.document_id)))


def _event_states(runtime: Runtime) -> list[tuple[str, int]]:
    with runtime.session() as session:
        rows = session.execute(select(t.AutomationEvent.state, t.AutomationEvent.attempts))
        return sorted((state, attempts) for state, attempts in rows)


@pytest.fixture
def rules(runtime: Runtime) -> Actor:
    actor = company(runtime)
    add_party(runtime, actor, PartySpec("A", True, False, True))
    automation.create_rule(runtime, actor, RuleIn(doc_type="invoice"))
    return actor


def test_the_event_is_committed_with_the_document_and_evaluated_by_a_later_worker(
    runtime: Runtime, rules: Actor
) -> None:
    doc = create_document(runtime, rules, _invoice("F-1")).document
    assert _emails_per_document(runtime) == Counter()  # nothing evaluated in the request
    assert _event_states(runtime) == [("pending", 0)]

    # The process that created it is gone; a worker started later still finds the event.
    Worker(runtime, "after-restart").run_once()

    assert _emails_per_document(runtime) == Counter({doc.id: 1})
    assert _event_states(runtime) == [("done", 1)]


def test_a_retried_creation_of_the_same_document_never_sends_twice(
    runtime: Runtime, rules: Actor
) -> None:
    first = create_document(runtime, rules, _invoice("F-1"))
    again = create_document(runtime, rules, _invoice("F-1"))  # the ERP's retry
    for _ in range(2):
        process_due_events(runtime, "w")

    assert first.created and not again.created
    assert _emails_per_document(runtime) == Counter({first.document.id: 1})
    assert len(_event_states(runtime)) == 1


def test_a_document_no_rule_concerns_writes_no_event(runtime: Runtime) -> None:
    actor = company(runtime)
    add_party(runtime, actor, PartySpec("A", True, False, True))

    create_document(runtime, actor, _invoice("F-1"))

    assert _event_states(runtime) == []


def test_an_evaluation_that_fails_stays_with_its_event_and_the_others_go_on(
    runtime: Runtime,
    rules: Actor,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = create_document(runtime, rules, _invoice("F-BAD")).document.id
    good = create_document(runtime, rules, _invoice("F-OK")).document.id
    real = automation.evaluate_document

    def evaluate(runtime: Runtime, actor: Actor, doc_id: int, event: str) -> object:
        if doc_id == bad:
            raise AttributeError("'str' object has no attribute 'get'")
        return real(runtime, actor, doc_id, event)

    monkeypatch.setattr(automation, "evaluate_document", evaluate)
    clock = [runtime.clock()]
    runtime.clock = lambda: clock[0]
    with caplog.at_level(logging.WARNING, logger="docmail.worker.events"):
        for _ in range(events.MAX_ATTEMPTS + 2):
            process_due_events(runtime, "w")
            clock[0] += timedelta(minutes=1)  # past every back-off

    assert _emails_per_document(runtime) == Counter({good: 1})
    with runtime.session() as session:
        failed = session.scalars(
            select(t.AutomationEvent).where(t.AutomationEvent.document_id == bad)
        ).one()
    assert (failed.state, failed.attempts) == ("failed", events.MAX_ATTEMPTS)
    assert failed.last_error == "AttributeError: 'str' object has no attribute 'get'"
    lines = [r for r in caplog.records if f"document {bad}" in r.getMessage()]
    assert len(lines) == events.MAX_ATTEMPTS and all(r.exc_info is None for r in lines)


def test_a_state_change_leaves_an_event_in_its_own_transaction(runtime: Runtime) -> None:
    from docmail.services.documents import update_document
    from docmail.services.inputs import DocumentPatch

    actor = company(runtime)
    add_party(runtime, actor, PartySpec("A", True, False, True))
    automation.create_rule(runtime, actor, RuleIn(doc_type="invoice", trigger="stamped"))
    doc = create_document(runtime, actor, _invoice("S-1")).document
    process_due_events(runtime, "w")
    assert _emails_per_document(runtime) == Counter()

    update_document(runtime, actor, doc.id, DocumentPatch(status="stamped"))
    process_due_events(runtime, "w")

    assert _emails_per_document(runtime) == Counter({doc.id: 1})
