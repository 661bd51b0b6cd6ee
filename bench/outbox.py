"""Outbox benchmarks, as ratios to baselines measured in the same run.

    .venv/bin/python -m bench.outbox [--messages 2000] [--postgres]

1. Delivery: one docmail worker draining N queued messages to a local aiosmtpd
   server, against a baseline of raw smtplib sending the same N prebuilt
   messages over one reused connection to the same server. The ratio says what
   the outbox (claims, leases, per-message commits, MIME building) costs.
2. Batch memory: peak Python memory (tracemalloc) while expanding a batch of
   N documents and of 4N documents. Streaming in chunks means the ratio stays
   near 1 instead of growing 4x.
"""

from __future__ import annotations

import argparse
import smtplib
import tempfile
import time
import tracemalloc
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import insert

from docmail.adapters.db import tables as t
from docmail.adapters.db.engine import make_engine, migrate
from docmail.services.batches import expand_batch, start_batch
from docmail.services.inputs import BatchIn
from docmail.services.runtime import Runtime
from docmail.worker.worker import Worker
from tests.support.app import make_runtime
from tests.support.outbox import company_with_account
from tests.support.smtp_server import SmtpTestServer


def _database(postgres: bool, directory: Path) -> str:
    if not postgres:
        url = f"sqlite:///{directory / 'bench.sqlite3'}"
    else:
        from tests.support.postgres import find_postgres

        server, how = find_postgres()
        if server is None:
            raise SystemExit(f"no PostgreSQL: {how}")
        url = server.create_database()
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def _baseline_smtplib(server: SmtpTestServer, count: int) -> float:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@x.mx", "b@y.mx", "Factura"
    message.set_content("Factura adjunta.\n")
    raw = message.as_bytes()
    started = time.perf_counter()
    with smtplib.SMTP(server.host, server.port) as client:
        for _ in range(count):
            client.sendmail("a@x.mx", ["b@y.mx"], raw)
    server.wait_for(count, timeout=120)
    return count / (time.perf_counter() - started)


def _bulk_documents(runtime: Runtime, company_id: int, party_id: int, count: int) -> list[int]:
    rows = [
        {
            "company_id": company_id,
            "doc_type": "invoice",
            "number": f"B-{i}",
            "party_id": party_id,
            "status": "issued",
            "data": {},
            "created_at": runtime.clock(),
            "updated_at": runtime.clock(),
        }
        for i in range(count)
    ]
    with runtime.engine.begin() as conn:
        conn.execute(insert(t.Document), rows)
    with runtime.session() as session:
        return list(
            session.scalars(
                t.Document.__table__.select()
                .with_only_columns(t.Document.id)
                .where(t.Document.number.like("B-%"))
            )
        )


def _queue(runtime: Runtime, count: int, port: int) -> tuple[int, int]:
    actor, _ = company_with_account(runtime, port)
    with runtime.session() as session:
        party_id = session.query(t.Party.id).scalar()
    ids = _bulk_documents(runtime, actor.company_id, party_id, count)
    batch_id, _ = start_batch(runtime, actor, BatchIn(document_ids=ids))
    expand_batch(runtime, batch_id)
    return actor.company_id, batch_id


def _docmail_drain(runtime: Runtime, server: SmtpTestServer, count: int) -> float:
    server.reset()
    worker = Worker(runtime, "bench")
    started = time.perf_counter()
    worker.drain(max_rounds=100_000)
    server.wait_for(count, timeout=300)
    return count / (time.perf_counter() - started)


def _batch_peak(postgres: bool, count: int, port: int) -> int:
    with tempfile.TemporaryDirectory() as directory:
        runtime = make_runtime(_database(postgres, Path(directory)), Path(directory))
        actor, _ = company_with_account(runtime, port)
        with runtime.session() as session:
            party_id = session.query(t.Party.id).scalar()
        ids = _bulk_documents(runtime, actor.company_id, party_id, count)
        batch_id, _ = start_batch(runtime, actor, BatchIn(document_ids=ids))
        tracemalloc.start()
        expand_batch(runtime, batch_id)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        runtime.engine.dispose()
        return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    backend = "postgresql" if args.postgres else "sqlite"
    with SmtpTestServer("none") as server, tempfile.TemporaryDirectory() as directory:
        baseline = _baseline_smtplib(server, args.messages)
        runtime = make_runtime(_database(args.postgres, Path(directory)), Path(directory))
        _queue(runtime, args.messages, server.port)
        docmail = _docmail_drain(runtime, server, args.messages)
        runtime.engine.dispose()
        small = _batch_peak(args.postgres, args.messages // 4, server.port)
        large = _batch_peak(args.postgres, args.messages, server.port)
    print(f"backend: {backend}, messages: {args.messages}")
    print(f"baseline raw smtplib, one connection: {baseline:8.1f} msg/s")
    print(
        f"docmail worker drain:                 {docmail:8.1f} msg/s  "
        f"ratio {docmail / baseline:.2f} of baseline"
    )
    print(
        f"batch expansion peak memory: {args.messages // 4} docs {small / 1e6:.1f} MB, "
        f"{args.messages} docs {large / 1e6:.1f} MB, ratio {large / small:.2f} (4x the documents)"
    )


if __name__ == "__main__":
    main()
