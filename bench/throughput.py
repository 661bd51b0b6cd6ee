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

End-to-end is measured two ways for both tools: sequential (enqueue everything,
then deliver: messages / (enqueue + delivery time)) and pipelined (the senders
already running while the emails are enqueued, as ``docmail serve`` and
post_office's Celery or uWSGI integrations run: first email in to last out).

The headline trio (smtplib, post_office, docmail on SQLite with 1 worker) runs
``--repeats`` times interleaved and reports medians of per-round ratios: this
shared 2-core machine drifts by ±10 % between minutes. Prints a table and writes
bench/results/latest.json. Rates are messages (or documents) per second.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import smtplib
import statistics
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


def post_office(
    sink: Sink, count: int, processes: int = 1, pipelined: bool = False
) -> dict[str, Any]:
    from bench import peer_post_office

    before = sink.count
    with tempfile.TemporaryDirectory() as directory:
        result = in_child(peer_post_office.run, sink.port, count, directory, processes, pipelined)
    if sink.count - before != count or result["sent"] != count:
        raise RuntimeError(f"post_office sent {result['sent']}, the sink got {sink.count - before}")
    rates = _rates(result["enqueue_seconds"], result["delivery_seconds"], count, result)
    if pipelined:
        rates["delivery_per_s"] = None  # not a phase of its own when pipelined
    return rates


def _rates(enqueue: float, delivery: float, count: int, extra: dict[str, Any]) -> dict[str, Any]:
    """Rates of a sequential run (all enqueued, then all delivered) or of a pipelined
    one (``delivery`` is then the part of the run after the last enqueue)."""
    return {
        "enqueue_per_s": count / enqueue,
        "delivery_per_s": count / delivery,
        "end_to_end_per_s": count / (enqueue + delivery),
        "peak_rss_mb": extra.get("peak_rss_mb"),
        "worker_cpu_ms_per_message": extra.get("worker_cpu_ms_per_message"),
    }


def _config(url: str | None, directory: str) -> dict[str, Any]:
    return {
        "data_dir": directory,
        "database_url": url or f"sqlite:///{directory}/docmail.sqlite3",
        "secret_key": Fernet.generate_key().decode(),
    }


def docmail_run(
    sink: Sink,
    count: int,
    *,
    url: str | None,
    via: str,
    workers: int,
    pipelined: bool = False,
) -> dict[str, Any]:
    """Set up a company, enqueue ``count`` documents ``via`` service/api, deliver them.

    Pipelined: the workers already poll while the documents are created (as under
    ``docmail serve``); end-to-end is then first document in to last message out.
    """
    with tempfile.TemporaryDirectory() as directory:
        config = _config(url, directory)
        info = in_child(phases.set_up, config, sink.port)
        before, distinct = sink.count, sink.distinct
        if pipelined:
            delivered = phases.deliver(config, workers, count, arriving_for=info["company_id"])
            queued = {"seconds": delivered["enqueue_seconds"]}
            delivered["seconds"] -= queued["seconds"]  # the part after the last enqueue
        else:
            if via == "service":
                queued = in_child(phases.enqueue_service, config, info["company_id"], 0, count)
            else:
                queued = phases.enqueue_api(config, info["token"], 0, count)
            delivered = phases.deliver(config, workers, count)
        if sink.count - before != count or sink.distinct - distinct != count:
            raise RuntimeError(f"docmail: the sink got {sink.count - before} of {count}")
    result = _rates(queued["seconds"], delivered["seconds"], count, delivered)
    result["enqueue_peak_rss_mb"] = queued.get("peak_rss_mb")
    if pipelined:
        result["delivery_per_s"] = None  # not a phase of its own when pipelined
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


def paired_rounds(sink: Sink, n: int, repeats: int) -> list[dict[str, Any]]:
    """The headline trio (smtplib, post_office, docmail SQLite 1 worker), ``repeats`` times.

    Interleaved, so drift on this shared machine hits all three alike; each
    round's ratios are computed within the round and the median is reported.
    """
    rounds = []
    for number in range(repeats):
        trio = {
            "baseline_smtplib": baseline(sink, n),
            "post_office": post_office(sink, n),
            "sqlite_service_1w": docmail_run(sink, n, url=None, via="service", workers=1),
        }
        rounds.append(trio)
        print(f"round {number + 1}: {json.dumps(trio)}", flush=True)
    return rounds


def with_baseline(
    sink: Sink, n: int, measure: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any
) -> dict[str, Any]:
    """``measure(...)`` with raw smtplib measured just before it: its own baseline."""
    base = baseline(sink, n)["delivery_per_s"]
    result = measure(*args, **kwargs)
    result["smtplib_per_s"] = base
    return result


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median across runs of one configuration."""
    return {
        key: statistics.median(run[key] for run in runs)
        if all(isinstance(run[key], int | float) for run in runs)
        else runs[0][key]
        for key in runs[0]
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.messages
    results: dict[str, Any] = {"messages": n, "machine": platform.machine()}
    with Sink() as sink:
        rounds = paired_rounds(sink, n, args.repeats)
        results["rounds"] = rounds
        results["baseline_smtplib"] = _median_run([r["baseline_smtplib"] for r in rounds])
        results["post_office"] = _median_run([r["post_office"] for r in rounds])
        peers = {"post_office_2p": (2, False), "post_office_pipelined": (1, True)}
        peers["post_office_pipelined_2p"] = (2, True)
        for key, (processes, pipelined) in peers.items():
            results[key] = with_baseline(sink, n, post_office, sink, n, processes, pipelined)
            print(f"{key}: {results[key]}", flush=True)
        runs: dict[str, Any] = {
            "sqlite_service_1w": _median_run([r["sqlite_service_1w"] for r in rounds])
        }
        others: dict[str, dict[str, Any]] = {
            "sqlite_service_2w": {"via": "service", "workers": 2},
            "sqlite_api_1w": {"via": "api", "workers": 1},
            "sqlite_pipelined_1w": {"via": "service", "workers": 1, "pipelined": True},
            "sqlite_pipelined_2w": {"via": "service", "workers": 2, "pipelined": True},
        }
        for key, options in others.items():
            runs[key] = with_baseline(sink, n, docmail_run, sink, n, url=None, **options)
            print(f"docmail {key}: {runs[key]}", flush=True)
        if not args.no_postgres:
            for workers in (1, 2):
                url = _postgres_url()
                if url:
                    key = f"postgresql_service_{workers}w"
                    runs[key] = with_baseline(
                        sink, n, docmail_run, sink, n, url=url, via="service", workers=workers
                    )
                    print(f"docmail {key}: {runs[key]}", flush=True)
        results["docmail"] = runs
        small = batch_memory(sink, 1000, None)
        large = batch_memory(sink, args.large, None)
        results["batch_memory"] = {"small": small, "large": large}
    results["ratios"] = ratios(results)
    return results


def _round_ratio(rounds: list[dict[str, Any]], figure: Callable[[dict[str, Any]], float]) -> float:
    return statistics.median(figure(r) for r in rounds)


def ratios(results: dict[str, Any]) -> dict[str, float]:
    base = results["baseline_smtplib"]["delivery_per_s"]
    rounds = results["rounds"]
    runs = results["docmail"]
    main = runs["sqlite_service_1w"]

    def e2e(run: dict[str, Any]) -> float:
        return float(run["end_to_end_per_s"])

    peers = [results[k] for k in ("post_office", "post_office_2p", "post_office_pipelined")]
    peers.append(results["post_office_pipelined_2p"])
    out = {
        # Medians of per-round ratios (smtplib, post_office, docmail measured back to back).
        "delivery_ratio_vs_smtplib": _round_ratio(
            rounds,
            lambda r: (
                r["sqlite_service_1w"]["delivery_per_s"] / r["baseline_smtplib"]["delivery_per_s"]
            ),
        ),
        # Enqueue + delivery one after the other, one sending process each.
        "end_to_end_ratio_vs_post_office": _round_ratio(
            rounds, lambda r: e2e(r["sqlite_service_1w"]) / e2e(r["post_office"])
        ),
        "end_to_end_ratio_vs_post_office_2_senders": e2e(runs["sqlite_service_2w"])
        / e2e(results["post_office_2p"]),
        # Senders already running while documents arrive, one and two each.
        "end_to_end_pipelined_ratio_vs_post_office": e2e(runs["sqlite_pipelined_1w"])
        / e2e(results["post_office_pipelined"]),
        "end_to_end_pipelined_ratio_vs_post_office_2_senders": e2e(runs["sqlite_pipelined_2w"])
        / e2e(results["post_office_pipelined_2p"]),
        # Each tool's best way of running on this machine, whichever that is.
        "end_to_end_best_ratio_vs_post_office_best": max(
            e2e(r) for k, r in runs.items() if k.startswith("sqlite")
        )
        / max(e2e(p) for p in peers),
        "enqueue_ratio_vs_post_office": main["enqueue_per_s"]
        / results["post_office"]["enqueue_per_s"],
        "post_office_delivery_ratio_vs_smtplib": _round_ratio(
            rounds,
            lambda r: r["post_office"]["delivery_per_s"] / r["baseline_smtplib"]["delivery_per_s"],
        ),
        "enqueue_service_sqlite_docs_per_s": main["enqueue_per_s"],
    }
    for key, run in runs.items():
        if run["delivery_per_s"] is not None:
            own = run.get("smtplib_per_s") or base  # the run's own adjacent baseline
            out[f"delivery_ratio_vs_smtplib_{key}"] = run["delivery_per_s"] / own
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
        ("django-post_office, pipelined, 1 process", results["post_office_pipelined"]),
        ("django-post_office, pipelined, 2 processes", results["post_office_pipelined_2p"]),
        *((f"docmail {name}", run) for name, run in results["docmail"].items()),
    ]
    for name, run in rows:
        delivery = run["delivery_per_s"]
        table.add_row(
            name,
            f"{run['enqueue_per_s']:.0f}",
            "-" if delivery is None else f"{delivery:.0f}",
            "-" if delivery is None else f"{delivery / (run.get('smtplib_per_s') or base):.2f}",
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
    parser.add_argument(
        "--repeats", type=int, default=5, help="rounds of the headline trio (median reported)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = run(args)
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)


if __name__ == "__main__":
    main()
