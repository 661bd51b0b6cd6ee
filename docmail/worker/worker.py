"""The worker loop: expand batches, run due jobs, claim due messages and deliver them.

The three are separate steps of a round: one that fails (a poison batch, a
broken job, a database hiccup) is logged once, in one line, and the others
still run. A heartbeat thread (docmail/worker/heartbeat.py) keeps the worker's
leases and frees the claims of dead workers.

Each account's messages go over one connection that stays open while there is
work (docmail/worker/delivery.py sends them). The Message-ID is fixed when the
message is queued, so a retry after an ambiguous failure carries the same
Message-ID and receivers can deduplicate. The only window in which a message can
be delivered twice is a crash after the server answered 250 to DATA and before
its ``sent`` state committed (see README).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

from docmail.adapters.db import outbox_store as store
from docmail.adapters.db import tables as t
from docmail.adapters.smtp.transport import Transport
from docmail.domain.outbox import RetryPolicy, policy_from_config
from docmail.services.automation_scheduler import run_due_jobs
from docmail.services.batches import expand_next_batch
from docmail.services.operations import forget_worker
from docmail.services.runtime import Runtime
from docmail.worker.delivery import AccountDelivery
from docmail.worker.events import process_due_events
from docmail.worker.heartbeat import Heartbeat

log = logging.getLogger("docmail.worker")
CLAIMS_AHEAD = 10  # further claims per account pass, each up to worker_batch_size


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
        self._transports: dict[int, tuple[Transport, object]] = {}
        self._held: set[int] = set()  # ids of the messages claimed and not yet recorded
        self._held_lock = threading.Lock()
        self._moved = time.monotonic()  # when the loop last made progress
        self._failing: dict[str, str] = {}  # step -> the failure last logged for it
        self.heartbeat = Heartbeat(runtime, self.name, self.held, self._progressing)
        runtime.wake_listeners.append(self._wake.set)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        """Deliver until :meth:`stop`; sleep until woken or the poll interval passes."""
        log.info("worker %s started", self.name)
        self.heartbeat.start()
        try:
            while not self._stop.is_set():
                if self.run_once() == 0:
                    self.close_transports()
                    self._wake.wait(self.runtime.settings.worker_poll_seconds)
                    self._wake.clear()
        finally:
            self.heartbeat.stop()
            self.close_transports()
            forget_worker(self.runtime, self.name)
        log.info("worker %s stopped", self.name)

    def run_once(self) -> int:
        """Expand one chunk of a waiting batch, run a due job, evaluate documents' automation
        events, then claim due messages and try each once.

        Each is its own step: an exception in one is logged (once while it repeats)
        and counts as nothing done, and the next step runs. Returns how much was
        done (a batch chunk counts as one), 0 when idle or failing.
        """
        self._moved = time.monotonic()
        expanded = self._step("batches", lambda: int(expand_next_batch(self.runtime, self.name)))
        # cheap read when nothing is due
        scheduled = self._step("jobs", lambda: run_due_jobs(self.runtime, self.name))
        evaluated = self._step("automation", lambda: process_due_events(self.runtime, self.name))
        return self._step("delivery", self._deliver_due) + expanded + scheduled + evaluated

    def _step(self, step: str, work: Callable[[], int]) -> int:
        """Run one step of the round; a failure is logged in one line when it is new."""
        try:
            done = work()
        except Exception as exc:  # the step's own items record their failures; this is the rest
            reason = f"{type(exc).__name__}: {exc}"
            if self._failing.get(step) != reason:
                log.error("worker %s: round failed in %s: %s", self.name, step, reason[:1000])
                log.debug("worker %s: %s failed", self.name, step, exc_info=True)
            self._failing[step] = reason
            return 0
        if self._failing.pop(step, None) is not None:
            log.info("worker %s: %s works again", self.name, step)
        return done

    def held(self) -> set[int]:
        """The messages this worker has claimed and not yet recorded (for the heartbeat)."""
        with self._held_lock:
            return set(self._held)

    def _progressing(self, within: float) -> bool:
        return time.monotonic() - self._moved < within

    def _stopping(self) -> bool:
        """Asked before each message: the loop is moving; should it stop?"""
        self._moved = time.monotonic()
        return self._stop.is_set()

    def _deliver_due(self) -> int:
        claims = self._claim()
        by_account: dict[int, list[store.Claim]] = defaultdict(list)
        for item in claims:
            by_account[item.account_id].append(item)
        # Each pass may claim more of its account's messages as it goes; one account's
        # failure leaves its claims to their lease and the next account still gets its turn.
        done, others = 0, len(by_account) > 1
        try:
            for account_id, items in by_account.items():
                done += self._step(
                    f"delivery for account {account_id}",
                    lambda a=account_id, i=items: self._deliver_account(a, i, others),  # type: ignore[misc]
                )
        finally:
            with self._held_lock:  # not renewed any more: a pass that failed left them to the lease
                self._held.difference_update(c.message_id for c in claims)
        return done

    def _claim(self, account_id: int | None = None) -> list[store.Claim]:
        settings = self.runtime.settings
        claims = store.claim(
            self.runtime.engine,
            self.name,
            settings.worker_batch_size,
            timedelta(seconds=settings.worker_lease_seconds),
            self.runtime.clock(),
            account_id,
        )
        with self._held_lock:
            self._held.update(c.message_id for c in claims)
        return claims

    def _claim_ahead(self, account_id: int, others: bool) -> Callable[[], list[store.Claim]]:
        """More of one account's messages, claimed while its connection is busy.

        At most ``CLAIMS_AHEAD`` times per pass, so batches still get expanded and
        due jobs run; only once when ``others`` (other accounts had due messages
        in this round's claim), so they get their turn soon.
        """
        left = 1 if others else CLAIMS_AHEAD

        def more() -> list[store.Claim]:
            nonlocal left
            if left <= 0:
                return []
            left -= 1
            return self._claim(account_id)

        return more

    def drain(self, max_rounds: int = 1000) -> int:
        """Deliver until nothing is due (for tests and the CLI's ``send --wait``)."""
        total = 0
        try:
            for _ in range(max_rounds):
                done = self.run_once()
                if not done:
                    break
                total += done
        finally:
            self.close_transports()
        return total

    def _deliver_account(
        self, account_id: int, items: list[store.Claim], others: bool = False
    ) -> int:
        """Deliver one account's claims and those claimed ahead; how many were handled."""
        transport, policy = self._transport(account_id)
        delivery = AccountDelivery(
            self.runtime,
            self.name,
            transport,
            policy,
            items,
            self._stopping,
            more=self._claim_ahead(account_id, others),
        )
        try:
            keep = delivery.run()
        except BaseException:
            self._close_transport(account_id)  # its session state is unknown now
            raise
        finally:
            with self._held_lock:
                self._held.difference_update(c.message_id for c in delivery.claims)
            self.heartbeat.count_sent(delivery.sent)
        if not keep:
            self._close_transport(account_id)
        return len(delivery.claims)

    def _transport(self, account_id: int) -> tuple[Transport, RetryPolicy]:
        """The account's open transport, reused across rounds while the account is unchanged.

        One connection per account and worker: no new TCP, TLS and login per round.
        An edited account (new password, host...) gets a new transport.
        """
        with self.runtime.session() as session:
            account = session.get_one(t.MailAccount, account_id)
            version = (account.updated_at, account.password_encrypted)
            policy = self.policy or policy_from_config(account.retry_policy)
            cached = self._transports.get(account_id)
            if cached is not None and cached[1] == version:
                return cached[0], policy
            self._close_transport(account_id)
            transport = self.runtime.transport_for(account)
        self._transports[account_id] = (transport, version)
        return transport, policy

    def _close_transport(self, account_id: int) -> None:
        cached = self._transports.pop(account_id, None)
        if cached is not None:
            cached[0].close()

    def close_transports(self) -> None:
        """Say goodbye to every mail server (when idle or stopping)."""
        for account_id in list(self._transports):
            self._close_transport(account_id)


def start_in_thread(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, name=f"docmail-worker-{worker.name}", daemon=True)
    thread.start()
    return thread
