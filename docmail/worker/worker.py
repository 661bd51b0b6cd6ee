"""Delivering claimed messages, one SMTP connection per account per round.

The Message-ID is fixed when the message is queued, so a retry after an
ambiguous failure carries the same Message-ID and receivers can deduplicate.
The only window in which a message can be delivered twice is a crash after the
server answered 250 to DATA and before ``mark_sent`` committed (see README).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr

from docmail.adapters.db import outbox_store as store
from docmail.adapters.db import tables as t
from docmail.adapters.mime import render_bytes
from docmail.adapters.smtp.transport import SendResult, Transport
from docmail.domain.outbox import (
    MessageState,
    RetryPolicy,
    decide_after_failure,
    policy_from_config,
)
from docmail.errors import AuthenticationFailed, DeliveryError
from docmail.services.automation_scheduler import run_due_jobs
from docmail.services.batches import expand_next_batch
from docmail.services.messages import outgoing_email
from docmail.services.operations import beat, forget_worker
from docmail.services.runtime import Runtime

log = logging.getLogger("docmail.worker")
HEARTBEAT_SECONDS = 10.0


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


class Worker:
    """One delivery loop. Run several (threads or processes, any machine) against one database."""

    def __init__(
        self, runtime: Runtime, name: str | None = None, policy: RetryPolicy | None = None
    ) -> None:
        self.runtime = runtime
        self.name = name or default_worker_name()
        self.policy = policy  # None: each account's own policy
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sent_since_beat = 0
        runtime.wake_listeners.append(self._wake.set)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        """Deliver until :meth:`stop`; sleep until woken or the poll interval passes."""
        log.info("worker %s started", self.name)
        last_beat = 0.0
        while not self._stop.is_set():
            try:
                busy = self.run_once() > 0
                if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                    beat(self.runtime, self.name, self._sent_since_beat)
                    self._sent_since_beat, last_beat = 0, time.monotonic()
            except Exception:  # keep the loop alive; the error is logged with its traceback
                log.exception("worker %s: round failed", self.name)
                busy = False
            if not busy:
                self._wake.wait(self.runtime.settings.worker_poll_seconds)
                self._wake.clear()
        forget_worker(self.runtime, self.name)
        log.info("worker %s stopped", self.name)

    def run_once(self) -> int:
        """Expand one chunk of a waiting batch, then claim due messages and try each once.

        Returns how much was done (batch chunk counts as one), 0 when idle.
        """
        expanded = expand_next_batch(self.runtime, self.name)
        scheduled = run_due_jobs(self.runtime, self.name)  # cheap read when nothing is due
        return self._deliver_due() + int(expanded) + scheduled

    def _deliver_due(self) -> int:
        settings = self.runtime.settings
        claims = store.claim(
            self.runtime.engine,
            self.name,
            settings.worker_batch_size,
            timedelta(seconds=settings.worker_lease_seconds),
            self.runtime.clock(),
        )
        by_account: dict[int, list[store.Claim]] = defaultdict(list)
        for item in claims:
            by_account[item.account_id].append(item)
        for account_id, items in by_account.items():
            self._deliver_account(account_id, items)
        return len(claims)

    def drain(self, max_rounds: int = 1000) -> int:
        """Deliver until nothing is due (for tests and the CLI's ``send --wait``)."""
        total = 0
        for _ in range(max_rounds):
            done = self.run_once()
            if not done:
                break
            total += done
        return total

    def _deliver_account(self, account_id: int, items: list[store.Claim]) -> None:
        with self.runtime.session() as session:
            account = session.get_one(t.MailAccount, account_id)
            policy = self.policy or policy_from_config(account.retry_policy)
            transport = self.runtime.transport_for(account)
        try:
            for index, item in enumerate(items):
                if self._stop.is_set():
                    store.release(
                        self.runtime.engine, self.name, items[index:], self.runtime.clock()
                    )
                    return
                if not self._deliver_one(transport, item, policy):
                    store.release(
                        self.runtime.engine, self.name, items[index + 1 :], self.runtime.clock()
                    )
                    return
        finally:
            transport.close()

    def _deliver_one(self, transport: Transport, item: store.Claim, policy: RetryPolicy) -> bool:
        """Send one message; return False when the account must stop (login refused)."""
        with self.runtime.session() as session:
            message = session.get_one(t.Message, item.message_id)
            outgoing = outgoing_email(session, message)
            budget = _RetryBudget(message.company_id, message.queued_at, message.attempts_at_queue)
        raw = render_bytes(outgoing)
        recipients = [parseaddr(a)[1] for a in outgoing.envelope_recipients]
        try:
            result = transport.send(outgoing.from_email, recipients, raw)
        except AuthenticationFailed as exc:
            self._pause_for_login(item, exc)
            return False
        except DeliveryError as exc:
            self._record_failure(item, exc, budget, policy)
            return True
        self._record_success(item, result, budget.company_id)
        return True

    def _record_success(self, item: store.Claim, result: SendResult, company_id: int) -> None:
        reply = result.reply
        if result.refused:
            # The server took the message for some recipients only: say who was refused.
            refused = "; ".join(
                f"{rcpt}: {code} {text}" for rcpt, (code, text) in result.refused.items()
            )
            reply = f"{reply} (refused: {refused})"
            permanent = [r for r, (code, _) in result.refused.items() if code >= 500]
            store.mark_bouncing(self.runtime.engine, company_id, permanent, refused)
        store.mark_sent(
            self.runtime.engine, self.name, item, result.code, reply, self.runtime.clock()
        )
        self._sent_since_beat += 1
        log.info("message %s sent: %s %s", item.message_id, result.code, reply)

    def _record_failure(
        self, item: store.Claim, exc: DeliveryError, budget: _RetryBudget, policy: RetryPolicy
    ) -> None:
        now = self.runtime.clock()
        outcome = decide_after_failure(
            policy,
            transient=exc.transient,
            attempts_done=item.attempt - budget.attempts_at_queue,
            created_at=budget.queued_at,
            now=now,
            reason=exc.message,
        )
        store.mark_failed_attempt(
            self.runtime.engine,
            self.name,
            item,
            state=outcome.state,
            next_attempt_at=outcome.next_attempt_at,
            error=outcome.reason or exc.message,
            code=exc.smtp_code,
            reply=exc.server_reply,
            now=now,
        )
        if outcome.state is MessageState.FAILED and not exc.transient and exc.recipients:
            store.mark_bouncing(self.runtime.engine, budget.company_id, exc.recipients, exc.message)
        log.warning("message %s attempt %s: %s", item.message_id, item.attempt, exc.message)

    def _pause_for_login(self, item: store.Claim, exc: AuthenticationFailed) -> None:
        """Login refused: pause the account (not every message fails) and requeue this one."""
        now = self.runtime.clock()
        store.pause_account(self.runtime.engine, item.account_id, exc.message, now)
        store.mark_failed_attempt(
            self.runtime.engine,
            self.name,
            item,
            state=MessageState.QUEUED,
            next_attempt_at=now,
            error=f"account paused: {exc.message}",
            code=exc.smtp_code,
            reply=exc.server_reply,
            now=now,
        )
        log.error("account %s paused: %s", item.account_id, exc.message)


@dataclass(frozen=True)
class _RetryBudget:
    """What the retry policy counts from: the last (re)queue, not the first attempt ever."""

    company_id: int
    queued_at: datetime
    attempts_at_queue: int


def start_in_thread(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, name=f"docmail-worker-{worker.name}", daemon=True)
    thread.start()
    return thread
