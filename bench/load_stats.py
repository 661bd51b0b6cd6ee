"""Turning a load step's samples into figures, checking deliveries, saying what broke."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.load_driver import Sample
from bench.load_harness import OutboxRow
from tests.support.smtp_server import ReceivedMessage

REQUESTS = ("compose", "send")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def error_kind(error: str) -> str:
    """Group errors that differ only in numbers (ids, ports, times)."""
    return re.sub(r"\d+", "N", error)[:160]


@dataclass
class StepResult:
    rate: float
    seconds: float
    flows_offered: int
    flows_ok: int
    sends_ok: int
    flows_per_s: float  # flows that completed without error, per second of the step's span
    requests_per_s: float  # HTTP requests answered without error, per second
    latency_ms: dict[str, dict[str, float]]
    errors: int
    error_kinds: dict[str, int]
    schedule_lag_ms_p99: float  # how late the generator started flows (its own health)
    passed: bool
    server_cpu: float = 0.0  # share of one core over the step
    worker_cpu: float = 0.0
    server_log: dict[str, int] = field(default_factory=dict)
    worker_log: dict[str, int] = field(default_factory=dict)
    delivered_per_s: float = 0.0  # messages that reached the sink while the step ran, per second
    drain_seconds: float = 0.0  # after the step, until the outbox was empty (-1: not in 15 s)
    samples: list[Sample] = field(default_factory=list, repr=False)

    def headline(self) -> str:
        c, s = self.latency_ms["compose"]["p95"], self.latency_ms["send"]["p95"]
        return (
            f"{self.flows_per_s:.1f} flows/s, p95 compose {c:.0f} ms send {s:.0f} ms, "
            f"{self.errors} errors, server CPU {self.server_cpu:.0%}"
        )

    def collapsed(self) -> bool:
        """Requests failed and under half the offered flows got through: higher rates only worse."""
        return self.errors > 0 and self.flows_per_s < 0.5 * self.rate

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "samples"}
        for key in (
            "flows_per_s",
            "requests_per_s",
            "server_cpu",
            "worker_cpu",
            "delivered_per_s",
            "drain_seconds",
        ):
            out[key] = round(out[key], 3)
        return out


def _latencies(samples: list[Sample], name: str) -> dict[str, float]:
    values = [s.latency * 1000 for s in samples if s.name == name]
    return {
        "count": len(values),
        **{f"p{q}": round(percentile(values, q), 1) for q in (50, 95, 99)},
        "max": round(max(values, default=0.0), 1),
    }


def summarise(rate: float, seconds: float, samples: list[Sample], limit_ms: float) -> StepResult:
    ok = [s for s in samples if s.error is None]
    span = max([seconds, *(s.started + s.latency for s in samples)])
    sends_ok = {s.flow for s in ok if s.name == "send"}
    errors = [s for s in samples if s.error is not None]
    latency = {name: _latencies(samples, name) for name in REQUESTS}
    lags = [(s.started - s.scheduled) * 1000 for s in samples if s.name == "compose"]
    offered = round(rate * seconds)
    missing = offered - len({s.flow for s in samples})  # flows that never even started
    passed = not errors and not missing and all(v["p95"] < limit_ms for v in latency.values())
    return StepResult(
        rate=rate,
        seconds=seconds,
        flows_offered=offered,
        flows_ok=len(sends_ok),
        sends_ok=len(sends_ok),
        flows_per_s=len(sends_ok) / span,
        requests_per_s=len(ok) / span,
        latency_ms=latency,
        errors=len(errors) + missing,
        error_kinds=dict(Counter(error_kind(s.error or "") for s in errors).most_common(5)),
        schedule_lag_ms_p99=round(percentile(lags, 99), 1),
        passed=passed,
    )


def _message_id(value: str | None) -> str:
    return (value or "").strip().strip("<>")


def check_deliveries(
    samples: list[Sample], received: list[ReceivedMessage], outbox: list[OutboxRow]
) -> dict[str, Any]:
    """Every answered send reached the sink exactly once, and nothing else did.

    A send the client gave up on (timeout) may still have been queued by the
    server: it is then delivered once too, and counted apart ("queued without an
    answer"); a retry with the same Idempotency-Key would have returned it.
    """
    answered = {_message_id(s.message_id) for s in samples if s.name == "send" and s.message_id}
    first = {s.key: s.message_id for s in samples if s.name == "send" and s.message_id}
    replays = [s for s in samples if s.name == "replay" and s.message_id]
    counts = Counter(_message_id(m.message["Message-ID"]) for m in received)
    in_outbox = {_message_id(row.message_id): row for row in outbox}
    keys = Counter(row.key for row in outbox if row.key)
    report: dict[str, Any] = {
        "sends_answered": len(answered),
        "received": sum(counts.values()),
        "replays": len(replays),
        "replay_mismatch": [s.key for s in replays if first.get(s.key) != s.message_id],
        "missing": sorted(answered - counts.keys()),
        "duplicated": sorted(m for m, n in counts.items() if n > 1),
        "unexpected": sorted(counts.keys() - in_outbox.keys()),
        "key_used_twice": sorted(k for k, n in keys.items() if n > 1),
        "queued_without_answer": len(in_outbox.keys() - answered),
        "not_sent": dict(Counter(r.state for r in outbox if r.state != "sent")),
    }
    problems = ("replay_mismatch", "missing", "duplicated", "unexpected", "key_used_twice")
    report["ok"] = not any(report[name] for name in problems) and not report["not_sent"]
    report["summary"] = (
        f"{report['sends_answered']} sends answered, {report['received']} messages received: "
        + ", ".join(f"{len(report[n])} {n.replace('_', ' ')}" for n in problems)
        + f"; {report['queued_without_answer']} queued without an answer (client timeout), "
        f"{len(replays)} idempotent replays; not sent: {report['not_sent'] or 'none'}"
    )
    return report


def _why(step: StepResult, backend: str, limit_ms: float) -> str:
    parts = []
    slow = [
        f"{n} p95 {v['p95']:.0f} ms" for n, v in step.latency_ms.items() if v["p95"] >= limit_ms
    ]
    if slow:
        parts.append("latency: " + ", ".join(slow))
    if step.errors:
        kinds = "; ".join(f"{n}x {k}" for k, n in step.error_kinds.items())
        parts.append(f"{step.errors} errors ({kinds})")
    for name, log in (("server", step.server_log), ("worker", step.worker_log)):
        if log:
            parts.append(f"{name} log: " + ", ".join(f"{n}x {k}" for k, n in log.items()))
    parts.append(
        f"achieved {step.flows_per_s:.1f} of {step.rate:g} flows/s offered; "
        f"server CPU {step.server_cpu:.0%} of a core, worker {step.worker_cpu:.0%}"
    )
    if step.server_cpu >= 0.85:
        parts.append(
            "the server process is CPU-bound (one Python process: the GIL caps it at one core)"
        )
    if step.delivered_per_s < 0.8 * step.flows_per_s:
        drained = "not within 15 s" if step.drain_seconds < 0 else f"in {step.drain_seconds:.0f} s"
        parts.append(
            f"delivery fell behind: {step.delivered_per_s:.1f} messages/s reached the sink while "
            f"{step.flows_per_s:.1f} sends/s were queued (the backlog drained {drained} after)"
        )
    if step.schedule_lag_ms_p99 > 50:
        parts.append(
            f"(the load generator started flows {step.schedule_lag_ms_p99:.0f} ms late at p99)"
        )
    return f"at {step.rate:g} flows/s on {backend}: " + "; ".join(parts)


def diagnose(steps: list[StepResult], backend: str, limit_ms: float) -> dict[str, Any]:
    """The highest passing rate (every lower one passing too) and the first failure above it."""
    best = None
    for step in steps:
        if not step.passed:
            return {"best_rate": best, "breaks_first": _why(step, backend, limit_ms)}
        best = step.rate
    return {"best_rate": best, "breaks_first": "nothing broke at the rates tried"}
