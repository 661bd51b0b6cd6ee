"""docmail against raw smtplib and django-post_office, in one run, as ratios.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python -m bench.throughput [--messages 2000] [--large 100000] [--no-postgres]

Every tool sends the same ~100 KB emails (HTML + text from one template, a
unique 60 KB PDF and 8 KB XML each: bench/material.py) to the same aiosmtpd
server on 127.0.0.1, which runs in its own process (bench/sink.py):

1. baseline: raw ``smtplib`` on one reused connection sending a prebuilt message;
2. peer: django-post_office, ``mail.send`` per email + ``send_queued_mail``, own SQLite;
3. docmail: documents created and queued through the service layer and through
   the HTTP API, delivered by ``docmail worker`` processes, on SQLite and on
   PostgreSQL (1 and 2 workers); every state change committed;
4. memory: peak RSS while a batch of 1,000 and of ``--large`` documents is stored,
   expanded and sent (fresh processes, so each peak is that phase's own).

Prints a table and writes bench/results/latest.json. Rates are messages (or
documents) per second; ratios compare with what was measured in this same run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import smtplib
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from bench import docmail_phases as phases
from bench import material
from bench.sink import Sink

RESULTS = Path(__file__).parent / "results" / "latest.json"


def in_child(function: Callable[..., Any], *args: Any) -> Any:
    """Run in a fresh process (its own peak memory, its own GIL); errors come back here."""
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def baseline(sink: Sink, count: int) -> dict[str, Any]:
    raw = material.prebuilt_message()
    before = sink.count
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", sink.port) as client:
        for _ in range(count):
            client.sendmail(material.SENDER, [material.RECIPIENT], raw)
    sink.wait_for(before + count)
    seconds = time.perf_counter() - started
    return {"delivery_per_s": count / seconds, "message_bytes": len(raw)}


def post_office(sink: Sink, count: int, processes: int = 1) -> dict[str, Any]:
    from bench import peer_post_office

    before = sink.count
    with tempfile.TemporaryDirectory() as directory:
        result = in_child(peer_post_office.run, sink.port, count, directory, processes)
    if sink.count - before != count or result["sent"] != count:
        raise RuntimeError(f"post_office sent {result['sent']}, the sink got {sink.count - before}")
    return _rates(result["enqueue_seconds"], result["delivery_seconds"], count, result)


def _rates(enqueue: float, delivery: float, count: int, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "enqueue_per_s": count / enqueue,
        "delivery_per_s": count / delivery,
        "end_to_end_per_s": count / (enqueue + delivery),
        "peak_rss_mb": extra.get("peak_rss_mb"),
    }


def _config(url: str | None, directory: str) -> dict[str, Any]:
    return {
        "data_dir": directory,
        "database_url": url or f"sqlite:///{directory}/docmail.sqlite3",
        "secret_key": Fernet.generate_key().decode(),
    }


def docmail_run(
    sink: Sink, count: int, *, url: str | None, via: str, workers: int
) -> dict[str, Any]:
    """Set up a company, enqueue ``count`` documents ``via`` service/api, deliver them."""
    with tempfile.TemporaryDirectory() as directory:
        config = _config(url, directory)
        info = in_child(phases.set_up, config, sink.port)
        if via == "service":
            queued = in_child(phases.enqueue_service, config, info["company_id"], 0, count)
        else:
            queued = phases.enqueue_api(config, info["token"], 0, count)
        before, distinct = sink.count, sink.distinct
        delivered = phases.deliver(config, workers, count)
        if sink.count - before != count or sink.distinct - distinct != count:
            raise RuntimeError(f"docmail: the sink got {sink.count - before} of {count}")
    result = _rates(queued["seconds"], delivered["seconds"], count, delivered)
    result["enqueue_peak_rss_mb"] = queued.get("peak_rss_mb")
    return result


def batch_memory(sink: Sink, count: int, url: str | None) -> dict[str, Any]:
    """Peak RSS of storing one batch of ``count`` documents and of the worker sending it."""
    with tempfile.TemporaryDirectory() as directory:
        config = _config(url, directory)
        info = in_child(phases.set_up, config, sink.port)
        ids = in_child(phases.create_only, config, info["company_id"], 0, count)
        started = in_child(phases.start_big_batch, config, info["company_id"], ids)
        delivered = phases.deliver(config, 1, count)
    return {
        "documents": count,
        "request_peak_rss_mb": started["peak_rss_mb"],
        "worker_peak_rss_mb": delivered["peak_rss_mb"],
        "delivery_per_s": count / delivered["seconds"],
    }


def _postgres_url() -> str | None:
    from tests.support.postgres import find_postgres

    server, how = find_postgres()
    if server is None:
        print(f"!!! PostgreSQL runs skipped: {how}")
        return None
    return server.create_database()


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.messages
    results: dict[str, Any] = {"messages": n, "machine": platform.machine()}
    with Sink() as sink:
        base = baseline(sink, n)
        results["baseline_smtplib"] = base
        print(f"baseline raw smtplib: {base['delivery_per_s']:.0f} msg/s", flush=True)
        results["post_office"] = post_office(sink, n)
        print(f"post_office: {results['post_office']}", flush=True)
        results["post_office_2p"] = post_office(sink, n, processes=2)
        print(f"post_office, 2 processes: {results['post_office_2p']}", flush=True)
        runs: dict[str, Any] = {}
        for workers in (1, 2):
            key = f"sqlite_service_{workers}w"
            runs[key] = docmail_run(sink, n, url=None, via="service", workers=workers)
            print(f"docmail {key}: {runs[key]}", flush=True)
        runs["sqlite_api_1w"] = docmail_run(sink, n, url=None, via="api", workers=1)
        print(f"docmail sqlite api: {runs['sqlite_api_1w']}", flush=True)
        if not args.no_postgres:
            for workers in (1, 2):
                url = _postgres_url()
                if url:
                    key = f"postgresql_service_{workers}w"
                    runs[key] = docmail_run(sink, n, url=url, via="service", workers=workers)
                    print(f"docmail {key}: {runs[key]}", flush=True)
        results["docmail"] = runs
        small = batch_memory(sink, 1000, None)
        large = batch_memory(sink, args.large, None)
        results["batch_memory"] = {"small": small, "large": large}
    results["ratios"] = ratios(results)
    return results


def ratios(results: dict[str, Any]) -> dict[str, float]:
    base = results["baseline_smtplib"]["delivery_per_s"]
    peer = results["post_office"]
    runs = results["docmail"]
    main = runs["sqlite_service_1w"]
    peer2, main2 = results["post_office_2p"], runs["sqlite_service_2w"]
    out = {
        "delivery_ratio_vs_smtplib": main["delivery_per_s"] / base,
        # Like for like: one sending process each, then two each.
        "end_to_end_ratio_vs_post_office": main["end_to_end_per_s"] / peer["end_to_end_per_s"],
        "end_to_end_ratio_vs_post_office_2_senders": main2["end_to_end_per_s"]
        / peer2["end_to_end_per_s"],
        "enqueue_ratio_vs_post_office": main["enqueue_per_s"] / peer["enqueue_per_s"],
        "post_office_delivery_ratio_vs_smtplib": peer["delivery_per_s"] / base,
        "enqueue_service_sqlite_docs_per_s": main["enqueue_per_s"],
    }
    for key, run in runs.items():
        out[f"delivery_ratio_vs_smtplib_{key}"] = run["delivery_per_s"] / base
    memory = results["batch_memory"]
    for side in ("request", "worker"):
        small, large = (
            memory["small"][f"{side}_peak_rss_mb"],
            memory["large"][f"{side}_peak_rss_mb"],
        )
        out[f"batch_memory_ratio_{side}"] = large / small
    return out


def print_table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    base = results["baseline_smtplib"]["delivery_per_s"]
    table = Table(title=f"{results['messages']} messages of ~100 KB to aiosmtpd on 127.0.0.1")
    table.add_column("tool", no_wrap=True)
    for column in ("enqueue/s", "delivery/s", "÷ smtplib", "end-to-end/s", "peak MB"):
        table.add_column(column, justify="right")
    table.add_row("raw smtplib (baseline)", "-", f"{base:.0f}", "1.00", "-", "-")
    rows = [
        ("django-post_office, 1 process", results["post_office"]),
        ("django-post_office, 2 processes", results["post_office_2p"]),
        *((f"docmail {name}", run) for name, run in results["docmail"].items()),
    ]
    for name, run in rows:
        table.add_row(
            name,
            f"{run['enqueue_per_s']:.0f}",
            f"{run['delivery_per_s']:.0f}",
            f"{run['delivery_per_s'] / base:.2f}",
            f"{run['end_to_end_per_s']:.0f}",
            f"{run['peak_rss_mb']:.0f}",
        )
    console = Console(width=120)
    console.print(table)
    for key, value in results["ratios"].items():
        console.print(f"{key}: {value:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--large", type=int, default=100_000, help="documents in the big batch")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = run(args)
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)


if __name__ == "__main__":
    main()
