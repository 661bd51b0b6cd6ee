"""A batch with documents that cannot be composed stops no one: not its own good documents,
not another company's mail, not the worker's other duties; and it is logged once per item."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from docmail.adapters.db import batch_store
from docmail.adapters.db import tables as t
from docmail.services import batches
from docmail.services.accounts import create_account
from docmail.services.batches import batch_problems, get_batch, start_batch
from docmail.services.documents import create_document
from docmail.services.inputs import AccountIn, BatchIn, DocumentIn, PartyIn
from docmail.services.parties import create_party
from docmail.services.runtime import Actor, Role, Runtime
from docmail.worker.worker import Worker, start_in_thread
from tests.support.app import make_tenant
from tests.support.outbox import company_with_account, queue_invoices
from tests.support.smtp_server import SmtpTestServer

GOOD = 505  # more than INLINE_LIMIT with the bad ones: the workers expand the batch
XML = base64.b64encode(b"<AttachedDocument/>").decode()
PDF = base64.b64encode(b"%PDF-1.4 factura").decode()


def _colombian_company(runtime: Runtime, port: int) -> Any:
    tenant = make_tenant(runtime, name="Facturas de Colombia SAS", country="CO")
    actor = Actor(tenant.company_id, Role.ADMIN)
    create_account(
        runtime,
        actor,
        AccountIn(
            name="co",
            host="127.0.0.1",
            port=port,
            security="none",
            from_email="facturas@co.example.com",
            is_default=True,
        ),
    )
    create_party(runtime, actor, PartyIn(code="P1", name="Cliente", email="cliente@p1.co"))
    return tenant, actor


def _document(runtime: Runtime, actor: Actor, number: str, data: dict[str, Any]) -> int:
    attachments = [
        {"filename": "f.xml", "content_type": "application/xml", "content_base64": XML},
        {"filename": "f.pdf", "content_type": "application/pdf", "content_base64": PDF},
    ]
    doc = DocumentIn(
        type="invoice",
        number=number,
        party_code="P1",
        total="10",
        currency="COP",
        data=data,
        attachments=attachments if data else [],  # type: ignore[arg-type]
    )
    return create_document(runtime, actor, doc).document.id


def _bad_documents(runtime: Runtime, actor: Actor) -> dict[int, str]:
    """Documents whose e-invoice data breaks the DIAN profile; id -> the error expected."""
    issuer_not_a_dict = {"einvoice": {"country": "CO", "issuer": "EMPRESA SAS"}}
    bad = {
        _document(runtime, actor, f"SETP{i}", issuer_not_a_dict): "AttributeError" for i in range(3)
    }
    fine = {"einvoice": {"country": "CO", "issuer": {"tax_id": "900373076"}}}
    if runtime.engine.dialect.name == "sqlite":
        # A 4,301-digit number (SQLite keeps what it is given): int() refuses it.
        doc_id = _document(runtime, actor, "SETP-LONG", fine)
        with runtime.engine.begin() as conn:
            conn.execute(
                update(t.Document).where(t.Document.id == doc_id).values(number="9" * 4301)
            )
        bad[doc_id] = "ValueError"
    else:  # PostgreSQL refuses such a number: an unhashable DIAN kind instead
        kind_is_a_list = {**fine, "dian": {"kind": ["Invoice"]}}
        bad[_document(runtime, actor, "SETP-KIND", kind_is_a_list)] = "TypeError"
    return bad


@pytest.fixture
def worker(runtime: Runtime) -> Iterator[Worker]:
    worker = Worker(runtime, "poison-test-worker")
    thread = start_in_thread(worker)
    yield worker
    worker.stop()
    thread.join(timeout=30)


def _wait(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_batch_of_documents_that_cannot_be_composed_stops_no_one_and_is_logged_once_per_item(
    runtime: Runtime,
    smtp_server_plain: SmtpTestServer,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    caplog.set_level(logging.INFO, logger="docmail")
    tenant, colombia = _colombian_company(runtime, smtp_server_plain.port)
    ids = [_document(runtime, colombia, f"G-{i}", {}) for i in range(GOOD)]
    bad = _bad_documents(runtime, colombia)
    ids[250:250] = list(bad)  # in the middle of the first chunks
    batch_id, _ = start_batch(runtime, colombia, BatchIn(document_ids=ids))

    request.getfixturevalue("worker")  # the real worker loop, in a thread
    assert _wait(lambda: get_batch(runtime, colombia, batch_id).processed > 0, 30)
    mexico, _ = company_with_account(runtime, smtp_server_plain.port)
    queue_invoices(runtime, mexico, 1, prefix="A")
    with runtime.session() as session:
        (a_header,) = session.scalars(
            select(t.Message.message_id_header).where(t.Message.company_id == mexico.company_id)
        )

    def arrived() -> bool:
        return any(str(m.message["Message-ID"]) == a_header for m in smtp_server_plain.messages)

    assert _wait(arrived, 10), "the other company's invoice was not delivered within seconds"
    assert _wait(lambda: get_batch(runtime, colombia, batch_id).state == "done", 60)

    status = get_batch(runtime, colombia, batch_id)
    assert (status.processed, status.queued, status.failed) == (len(ids), GOOD, len(bad))
    problems = {p.document_id: p for p in batch_problems(runtime, colombia, batch_id)}
    assert set(problems) == set(bad), "exactly the bad documents are reported"
    for doc_id, error in bad.items():
        assert problems[doc_id].stage == "queue"
        assert error in problems[doc_id].error, problems[doc_id].error
    answer = tenant.client.get(f"/api/v1/batches/{batch_id}/problems")
    assert answer.status_code == 200
    assert {i["document_id"] for i in answer.json()["items"]} == set(bad)

    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in records if r.exc_info], "no traceback in the log"
    assert not [r for r in records if "round failed" in r.getMessage()]
    for doc_id in bad:
        lines = [r for r in records if f"documents {doc_id} not queued" in r.getMessage()]
        assert len(lines) == 1, [r.getMessage() for r in records]


def _ready_batch(runtime: Runtime, company_id: int, created: Any) -> int:
    with runtime.engine.begin() as conn:
        return int(
            conn.execute(
                insert(t.Batch)
                .values(
                    company_id=company_id,
                    mode="per_document",
                    state="ready",
                    total=0,
                    processed=0,
                    queued=0,
                    failed=0,
                    attempts=0,
                    created_at=created,
                )
                .returning(t.Batch.id)
            ).scalar_one()
        )


def test_companies_take_turns_at_batch_expansion_whatever_their_number_of_batches(
    runtime: Runtime,
) -> None:
    now = runtime.clock()
    busy, _ = company_with_account(runtime, 2)
    other = make_tenant(runtime, name="Otra SA", country="MX")
    mine = [
        _ready_batch(runtime, busy.company_id, now - timedelta(minutes=10 - i)) for i in range(3)
    ]
    theirs = _ready_batch(runtime, other.company_id, now - timedelta(minutes=1))

    order = []
    for step in range(6):
        when = now + timedelta(seconds=step)
        batch_id = batch_store.claim_batch(runtime.engine, "w", timedelta(minutes=2), when)
        assert batch_id is not None
        batch_store.release_batch(runtime.engine, batch_id, "w", when)
        order.append(batch_id)

    # One company's three batches do not take three turns in a row: the companies alternate.
    assert order == [mine[0], theirs, mine[1], theirs, mine[2], theirs]


def test_a_batch_that_fails_as_a_whole_is_backed_off_then_quarantined_with_its_reason(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor, _ = company_with_account(runtime, 2)
    healthy_company = Actor(make_tenant(runtime, name="Sana SA").company_id, Role.ADMIN)
    now = runtime.clock()
    poison = _ready_batch(runtime, actor.company_id, now - timedelta(minutes=5))
    healthy = _ready_batch(runtime, healthy_company.company_id, now)
    clock = [now]
    monkeypatch.setattr(runtime, "clock", lambda: clock[0])
    real_expand = batches.expand_chunk

    def expand(rt: Runtime, batch_id: int, chunk: int = batches.CHUNK_SIZE) -> bool:
        if batch_id == poison:  # the whole chunk fails, whatever its documents
            raise RuntimeError("the chunk's template engine is broken")
        return real_expand(rt, batch_id, chunk)

    monkeypatch.setattr(batches, "expand_chunk", expand)

    assert batches.expand_next_batch(runtime, "w") is True  # the poison one, oldest
    with runtime.session() as session:
        row = session.get_one(t.Batch, poison)
        assert (row.state, row.attempts, row.locked_by) == ("ready", 1, None)
        assert row.next_attempt_at == now + batches.BATCH_RETRY_WAIT
    assert batches.expand_next_batch(runtime, "w") is True  # the healthy one, not the poison
    assert get_batch(runtime, healthy_company, healthy).state == "done"
    assert batches.expand_next_batch(runtime, "w") is False, "the poison batch waits"

    for attempt in range(2, batches.BATCH_ATTEMPTS + 1):
        clock[0] += timedelta(hours=1)
        assert batches.expand_next_batch(runtime, "w") is True
        with runtime.session() as session:
            assert session.get_one(t.Batch, poison).attempts == attempt

    clock[0] += timedelta(hours=2)
    assert batches.expand_next_batch(runtime, "w") is False, "a quarantined batch is not retried"
    status = get_batch(runtime, actor, poison)
    assert status.state == "quarantined"
    assert status.error == "RuntimeError: the chunk's template engine is broken"
