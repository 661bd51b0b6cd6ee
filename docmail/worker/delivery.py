"""Delivering one account's claimed messages over one connection, overlapped with the server.

Per message the server needs a few milliseconds to take in ~100 KB; sending one
message after the other leaves that time idle on our side. So while the server
reads message *n*, this code commits the outcome of message *n-1* (its own
transaction: every state change is committed, one message at a time) and builds
the bytes of message *n+1*. The delivery rate then approaches what the server
and the connection allow (bench/throughput.py measures it against raw smtplib).

The crash window is unchanged in kind: a message the server accepted is
recorded as sent in the next commit, a few milliseconds later; a crash in
between leaves it ``sending`` until its lease expires, and it is sent again with
the same Message-ID (README, "What a crash can do").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from docmail.adapters.db import outbox_store as store
from docmail.adapters.mime import render_bytes
from docmail.adapters.smtp.transport import SendResult, Transport, send_meanwhile
from docmail.domain.outbox import MessageState, RetryPolicy, decide_after_failure
from docmail.errors import AuthenticationFailed, DeliveryError, PermanentDeliveryError
from docmail.services.messages import ClaimedEmail, claimed_emails
from docmail.services.partial_delivery import after_earlier_deliveries, record_partial
from docmail.services.runtime import Runtime

log = logging.getLogger("docmail.worker")
# Messages read per query. Small, so the reads fit in the time the server spends
# receiving the previous message instead of delaying the first one of each round.
LOAD_AHEAD = 10


@dataclass(frozen=True)
class _Prepared:
    raw: bytes
    recipients: list[str]


@dataclass
class AccountDelivery:
    """One pass over one account's claims; ``run()`` returns how many were sent."""

    runtime: Runtime
    worker: str
    transport: Transport
    policy: RetryPolicy
    claims: list[store.Claim]
    stopping: Callable[[], bool]
    # Claims more of this account's messages while the last one is being sent, so
    # the next claim overlaps the server instead of leaving it idle between rounds.
    more: Callable[[], list[store.Claim]] | None = None
    sent: int = 0
    _emails: dict[int, ClaimedEmail] = field(default_factory=dict)
    _prepared: dict[int, _Prepared | DeliveryError] = field(default_factory=dict)
    _pending: list[tuple[store.Claim, SendResult]] = field(default_factory=list)
    _deferred: BaseException | None = None
    _loaded_to: int = 0

    def run(self) -> bool:
        """Deliver every claim; False when the account must stop (its login was refused)."""
        try:
            for index, item in enumerate(self.claims):
                if self.stopping():
                    self._flush()
                    self._release(self.claims[index:])
                    return True
                if not self._deliver(index, item):
                    self._release(self.claims[index + 1 :])
                    return False
            return True
        finally:
            self._flush()

    # -- one message ------------------------------------------------------------------

    def _load(self, index: int) -> None:
        """Read claims from ``index`` on, a few at a time: later reads overlap the server."""
        if index >= len(self.claims) or index < self._loaded_to:
            return
        self._loaded_to = index + LOAD_AHEAD
        ids = [c.message_id for c in self.claims[index : self._loaded_to]]
        with self.runtime.session() as session:
            self._emails.update(claimed_emails(session, ids))

    def _deliver(self, index: int, item: store.Claim) -> bool:
        self._load(index)
        claimed = self._emails.get(item.message_id)
        prepared = self._prepare(index)
        if claimed is None or prepared is None:
            return True  # deleted with its company meanwhile: nothing to send or record
        if isinstance(prepared, DeliveryError):
            self._flush()
            self._record_failure(item, prepared, claimed)
            return True
        try:
            result = send_meanwhile(
                self.transport,
                claimed.email.from_email,
                prepared.recipients,
                prepared.raw,
                lambda: self._meanwhile(index + 1),
            )
        except AuthenticationFailed as exc:
            self._flush()
            self._pause_for_login(item, exc)
            return False
        except DeliveryError as exc:
            self._flush()
            self._record_failure(item, exc, claimed)
            return True
        finally:
            self._raise_deferred()
        self._pending.append((item, result))
        return True

    def _meanwhile(self, next_index: int) -> None:
        """While the server reads a message: commit the last outcome, build the next bytes."""
        try:
            self._flush()
            self._claim_more(next_index)
            self._prepare(next_index)
        except BaseException as exc:  # re-raised once the server has answered
            self._deferred = exc

    def _claim_more(self, next_index: int) -> None:
        if next_index < len(self.claims) or self.more is None or self.stopping():
            return
        more, self.more = self.more, None  # kept only while it finds work
        claimed = more()
        if claimed:
            self.claims.extend(claimed)
            self._loaded_to = next_index  # the window read so far ended before these
            self.more = more

    def _raise_deferred(self) -> None:
        if self._deferred is not None:
            exc, self._deferred = self._deferred, None
            raise exc

    def _prepare(self, index: int) -> _Prepared | DeliveryError | None:
        if index >= len(self.claims):
            return None
        if index in self._prepared:
            return self._prepared[index]
        self._load(index)
        claimed = self._emails.get(self.claims[index].message_id)
        if claimed is None:
            return None
        try:
            email = claimed.email
            raw = render_bytes(email)
            get_ready = getattr(self.transport, "prepare", None)  # optional (SMTP has it)
            if get_ready is not None:
                get_ready(raw)
            # A retry after a partial delivery goes only to the recipients still waiting.
            built: _Prepared | DeliveryError = _Prepared(raw, claimed.envelope)
        except (ValueError, TypeError, UnicodeError) as exc:
            # A row that cannot become a message will never send: fail it, not the round.
            built = PermanentDeliveryError(f"the message could not be built: {exc}")
        self._prepared = {index: built}  # keep only the one being sent and the next
        return built

    # -- recording outcomes -----------------------------------------------------------

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        now = self.runtime.clock()
        for item, result in pending:
            reply = result.reply
            if result.refused:  # some recipients refused: per-recipient record (or retry)
                claimed = self._emails[item.message_id]
                state = record_partial(
                    self.runtime, self.worker, self.policy, item, result, claimed, now
                )
                reply = f"{reply} ({state.value}; refused: {sorted(result.refused)})"
            else:
                store.mark_sent(self.runtime.engine, self.worker, item, result.code, reply, now)
            self._emails.pop(item.message_id, None)  # a pass may hold hundreds of claims
            self.sent += 1
            log.info("message %s sent: %s %s", item.message_id, result.code, reply)

    def _record_failure(self, item: store.Claim, exc: DeliveryError, claimed: ClaimedEmail) -> None:
        now = self.runtime.clock()
        outcome = decide_after_failure(
            self.policy,
            transient=exc.transient,
            attempts_done=item.attempt - claimed.attempts_at_queue,
            created_at=claimed.queued_at,
            now=now,
            reason=exc.message,
        )
        outcome = after_earlier_deliveries(outcome, claimed)  # partly delivered: sent
        store.mark_failed_attempt(
            self.runtime.engine,
            self.worker,
            item,
            state=outcome.state,
            next_attempt_at=outcome.next_attempt_at,
            error=outcome.reason or exc.message,
            code=exc.smtp_code,
            reply=exc.server_reply,
            now=now,
        )
        if outcome.state is MessageState.FAILED and not exc.transient and exc.recipients:
            store.mark_bouncing(
                self.runtime.engine, claimed.company_id, exc.recipients, exc.message
            )
        self._emails.pop(item.message_id, None)
        log.warning("message %s attempt %s: %s", item.message_id, item.attempt, exc.message)

    def _pause_for_login(self, item: store.Claim, exc: AuthenticationFailed) -> None:
        """Login refused: pause the account (not every message fails) and requeue this one."""
        now = self.runtime.clock()
        store.pause_account(self.runtime.engine, item.account_id, exc.message, now)
        store.mark_failed_attempt(
            self.runtime.engine,
            self.worker,
            item,
            state=MessageState.QUEUED,
            next_attempt_at=now,
            error=f"account paused: {exc.message}",
            code=exc.smtp_code,
            reply=exc.server_reply,
            now=now,
        )
        log.error("account %s paused: %s", item.account_id, exc.message)

    def _release(self, rest: list[store.Claim]) -> None:
        if rest:
            store.release(self.runtime.engine, self.worker, rest, self.runtime.clock())
