"""A server that accepts some recipients of a message and refuses others at RCPT TO.

4xx recipients are retried alone (same Message-ID and bytes, nobody gets a second
copy), 5xx recipients fail with the reply, and the message shows each recipient's
state in the API. Real aiosmtpd server on 127.0.0.1, SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from docmail.adapters.db import tables as t
from docmail.domain.outbox import RetryPolicy
from docmail.http.app import create_app
from docmail.services.companies import create_api_token
from docmail.services.runtime import Actor, Role, Runtime
from docmail.worker.worker import Worker
from tests.support.outbox import company_with_account, outbox_row
from tests.support.smtp_server import SmtpTestServer

TO, CC = "pagos@cliente.mx", "contador@cliente.mx"
GREYLISTED = "4.7.1 Greylisted, please try again later"
UNKNOWN = "5.1.1 <contador@cliente.mx>: Recipient address rejected: User unknown"


def _queue(runtime: Runtime, actor: Actor, account_id: int) -> int:
    row = outbox_row(actor, account_id, runtime.clock(), to=[TO], cc=[CC])
    with runtime.session() as session:
        return int(session.scalar(insert(t.Message).returning(t.Message.id), row))


def _api_message(runtime: Runtime, actor: Actor, message_id: int) -> dict[str, Any]:
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    token = create_api_token(runtime, actor.company_id, "ops", Role.ADMIN)
    response = client.get(
        f"/api/v1/messages/{message_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _recipients(body: dict[str, Any]) -> dict[str, tuple[str, str, int | None, str]]:
    return {
        r["address"]: (r["field"], r["state"], r["code"], r["reply"]) for r in body["recipients"]
    }


def _copies(server: SmtpTestServer) -> Counter[str]:
    return Counter(rcpt for m in server.messages for rcpt in m.rcpt_tos)


def test_a_cc_greylisted_once_gets_one_copy_on_the_retry_and_the_to_is_not_sent_twice(
    runtime: Runtime, smtp_server_plain: SmtpTestServer
) -> None:
    actor, account_id = company_with_account(runtime, smtp_server_plain.port)
    message_id = _queue(runtime, actor, account_id)
    smtp_server_plain.refuse_recipient(CC, 451, GREYLISTED)

    Worker(runtime, "w1", RetryPolicy(base_delay=timedelta(hours=1), jitter=0)).drain()
    waiting = _api_message(runtime, actor, message_id)
    assert waiting["state"] == "retrying"
    assert waiting["next_attempt_at"] is not None
    assert _recipients(waiting) == {
        TO: ("to", "accepted", None, ""),
        CC: ("cc", "deferred", 451, GREYLISTED),
    }
    assert CC in waiting["last_error"] and "451" in waiting["last_error"]
    assert _copies(smtp_server_plain) == {TO: 1}

    with runtime.session() as session:  # the retry is due now
        session.execute(
            update(t.Message)
            .where(t.Message.id == message_id)
            .values(next_attempt_at=runtime.clock())
        )
    Worker(runtime, "w2", RetryPolicy(base_delay=timedelta(0))).drain()

    done = _api_message(runtime, actor, message_id)
    assert done["state"] == "sent"
    assert _recipients(done) == {
        TO: ("to", "accepted", None, ""),
        CC: ("cc", "accepted", None, ""),
    }
    assert [a["outcome"] for a in done["attempt_log"]] == ["partial", "sent"]
    assert _copies(smtp_server_plain) == {TO: 1, CC: 1}
    first, retry = smtp_server_plain.messages
    assert retry.rcpt_tos == [CC]
    assert first.message["Message-ID"] == retry.message["Message-ID"] == done["message_id"]
    assert first.raw == retry.raw  # same headers (To and Cc both named) and body


def test_a_cc_refused_with_550_fails_with_the_reply_and_the_message_is_sent_to_the_to(
    runtime: Runtime, smtp_server_plain: SmtpTestServer
) -> None:
    actor, account_id = company_with_account(runtime, smtp_server_plain.port)
    message_id = _queue(runtime, actor, account_id)
    smtp_server_plain.refuse_recipient(CC, 550, UNKNOWN)

    Worker(runtime, "w1", RetryPolicy(base_delay=timedelta(0))).drain()

    body = _api_message(runtime, actor, message_id)
    assert body["state"] == "sent" and body["sent_at"] is not None
    assert _recipients(body) == {
        TO: ("to", "accepted", None, ""),
        CC: ("cc", "refused", 550, UNKNOWN),
    }
    assert f"refused: {CC}: 550 {UNKNOWN}" in body["last_error"]
    assert [a["outcome"] for a in body["attempt_log"]] == ["sent"]
    assert _copies(smtp_server_plain) == {TO: 1}


def test_a_recipient_still_deferred_when_the_retries_run_out_is_failed_on_a_sent_message(
    runtime: Runtime, smtp_server_plain: SmtpTestServer
) -> None:
    actor, account_id = company_with_account(runtime, smtp_server_plain.port)
    message_id = _queue(runtime, actor, account_id)
    smtp_server_plain.refuse_recipient(CC, 451, GREYLISTED, count=10)

    Worker(runtime, "w1", RetryPolicy(base_delay=timedelta(0), max_attempts=3)).drain()

    body = _api_message(runtime, actor, message_id)
    assert body["state"] == "sent"
    assert _recipients(body)[CC] == ("cc", "failed", 451, GREYLISTED)
    assert _recipients(body)[TO] == ("to", "accepted", None, "")
    assert body["last_error"].startswith("gave up after 3 attempts")
    # the retries went to the CC alone; refused whole, they count as failed attempts
    assert [a["outcome"] for a in body["attempt_log"]] == ["partial", "retrying", "failed"]
    assert _copies(smtp_server_plain) == {TO: 1}  # the CC was only ever refused
