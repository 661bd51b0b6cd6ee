"""The locust driver of bench/load.py: the same open-loop compose + send as bench/load_driver.py.

Run by the harness (bench/load_harness.py) as

    python -m locust -f bench/locustfile.py --headless --host http://127.0.0.1:PORT \\
        --users 1 --load-config CONFIG.json --load-samples SAMPLES.json ...

Locust's users are a closed model (each waits for its answer before the next
request), so one user here is only a scheduler: it spawns one greenlet per flow
at ``t0 + i / rate`` and never waits for answers before starting the next. The
samples are written in bench/load_driver.py's format, so both drivers are
summarised by the same code; locust's own statistics are printed as well.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, events, task

from bench.load_driver import API, DriverConfig, Sample, check_loopback, error_of, send_body


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--load-config", default="", help="bench.load_driver.DriverConfig JSON")
    parser.add_argument("--load-samples", default="", help="where to write the samples")


class ComposeAndSend(FastHttpUser):
    concurrency = 1000  # connections this one scheduler may hold open at once
    network_timeout = 10.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.config = DriverConfig.load(Path(options.load_config))
        check_loopback(self.config.base_url)
        self.samples_path = Path(options.load_samples)
        self.samples: list[Sample] = []
        self.t0 = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def request(
        self, name: str, flow: int, scheduled: float, method: str, url: str, **kw: Any
    ) -> tuple[Sample, Any]:
        started = self.now()
        headers = {"Authorization": f"Bearer {self.config.token}", **kw.pop("headers", {})}
        try:
            answer = self.client.request(method, url, name=name, headers=headers, **kw)
        except gevent.GreenletExit:
            sample = Sample(name, flow, scheduled, started, self.now() - started, 0)
            sample.error = f"no answer {self.config.grace:g} s after the schedule ended"
            self.samples.append(sample)
            raise
        sample = Sample(name, flow, scheduled, started, self.now() - started, answer.status_code)
        if answer.status_code == 0:
            problem = getattr(answer, "error", None)  # what FastHttpSession caught
            sample.error = f"{type(problem).__name__}: {problem}"[:300]
        else:
            sample.error = error_of(answer.status_code, answer.text or "")
        self.samples.append(sample)
        return sample, answer.json() if sample.error is None else None

    def flow(self, i: int, scheduled: float) -> None:
        cfg = self.config
        doc = cfg.document_ids[i % len(cfg.document_ids)]
        compose, composed = self.request(
            "compose", i, scheduled, "GET", f"{API}/documents/{doc}/compose"
        )
        if compose.error:
            return
        key = f"{cfg.key_prefix}-{i}"
        url = f"{API}/documents/{doc}/send"
        names = ("send", "replay") if cfg.replay_every and i % cfg.replay_every == 0 else ("send",)
        for name in names:
            sample, queued = self.request(
                name, i, scheduled, "POST", url, json=send_body(composed),
                headers={"Idempotency-Key": key},
            )  # fmt: skip
            sample.key = key
            if queued is not None:
                sample.message_id = queued["message_id"]

    @task
    def schedule(self) -> None:
        cfg = self.config
        self.t0 = time.perf_counter()
        flows = []
        for i in range(round(cfg.rate * cfg.seconds)):
            due = i / cfg.rate
            gevent.sleep(max(0.0, due - self.now()))
            flows.append(gevent.spawn(self.flow, i, due))
        gevent.joinall(flows, timeout=cfg.grace)
        gevent.killall([g for g in flows if not g.dead], block=True, timeout=5)
        self.samples_path.write_text(json.dumps([asdict(s) for s in self.samples]))
        self.environment.runner.quit()
