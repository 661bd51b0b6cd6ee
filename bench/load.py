"""Load test of compose + send against a real server, worker and SMTP sink on 127.0.0.1.

    .venv/bin/python -m bench.load [--backend sqlite|postgresql|both] [--rates 5,10,20,40,80]
                                   [--seconds 20] [--driver locust|httpx]

For each backend: seed a company, an SMTP account pointing at an aiosmtpd sink,
parties and invoices with a PDF; start ``docmail serve --no-worker`` and
``docmail worker`` as processes; then, for each rate, start that many
compose + send flows per second for a fixed time (open model: on schedule,
whatever the answers) and measure. One flow is two HTTP requests: the compose
preview and the send with an Idempotency-Key (see bench/load_driver.py).

Per rate it reports the flows/s and HTTP requests/s achieved, p50/p95/p99 of
each request, errors (with the answers' and the server log's words), and the
CPU the server and worker used, and how fast mail reached the sink; then the
highest rate with p95 < 200 ms for both requests and no error, and what broke
first above it. A rate at which requests failed and fewer than half the flows
got through ends the run for that backend (higher rates would only fail
harder). Each request times out after 10 s (an error). At the end every send
must have reached the sink exactly once. The table is printed and the
numbers are written to bench/results/load.json. Needs the ``bench`` extra for
locust (``pip install -e '.[bench]'``); without it the asyncio + httpx driver
is used.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.load_harness import Harness, run_driver
from bench.load_stats import StepResult, check_deliveries, diagnose, summarise

P95_LIMIT_MS = 200.0
RESULTS = Path(__file__).resolve().parent / "results" / "load.json"


def database_url(backend: str, directory: Path) -> tuple[str, Any]:
    """A fresh database for the backend, and the PostgreSQL server to clean up (or None)."""
    if backend == "sqlite":
        return f"sqlite:///{directory / 'load.sqlite3'}", None
    from tests.support.postgres import find_postgres

    server, how = find_postgres()
    if server is None:
        raise SystemExit(f"no PostgreSQL for the load test: {how}")
    return server.create_database(), server


def run_step(harness: Harness, rate: float, seconds: float, driver: str, label: str) -> StepResult:
    """One fixed-rate step; the outbox is given time to drain before the next one."""
    processes = (harness.server, harness.worker)
    before = {p.name: p.cpu() for p in processes}
    delivered_before = len(harness.sink.messages)
    config = harness.driver_config(rate, seconds, key_prefix=f"{label}-{rate:g}")
    started = time.monotonic()
    samples = run_driver(config, harness.workdir, driver)
    wall = time.monotonic() - started
    cpu = {p.name: (p.cpu() - before[p.name]) / wall for p in processes}
    result = summarise(rate, seconds, samples, P95_LIMIT_MS)
    result.server_cpu, result.worker_cpu = cpu["server"], cpu["worker"]
    result.server_log = harness.server.log.problems()
    result.worker_log = harness.worker.log.problems()
    result.samples = samples
    result.delivered_per_s = (len(harness.sink.messages) - delivered_before) / wall
    drain_started = time.monotonic()
    idle = not {"queued", "sending", "retrying"} & set(harness.wait_outbox_idle(timeout=15))
    result.drain_seconds = time.monotonic() - drain_started if idle else -1.0
    return result


def run_backend(backend: str, rates: list[float], seconds: float, driver: str) -> dict[str, Any]:
    console = Console()
    with tempfile.TemporaryDirectory(prefix=f"docmail-load-{backend}-") as tmp:
        url, pg = database_url(backend, Path(tmp))
        try:
            with Harness(url, Path(tmp)) as harness:
                console.print(f"[bold]{backend}[/]: server {harness.base_url}, driver {driver}")
                warm = run_step(harness, 5, 2, driver, "warmup")
                steps = []
                for rate in rates:
                    steps.append(run_step(harness, rate, seconds, driver, "load"))
                    console.print(f"  {rate:g}/s done: {steps[-1].headline()}")
                    skipped = [f"{r:g}" for r in rates if r > rate]
                    if steps[-1].collapsed() and skipped:
                        console.print(f"  collapsed: higher rates ({', '.join(skipped)}) not run")
                        break
                samples = [s for step in (warm, *steps) for s in step.samples]
                outbox = dict(harness.wait_outbox_idle(timeout=60))
                deliveries = check_deliveries(samples, harness.sink.messages, harness.outbox())
        finally:
            if pg is not None:
                pg.stop()
    return {
        "steps": steps,
        "deliveries": deliveries,
        "outbox": outbox,
        **diagnose(steps, backend, P95_LIMIT_MS),
    }


def print_table(backend: str, outcome: dict[str, Any]) -> None:
    table = Table(title=f"compose + send on {backend} (1 flow = compose + send; p in ms)")
    for column in ("rate/s", "flows/s", "req/s", "compose p50/p95/p99", "send p50/p95/p99"):
        table.add_column(column, justify="right")
    for column in ("errors", "server CPU", "worker CPU", "sink msg/s", "drain s"):
        table.add_column(column, justify="right")
    for step in outcome["steps"]:
        c, s = step.latency_ms["compose"], step.latency_ms["send"]
        table.add_row(
            f"{step.rate:g}",
            f"{step.flows_per_s:.1f}",
            f"{step.requests_per_s:.1f}",
            f"{c['p50']:.0f} / {c['p95']:.0f} / {c['p99']:.0f}",
            f"{s['p50']:.0f} / {s['p95']:.0f} / {s['p99']:.0f}",
            str(step.errors),
            f"{step.server_cpu:.0%}",
            f"{step.worker_cpu:.0%}",
            f"{step.delivered_per_s:.1f}",
            "-" if step.drain_seconds < 0 else f"{step.drain_seconds:.1f}",
            style=None if step.passed else "red",
        )
    console = Console(width=max(Console().width, 132))  # the table needs the room
    console.print(table)
    best = outcome["best_rate"]
    console.print(
        f"highest rate with p95 < {P95_LIMIT_MS:g} ms and no error: {best or 'none'} flows/s"
    )
    console.print(f"what breaks first: {outcome['breaks_first']}")
    console.print(f"deliveries: {outcome['deliveries']['summary']}; outbox: {outcome['outbox']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--rates", default="5,10,20,40,80", help="flows per second, comma-separated"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each rate")
    has_locust = importlib.util.find_spec("locust") is not None
    parser.add_argument(
        "--driver", choices=["locust", "httpx"], default="locust" if has_locust else "httpx"
    )
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    started = time.monotonic()
    report: dict[str, Any] = {
        "command": "python -m bench.load " + " ".join(sys.argv[1:]),
        "driver": args.driver,
        "seconds_per_rate": args.seconds,
        "p95_limit_ms": P95_LIMIT_MS,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
            "python": platform.python_version(),
        },
        "backends": {},
    }
    for backend in backends:
        outcome = run_backend(backend, rates, args.seconds, args.driver)
        print_table(backend, outcome)
        report["backends"][backend] = {
            **outcome,
            "steps": [step.as_json() for step in outcome["steps"]],
        }
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=str) + "\n")
    Console().print(f"written {RESULTS} ({report['wall_seconds']} s)")


if __name__ == "__main__":
    main()
