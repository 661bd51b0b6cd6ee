"""Outbox message states and the retry policy: what happens after each delivery attempt.

Life cycle::

    queued ──claim──▶ sending ──250──▶ sent
                         │
                         ├─ transient error, attempts left ──▶ retrying ──due──▶ sending
                         └─ permanent error / attempts or age exhausted ──▶ failed
    queued / retrying ──cancel──▶ cancelled

A ``sending`` message whose lease (``locked_until``) expired belonged to a worker
that died; another worker may claim it again.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class MessageState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATES = frozenset({MessageState.SENT, MessageState.FAILED, MessageState.CANCELLED})
CLAIMABLE_STATES = frozenset({MessageState.QUEUED, MessageState.RETRYING})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and by age."""

    max_attempts: int = 8
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=2)
    max_age: timedelta = timedelta(days=2)
    jitter: float = 0.2

    def next_delay(self, attempts_done: int, rng: random.Random | None = None) -> timedelta:
        exp = min(self.base_delay * (2 ** max(attempts_done - 1, 0)), self.max_delay)
        spread = exp.total_seconds() * self.jitter
        offset = (rng or random).uniform(-spread, spread)
        return timedelta(seconds=max(exp.total_seconds() + offset, 0.0))


@dataclass(frozen=True)
class FixedRetryPolicy(RetryPolicy):
    """The same pause before every retry (for servers that throttle by the minute)."""

    def next_delay(self, attempts_done: int, rng: random.Random | None = None) -> timedelta:
        spread = self.base_delay.total_seconds() * self.jitter
        offset = (rng or random).uniform(-spread, spread)
        return timedelta(seconds=max(self.base_delay.total_seconds() + offset, 0.0))


RETRY_POLICIES: dict[str, type[RetryPolicy]] = {
    "exponential": RetryPolicy,
    "fixed": FixedRetryPolicy,
}


def policy_from_config(config: Mapping[str, Any] | None) -> RetryPolicy:
    """Build an account's retry policy from its stored settings; missing keys use defaults.

    Keys: kind (exponential|fixed), max_attempts, base_seconds, max_delay_seconds,
    max_age_hours, jitter. Values were validated when the account was saved.
    """
    config = dict(config or {})
    kind = RETRY_POLICIES.get(str(config.get("kind", "exponential")), RetryPolicy)
    default = RetryPolicy()
    return kind(
        max_attempts=int(config.get("max_attempts", default.max_attempts)),
        base_delay=timedelta(seconds=float(config.get("base_seconds", 30))),
        max_delay=timedelta(seconds=float(config.get("max_delay_seconds", 7200))),
        max_age=timedelta(hours=float(config.get("max_age_hours", 48))),
        jitter=float(config.get("jitter", default.jitter)),
    )


@dataclass(frozen=True)
class AttemptOutcome:
    """What the worker should store after one attempt."""

    state: MessageState
    next_attempt_at: datetime | None
    reason: str | None


def decide_after_failure(
    policy: RetryPolicy,
    *,
    transient: bool,
    attempts_done: int,
    created_at: datetime,
    now: datetime,
    reason: str,
    rng: random.Random | None = None,
) -> AttemptOutcome:
    """Retry transient failures while attempts and age allow; otherwise fail with the reason."""
    if not transient:
        return AttemptOutcome(MessageState.FAILED, None, reason)
    if attempts_done >= policy.max_attempts:
        return AttemptOutcome(
            MessageState.FAILED, None, f"gave up after {attempts_done} attempts: {reason}"
        )
    next_at = now + policy.next_delay(attempts_done, rng)
    if next_at - created_at > policy.max_age:
        return AttemptOutcome(
            MessageState.FAILED, None, f"gave up: message older than {policy.max_age}: {reason}"
        )
    return AttemptOutcome(MessageState.RETRYING, next_at, reason)


def is_transient_smtp_code(code: int, enhanced: str | None = None) -> bool:
    """Classify an SMTP reply: 4xx (and 4.x.x enhanced codes) may succeed later, 5xx not.

    An enhanced status code wins over the basic code when they disagree, since
    providers such as Gmail send ``550 4.7.0``-style replies for rate limiting less
    consistently than the enhanced class.
    """
    if enhanced and enhanced[:1] in "45" and enhanced[1:2] == ".":
        return enhanced.startswith("4")
    return 400 <= code < 500


def split_enhanced_code(reply: str) -> str | None:
    """Return ``"5.1.1"`` from ``"5.1.1 <x@y>: user unknown"``, or None."""
    head = reply.strip().split(" ", 1)[0]
    parts = head.split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts) and head[0] in "245":
        return head
    return None
