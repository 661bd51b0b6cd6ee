"""Recording a message some recipients accepted and others refused (``domain.recipient_states``).

Overall state of such a message:

* ``retrying`` while some recipients were answered 4xx and the account's retry
  policy allows another attempt (``next_attempt_at`` as for any retry); the next
  attempt goes to those recipients only;
* ``sent`` once nobody is left waiting: every recipient accepted it, was refused
  for good (5xx, with the reply) or was given up on when the retry policy ran out
  (``failed``, with the last reply). ``last_error`` then names who did not get it.

A message nobody ever accepted still ends ``failed`` as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

from docmail.adapters.db import outbox_store as store
from docmail.adapters.db import tables as t
from docmail.adapters.smtp.transport import SendResult
from docmail.domain.outbox import (
    AttemptOutcome,
    MessageState,
    RetryPolicy,
    decide_after_failure,
)
from docmail.domain.recipient_states import (
    DEFERRED,
    FAILED,
    PENDING,
    REFUSED,
    RecipientState,
    answered,
    attempt_detail,
    fold,
)
from docmail.services.messages import ClaimedEmail
from docmail.services.runtime import Runtime


def _summary(states: list[RecipientState]) -> str:
    return "; ".join(s.summary() for s in states)


def record_partial(
    runtime: Runtime,
    worker: str,
    policy: RetryPolicy,
    claim: store.Claim,
    result: SendResult,
    claimed: ClaimedEmail,
    now: datetime,
) -> MessageState:
    """Store an attempt with refused recipients; return the message's new state."""
    states = answered(claimed.envelope, result.refused)
    refused = [s for s in states if s.state == REFUSED]
    deferred = [s for s in states if s.state == DEFERRED]
    store.mark_bouncing(
        runtime.engine, claimed.company_id, [s.address for s in refused], _summary(refused)
    )
    state, next_at, error, outcome = MessageState.SENT, None, "", "sent"
    if deferred:
        decided = decide_after_failure(
            policy,
            transient=True,
            attempts_done=claim.attempt - claimed.attempts_at_queue,
            created_at=claimed.queued_at,
            now=now,
            reason=f"deferred by the server: {_summary(deferred)}",
        )
        error = decided.reason or ""
        if decided.state is MessageState.RETRYING:
            state, next_at, outcome = MessageState.RETRYING, decided.next_attempt_at, "partial"
        else:  # given up: those recipients failed, the others have it
            states = [
                RecipientState(s.address, FAILED, s.code, s.reply) if s in deferred else s
                for s in states
            ]
    if refused:
        error = "; ".join(p for p in (error, f"refused: {_summary(refused)}") if p)
    store.mark_partial(
        runtime.engine,
        worker,
        claim,
        state=state,
        next_attempt_at=next_at,
        code=result.code,
        reply=f"{result.reply} (refused: {_summary(refused + deferred)})",
        error=error,
        detail=attempt_detail(result.reply, states),
        attempt_outcome=outcome,
        now=now,
    )
    return state


def after_earlier_deliveries(outcome: AttemptOutcome, claimed: ClaimedEmail) -> AttemptOutcome:
    """A message an earlier attempt delivered to someone is ``sent`` even if the rest fail."""
    if outcome.state is not MessageState.FAILED or not claimed.delivered_to:
        return outcome
    reason = f"{outcome.reason}; delivered earlier to {', '.join(claimed.delivered_to)}"
    return AttemptOutcome(MessageState.SENT, None, reason)


@dataclass(frozen=True)
class RecipientView:
    """One recipient of a message as the API and the message page show it."""

    field: str  # to | cc | bcc
    address: str
    state: str  # pending | accepted | deferred | refused | failed | cancelled
    code: int | None
    reply: str


def recipient_report(message: t.Message, attempts: list[t.MessageAttempt]) -> list[RecipientView]:
    """Each recipient's state, from the message's attempts (oldest first) and its state."""
    fields = [("to", message.to), ("cc", message.cc), ("bcc", message.bcc)]
    addresses = [(name, parseaddr(a)[1]) for name, values in fields for a in values]
    states = fold(
        [address for _, address in addresses],
        [(a.outcome, a.smtp_code, a.detail) for a in attempts],
    )
    final = message.state in (MessageState.SENT, MessageState.FAILED, MessageState.CANCELLED)
    views = []
    for name, address in addresses:
        state = states[address]
        shown, reply = state.state, state.reply
        if final and shown in (PENDING, DEFERRED):  # nobody will try again
            shown = "cancelled" if message.state == MessageState.CANCELLED else FAILED
            reply = reply or message.last_error or ""
        views.append(RecipientView(name, address, shown, state.code, reply))
    return views
