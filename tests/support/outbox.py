"""Helpers for outbox tests: a company with queued mail, and real worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from docmail.adapters.db import tables as t
from docmail.services.accounts import create_account
from docmail.services.batches import send_batch
from docmail.services.companies import create_company
from docmail.services.documents import create_document
from docmail.services.inputs import AccountIn, BatchIn, DocumentIn, PartyIn
from docmail.services.parties import create_party
from docmail.services.runtime import Actor, Role, Runtime


def company_with_account(runtime: Runtime, port: int, **account: Any) -> tuple[Actor, int]:
    company = create_company(runtime, "Outbox SA", country="MX")
    actor = Actor(company.id, Role.ADMIN)
    created = create_account(
        runtime,
        actor,
        AccountIn(
            name="local",
            host="127.0.0.1",
            port=port,
            security="none",
            from_email="facturas@outbox.mx",
            is_default=True,
            **account,
        ),
    )
    create_party(
        runtime,
        actor,
        PartyIn(
            code="P1",
            name="Cliente",
            email="cliente@p1.mx",
            contacts=[{"name": "F", "email": "f@p1.mx", "roles": ["finance"]}],  # type: ignore[list-item]
        ),
    )
    return actor, created.id


def outbox_row(actor: Actor, account_id: int, now: datetime, **fields: Any) -> dict[str, Any]:
    """The values of one queued outbox message, due ``now`` (for inserting rows directly
    where the set-up is not what a test is about); ``fields`` override any of them."""
    return {
        "company_id": actor.company_id,
        "account_id": account_id,
        "state": "queued",
        "from_email": "facturas@outbox.mx",
        "from_name": "",
        "to": ["cliente@p1.mx"],
        "cc": [],
        "bcc": [],
        "subject": "Factura",
        "body_html": "<p>Factura</p>",
        "body_text": "Factura\n",
        "message_id_header": f"<{uuid.uuid4().hex}@outbox.mx>",
        "date_header": now,
        "attempts": 0,
        "attempts_at_queue": 0,
        "queued_at": now,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
        **fields,
    }


def queue_invoices(runtime: Runtime, actor: Actor, count: int, prefix: str = "K") -> list[int]:
    """Create ``count`` invoices and queue one email each (through the real services)."""
    ids = [
        create_document(
            runtime,
            actor,
            DocumentIn(
                type="invoice", number=f"{prefix}-{i}", party_code="P1", total="10", currency="MXN"
            ),
        ).document.id
        for i in range(count)
    ]
    result = send_batch(runtime, actor, BatchIn(document_ids=ids))
    assert result.queued == count
    return ids


def start_worker(
    runtime: Runtime, log: Path, concurrency: int = 2, **env_overrides: str
) -> subprocess.Popen[bytes]:
    """Run ``docmail worker`` as its own process against the test database."""
    env = {
        **os.environ,
        "DOCMAIL_DATABASE_URL": runtime.settings.resolved_database_url,
        "DOCMAIL_DATA_DIR": str(runtime.settings.data_dir),
        "DOCMAIL_SECRET_KEY": runtime.settings.secret_keys[0],
        "DOCMAIL_WORKER_LEASE_SECONDS": "2",
        "DOCMAIL_WORKER_POLL_SECONDS": "0.1",
        "DOCMAIL_OUTBOUND_ALLOW": ",".join(str(n) for n in runtime.settings.outbound_allow),
        **env_overrides,
    }
    with log.open("ab") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "docmail", "worker", "--concurrency", str(concurrency)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    STARTED.append(process)
    return process


# Every worker process a test started; tests/conftest.py kills those still alive after
# each test, so a failing test cannot leave workers polling (and loading the machine).
STARTED: list[subprocess.Popen[bytes]] = []


def kill_leftover_workers() -> None:
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def states(runtime: Runtime) -> Counter[str]:
    with runtime.session() as session:
        return Counter(session.scalars(select(t.Message.state)))


def wait_until_final(runtime: Runtime, timeout: float) -> Counter[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = states(runtime)
        if not {"queued", "sending", "retrying"} & set(now):
            return now
        time.sleep(0.2)
    return states(runtime)


def ambiguous_message_ids(runtime: Runtime) -> set[str]:
    """Message-IDs inside the documented duplicate window.

    An attempt abandoned by a dead worker, or one that lost the connection
    after the message data was sent (the server may have accepted it).
    """
    with runtime.session() as session:
        rows = session.execute(
            select(
                t.Message.message_id_header, t.MessageAttempt.outcome, t.MessageAttempt.detail
            ).join(t.MessageAttempt, t.MessageAttempt.message_id == t.Message.id)
        ).all()
    return {
        mid
        for mid, outcome, detail in rows
        if outcome == "abandoned" or "may already have accepted" in (detail or "")
    }
