"""Retry policy and SMTP reply classification (pure logic)."""

import random
from datetime import UTC, datetime, timedelta

from docmail.domain.outbox import (
    MessageState,
    RetryPolicy,
    decide_after_failure,
    is_transient_smtp_code,
    split_enhanced_code,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_permanent_failure_fails_at_once_with_the_reason() -> None:
    out = decide_after_failure(
        RetryPolicy(), transient=False, attempts_done=1, created_at=NOW, now=NOW, reason="550 no"
    )
    assert out.state is MessageState.FAILED and out.reason == "550 no"


def test_transient_failure_is_retried_later() -> None:
    out = decide_after_failure(
        RetryPolicy(), transient=True, attempts_done=1, created_at=NOW, now=NOW, reason="451"
    )
    assert out.state is MessageState.RETRYING
    assert out.next_attempt_at is not None and out.next_attempt_at > NOW


def test_transient_failure_gives_up_after_max_attempts() -> None:
    out = decide_after_failure(
        RetryPolicy(max_attempts=3),
        transient=True,
        attempts_done=3,
        created_at=NOW,
        now=NOW,
        reason="451 busy",
    )
    assert out.state is MessageState.FAILED and "3 attempts" in (out.reason or "")


def test_transient_failure_gives_up_when_the_message_is_too_old() -> None:
    old = NOW - timedelta(days=3)
    out = decide_after_failure(
        RetryPolicy(), transient=True, attempts_done=2, created_at=old, now=NOW, reason="451"
    )
    assert out.state is MessageState.FAILED and "older than" in (out.reason or "")


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(
        base_delay=timedelta(seconds=10), max_delay=timedelta(seconds=60), jitter=0.0
    )
    delays = [policy.next_delay(n).total_seconds() for n in range(1, 6)]
    assert delays == [10, 20, 40, 60, 60]


def test_jitter_stays_within_its_band() -> None:
    policy = RetryPolicy(base_delay=timedelta(seconds=100), jitter=0.2)
    rng = random.Random(7)
    for _ in range(100):
        assert 80 <= policy.next_delay(1, rng).total_seconds() <= 120


def test_smtp_codes_are_classified_by_class_and_enhanced_code() -> None:
    assert is_transient_smtp_code(451) and is_transient_smtp_code(421)
    assert not is_transient_smtp_code(550)
    assert is_transient_smtp_code(550, "4.7.0")
    assert not is_transient_smtp_code(450, "5.1.1")


def test_enhanced_status_codes_are_read_from_replies() -> None:
    assert split_enhanced_code("5.1.1 <x@y>: user unknown") == "5.1.1"
    assert split_enhanced_code("Requested action aborted") is None
