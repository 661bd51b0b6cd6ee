"""Auto-send rules over runs: the right parties get exactly the right emails, once."""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from docmail.adapters.db import tables as t
from docmail.services import automation
from docmail.services.accounts import create_account
from docmail.services.automation_inputs import RuleIn
from docmail.services.automation_runs import close_run
from docmail.services.companies import create_api_token, create_company
from docmail.services.documents import create_document
from docmail.services.inputs import AccountIn, DocumentIn, PartyIn
from docmail.services.parties import create_party
from docmail.services.runtime import Actor, Role, Runtime
from docmail.worker.events import process_due_events

RUN = "rent-2026-11"


@dataclass(frozen=True)
class PartySpec:
    code: str
    auto_send: bool
    only_multiple: bool
    reachable: bool  # has an address for invoices


def company(runtime: Runtime) -> Actor:
    """A company with a default SMTP account (never contacted: emails are only queued)."""
    created = create_company(runtime, "Rentas SA", country="MX")
    actor = Actor(created.id, Role.ADMIN, label="tests")
    create_account(
        runtime,
        actor,
        AccountIn(
            name="local",
            host="127.0.0.1",
            port=2525,
            security="none",
            from_email="cobranza@rentas.mx",
            is_default=True,
        ),
    )
    return actor


def add_party(runtime: Runtime, actor: Actor, spec: PartySpec) -> None:
    contacts = [{"name": "AP", "email": f"ap@{spec.code.lower()}.mx", "roles": ["finance"]}]
    create_party(
        runtime,
        actor,
        PartyIn.model_validate(
            {
                "code": spec.code,
                "name": f"Cliente {spec.code}",
                "auto_send": spec.auto_send,
                "auto_send_only_multiple": spec.only_multiple,
                "contacts": contacts if spec.reachable else [],
            }
        ),
    )


def invoice(runtime: Runtime, actor: Actor, number: str, party: str, **extra: object) -> int:
    data = DocumentIn.model_validate(
        {
            "type": "invoice",
            "number": number,
            "party_code": party,
            "total": "100",
            "currency": "MXN",
            **extra,
        }
    )
    doc_id = create_document(runtime, actor, data).document.id
    settle(runtime)
    return doc_id


def settle(runtime: Runtime) -> None:
    """What a worker does with the documents' automation events (docmail.worker.events)."""
    while process_due_events(runtime, "tests"):
        pass


def queued_document_ids(runtime: Runtime) -> Counter[int]:
    """How many emails were queued per document (any state)."""
    with runtime.session() as session:
        return Counter(session.scalars(select(t.MessageDocument.document_id)))


def _generate(seed: int) -> tuple[list[PartySpec], list[str]]:
    rng = random.Random(seed)
    parties = [
        PartySpec(
            f"P{i:02d}",
            auto_send=i % 5 != 4,
            only_multiple=i % 3 == 1,
            reachable=i != 7,
        )
        for i in range(20)
    ]
    # Every party but the last two gets at least one invoice; the rest are spread at random.
    owners = [p.code for p in parties[:18]] + [rng.choice(parties).code for _ in range(32)]
    rng.shuffle(owners)
    return parties, owners


def _expected(parties: list[PartySpec], owners: list[str], policy: str) -> set[int]:
    """Indexes of the invoices that must be emailed, worked out from the data alone."""
    specs = {p.code: p for p in parties}
    count = Counter(owners)
    chosen = set()
    for index, code in enumerate(owners):
        spec = specs[code]
        several = policy == "only_multiple" or spec.only_multiple
        if spec.auto_send and spec.reachable and not (several and count[code] < 2):
            chosen.add(index)
    return chosen


@pytest.mark.parametrize("policy", ["all", "only_multiple"])
def test_a_run_of_fifty_invoices_sends_exactly_the_expected_emails(
    runtime: Runtime, policy: str
) -> None:
    actor = company(runtime)
    parties, owners = _generate(seed=11)
    for spec in parties:
        add_party(runtime, actor, spec)
    automation.create_rule(runtime, actor, RuleIn(doc_type="invoice", policy=policy))
    ids = [invoice(runtime, actor, f"R-{i}", code, run=RUN) for i, code in enumerate(owners)]
    assert queued_document_ids(runtime) == Counter()  # the run is open: nothing decided yet

    plan = close_run(runtime, actor, RUN, dry_run=True).planned
    assert queued_document_ids(runtime) == Counter()
    report = close_run(runtime, actor, RUN)

    expected = {ids[i] for i in _expected(parties, owners, policy)}
    assert {i.document_id for i in report.sent} == expected
    assert {i.document_id for i in plan if i.status == "would_send"} == expected
    assert queued_document_ids(runtime) == Counter(dict.fromkeys(expected, 1))
    assert report.state == "closed" and report.documents == 50
    assert len(report.sent) + len(report.skipped) == 50
    assert all(i.message_id for i in report.sent)
    reasons = {i.reason for i in report.skipped}
    assert {"party off", "no recipient"} <= reasons and "only one document" in reasons
    again = close_run(runtime, actor, RUN)  # closing twice changes nothing
    assert {i.message_id for i in again.sent} == {i.message_id for i in report.sent}
    assert sum(queued_document_ids(runtime).values()) == len(expected)


def test_a_document_without_a_run_is_decided_at_once_as_a_run_of_one(runtime: Runtime) -> None:
    actor = company(runtime)
    add_party(runtime, actor, PartySpec("A", True, False, True))
    add_party(runtime, actor, PartySpec("B", True, True, True))
    automation.create_rule(runtime, actor, RuleIn(doc_type="invoice"))
    a = invoice(runtime, actor, "A-1", "A")
    b = invoice(runtime, actor, "B-1", "B")
    assert queued_document_ids(runtime) == Counter({a: 1})
    with runtime.session() as session:
        reason = session.scalar(
            select(t.AutomationOutcome.reason).where(t.AutomationOutcome.document_id == b)
        )
    assert reason == "only one document"


def test_a_rule_delay_holds_the_email_until_created_at_plus_delay(runtime: Runtime) -> None:
    actor = company(runtime)
    add_party(runtime, actor, PartySpec("A", True, False, True))
    automation.create_rule(runtime, actor, RuleIn(doc_type="invoice", delay_seconds=3600))
    doc_id = invoice(runtime, actor, "A-1", "A")
    with runtime.session() as session:
        message = session.scalars(select(t.Message)).one()
        created = session.get_one(t.Document, doc_id).created_at
    assert (message.next_attempt_at - created).total_seconds() == pytest.approx(3600, abs=1)


def test_a_document_stamped_later_triggers_its_stamped_rule_once(runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    from docmail.http.app import create_app

    actor = company(runtime)
    add_party(runtime, actor, PartySpec("A", True, False, True))
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    client.headers["Authorization"] = "Bearer " + create_api_token(
        runtime, actor.company_id, "t", Role.ADMIN
    )
    created = client.post(
        "/api/v1/automation/rules",
        json={
            "doc_type": "invoice",
            "trigger": "stamped",
            "subject": "Timbrada {{ document.number }}",
        },
    )
    assert created.status_code == 201, created.text
    doc_id = invoice(runtime, actor, "S-1", "A")
    assert queued_document_ids(runtime) == Counter()
    for _ in range(2):
        answer = client.patch(f"/api/v1/documents/{doc_id}", json={"status": "stamped"})
        assert answer.status_code == 200, answer.text
    settle(runtime)
    assert queued_document_ids(runtime) == Counter({doc_id: 1})
    with runtime.session() as session:
        assert session.scalars(select(t.Message.subject)).one() == "Timbrada S-1"

    # The same event evaluated by two workers at once still makes one email.
    other = invoice(runtime, actor, "S-2", "A", status="issued")
    with runtime.session() as session:
        session.get_one(t.Document, other).status = "stamped"
    barrier = threading.Barrier(2)

    def evaluate() -> None:
        barrier.wait()
        automation.evaluate_document(runtime, actor, other, "status:stamped")

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert queued_document_ids(runtime)[other] == 1


def test_rules_are_validated_and_scoped_to_their_company(runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    from docmail.http.app import create_app

    first, second = company(runtime), company(runtime)
    app = create_app(runtime)
    clients = []
    for actor in (first, second):
        client = TestClient(app, raise_server_exceptions=False)
        token = create_api_token(runtime, actor.company_id, "t", Role.ADMIN)
        client.headers["Authorization"] = f"Bearer {token}"
        clients.append(client)
    bad = clients[0].post("/api/v1/automation/rules", json={"doc_type": "invoice", "policy": "x"})
    assert bad.status_code == 422 and "policy" in (bad.json()["field"] or "")
    unknown = clients[0].post("/api/v1/automation/rules", json={"doc_type": "nope"})
    assert unknown.status_code in (404, 422)
    rule = clients[0].post("/api/v1/automation/rules", json={"doc_type": "invoice"}).json()
    twin = clients[0].post("/api/v1/automation/rules", json={"doc_type": "invoice"})
    assert twin.status_code == 409
    assert clients[1].get(f"/api/v1/automation/rules/{rule['id']}").status_code == 404
    assert clients[1].get("/api/v1/automation/rules").json()["items"] == []
    patched = clients[0].patch(f"/api/v1/automation/rules/{rule['id']}", json={"enabled": False})
    assert patched.json()["enabled"] is False
    with runtime.session() as session:
        assert session.scalar(select(func.count()).select_from(t.AutomationRule)) == 1
