"""A short run of the load harness (bench/load.py): real server, worker and SMTP sink processes.

Compose + send flows are started on a fixed schedule (open model) for a few
seconds against ``docmail serve`` and ``docmail worker`` running as their own
processes on 127.0.0.1. No timing is asserted (that is bench/load.py's job):
only that every request succeeded and every send became exactly one delivered
email, with repeated Idempotency-Keys answered by the first message.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.load_harness import Harness, run_driver
from bench.load_stats import check_deliveries

RATE, SECONDS = 5, 5  # 25 flows: 25 compose, 25 send and 5 replayed sends
FLOWS = RATE * SECONDS


def test_compose_and_send_at_a_steady_rate_deliver_every_send_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    with Harness(database_url, tmp_path / "load", documents=10) as harness:
        config = harness.driver_config(RATE, SECONDS, key_prefix="smoke", replay_every=5)
        samples = run_driver(config, tmp_path, "httpx")
        states = harness.wait_outbox_idle(timeout=30)
        outbox = harness.outbox()
        received = harness.sink.messages

    assert [s.error for s in samples if s.error] == []
    assert Counter(s.name for s in samples) == {"compose": FLOWS, "send": FLOWS, "replay": 5}
    assert {s.status for s in samples if s.name == "send"} == {202}
    assert {s.status for s in samples if s.name == "replay"} == {200}
    assert states == {"sent": FLOWS}

    report = check_deliveries(samples, received, outbox)
    assert report["ok"], report["summary"]
    sent = Counter(s.message_id.strip("<>") for s in samples if s.name == "send" and s.message_id)
    delivered = Counter(m.message["Message-ID"].strip("<>") for m in received)
    assert len(sent) == FLOWS
    assert delivered == sent  # each send's message arrived once, and nothing else arrived
