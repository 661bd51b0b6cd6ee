"""An open-loop load generator for compose + send (asyncio + httpx), run as its own process.

    python -m bench.load_driver CONFIG.json SAMPLES.json

Open model: flow ``i`` starts at ``t0 + i / rate`` whatever happened to the
earlier ones, so a slow server faces a growing number of requests in flight
instead of a politely waiting client. One flow is what the send dialog and an
ERP do: ``GET /documents/{id}/compose``, then ``POST /documents/{id}/send``
with the composed recipients and subject and an ``Idempotency-Key``.

The config (see ``DriverConfig``) and the samples are JSON, so the harness
(bench/load_harness.py) and the locust driver (bench/locustfile.py) share them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

API = "/api/v1"
ERROR_TEXT = 300  # characters of an error body kept in a sample


@dataclass(frozen=True)
class DriverConfig:
    base_url: str  # http://127.0.0.1:PORT, nothing else
    token: str
    document_ids: list[int]
    rate: float  # flows started per second
    seconds: float
    key_prefix: str  # Idempotency-Keys are f"{key_prefix}-{i}"
    timeout: float = 10.0  # per HTTP request; a timeout counts as an error
    grace: float = 11.0  # how long flows still running after the schedule may take (> timeout)
    replay_every: int = 0  # every Nth flow repeats its send with the same key (0: never)

    @classmethod
    def load(cls, path: Path) -> DriverConfig:
        return cls(**json.loads(path.read_text()))

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))


@dataclass
class Sample:
    """One HTTP request: times are seconds from the start of the schedule."""

    name: str  # "compose", "send" or "replay"
    flow: int
    scheduled: float  # when the flow was due to start
    started: float
    latency: float
    status: int  # 0: no HTTP answer (timeout, refused, reset)
    error: str | None = None
    message_id: str | None = None  # the send's Message-ID (sends and replays)
    key: str | None = None


def check_loopback(base_url: str) -> None:
    """This generator only ever talks to a server on this machine."""
    host = httpx.URL(base_url).host
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to load {host!r}: only 127.0.0.1 is allowed")


def send_body(composed: dict[str, Any]) -> dict[str, Any]:
    """What the send dialog posts back: the (unchanged) recipients and subject."""
    return {"to": composed["to"], "cc": composed["cc"], "subject": composed["subject"]}


def error_of(status: int, text: str) -> str | None:
    if 200 <= status < 300:
        return None
    return f"HTTP {status}: {text[:ERROR_TEXT]}"


@dataclass
class _Run:
    config: DriverConfig
    client: httpx.AsyncClient
    t0: float
    samples: list[Sample] = field(default_factory=list)

    def now(self) -> float:
        return time.perf_counter() - self.t0

    async def request(
        self, name: str, flow: int, scheduled: float, method: str, url: str, **kw: Any
    ) -> tuple[Sample, Any]:
        started = self.now()
        try:
            answer = await self.client.request(method, url, **kw)
        except asyncio.CancelledError:  # still unanswered when the grace period ended
            sample = Sample(name, flow, scheduled, started, self.now() - started, 0)
            sample.error = f"no answer {self.config.grace:g} s after the schedule ended"
            self.samples.append(sample)
            raise
        except httpx.HTTPError as exc:
            sample = Sample(name, flow, scheduled, started, self.now() - started, 0)
            sample.error = f"{type(exc).__name__}: {exc}"[:ERROR_TEXT]
            self.samples.append(sample)
            return sample, None
        latency = self.now() - started
        sample = Sample(name, flow, scheduled, started, latency, answer.status_code)
        sample.error = error_of(answer.status_code, answer.text)
        self.samples.append(sample)
        return sample, answer.json() if sample.error is None else None

    async def flow(self, i: int, scheduled: float) -> None:
        cfg = self.config
        doc = cfg.document_ids[i % len(cfg.document_ids)]
        compose, composed = await self.request(
            "compose", i, scheduled, "GET", f"{API}/documents/{doc}/compose"
        )
        if compose.error:
            return
        key = f"{cfg.key_prefix}-{i}"
        send_kw = {"json": send_body(composed), "headers": {"Idempotency-Key": key}}
        url = f"{API}/documents/{doc}/send"
        for name in (
            ("send", "replay") if cfg.replay_every and i % cfg.replay_every == 0 else ("send",)
        ):
            sample, queued = await self.request(name, i, scheduled, "POST", url, **send_kw)
            sample.key = key
            if queued is not None:
                sample.message_id = queued["message_id"]


async def drive(config: DriverConfig) -> list[Sample]:
    """Start ``rate * seconds`` flows on schedule; wait for them at most ``grace`` after."""
    check_loopback(config.base_url)
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
    headers = {"Authorization": f"Bearer {config.token}"}
    async with httpx.AsyncClient(
        base_url=config.base_url, headers=headers, limits=limits, timeout=config.timeout
    ) as client:
        run = _Run(config, client, time.perf_counter())
        tasks = []
        for i in range(round(config.rate * config.seconds)):
            due = i / config.rate
            await asyncio.sleep(max(0.0, due - run.now()))
            tasks.append(asyncio.create_task(run.flow(i, due)))
        _, late = await asyncio.wait(tasks, timeout=config.grace) if tasks else (set(), set())
        for task in late:  # bounded: whatever is still running now is given up
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        return run.samples


def main() -> None:
    config = DriverConfig.load(Path(sys.argv[1]))
    samples = asyncio.run(drive(config))
    Path(sys.argv[2]).write_text(json.dumps([asdict(s) for s in samples]))


if __name__ == "__main__":
    main()
