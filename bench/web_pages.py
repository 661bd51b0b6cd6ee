"""Server time of the web pages on a large company: 10,000 documents and 50,000 messages.

Run: .venv/bin/python -m bench.web_pages [--requests N]
Each page is fetched N times through the FastAPI TestClient (in process); the
median and p95 are printed, and each median as a ratio to GET /api/v1/health
measured in the same run. PostgreSQL is used too when DOCMAIL_BENCH_POSTGRES_URL is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert

from docmail.adapters.db import tables as t
from docmail.adapters.db.engine import make_engine
from docmail.adapters.db.schema import migrate
from docmail.http.app import create_app
from docmail.services.companies import add_membership, create_company, create_user
from docmail.services.runtime import Role, Runtime
from docmail.web.sessions import COOKIE, start_session
from tests.support.app import make_runtime

DOCUMENTS, MESSAGES, PARTIES = 10_000, 50_000, 200
STATES = ("sent",) * 8 + ("failed", "queued")


def fill(runtime: Runtime) -> int:
    """Bulk-insert the data set; return the company id."""
    company_id = create_company(runtime, "Bench SA", country="MX").id
    now = datetime.now(UTC)
    with runtime.session() as session:
        account = t.MailAccount(
            company_id=company_id,
            name="main",
            host="127.0.0.1",
            port=25,
            security="none",
            from_email="f@bench.mx",
            is_default=True,
        )
        session.add(account)
        session.flush()
        session.execute(
            insert(t.Party),
            [
                {
                    "company_id": company_id,
                    "code": f"P{i:04d}",
                    "name": f"Cliente {i}",
                    "email": f"p{i}@bench.mx",
                    "language": "es",
                }
                for i in range(PARTIES)
            ],
        )
        session.execute(
            insert(t.Contact),
            [
                {
                    "company_id": company_id,
                    "party_id": i + 1,
                    "name": "Fin",
                    "roles": ["finance"],
                    "email": f"fin{i}@bench.mx",
                }
                for i in range(PARTIES)
            ],
        )
        session.execute(
            insert(t.Document),
            [
                {
                    "company_id": company_id,
                    "doc_type": "invoice",
                    "number": f"F-{i:06d}",
                    "party_id": 1 + i % PARTIES,
                    "issue_date": date(2026, 1, 1) + timedelta(days=i % 300),
                    "total": 100 + i,
                    "currency": "MXN",
                    "status": "stamped",
                    "data": {},
                }
                for i in range(DOCUMENTS)
            ],
        )
        session.execute(
            insert(t.Message),
            [
                {
                    "company_id": company_id,
                    "account_id": account.id,
                    "state": STATES[i % len(STATES)],
                    "from_email": "f@bench.mx",
                    "to": [f"fin{i % PARTIES}@bench.mx"],
                    "cc": [],
                    "bcc": [],
                    "subject": f"Factura F-{i % DOCUMENTS:06d}",
                    "body_html": "<p>Hola</p>",
                    "body_text": "Hola",
                    "message_id_header": f"<{i}@bench.mx>",
                    "date_header": now,
                    "attempts": 1,
                    "server_reply": "250 OK",
                }
                for i in range(MESSAGES)
            ],
        )
        session.execute(
            insert(t.MessageDocument),
            [{"message_id": i + 1, "document_id": 1 + i % DOCUMENTS} for i in range(MESSAGES)],
        )
    return company_id


def signed_in_client(runtime: Runtime, company_id: int) -> TestClient:
    user = create_user(runtime, "bench@bench.mx", "bench-password")
    add_membership(runtime, user.id, company_id, Role.ADMIN)
    client = TestClient(create_app(runtime))
    client.cookies.set(COOKIE, start_session(runtime, user.id, company_id))
    return client


PAGES = {
    "documents list": "/documents",
    "documents filtered": "/documents?status=stamped&sent=failed&party=cliente%2017&page=3",
    "documents by number": "/documents?number=F-0099",
    "document detail": "/documents/5000",
    "delivery log": "/log",
    "delivery log search": "/log?q=f-000123&state=sent",
    "message view": "/log/25000",
    "settings accounts": "/settings/accounts",
    "settings parties": "/settings/parties?page=4",
    "settings party": "/settings/parties/7",
    "settings types": "/settings/types",
    "settings templates": "/settings/templates",
    "template editor": "/settings/templates/invoice/es",
    "settings users": "/settings/users",
}


def timings(client: TestClient, path: str, n: int) -> list[float]:
    client.get(path)  # warm caches (templates, statements)
    out = []
    for _ in range(n):
        start = time.perf_counter()
        answer = client.get(path)
        out.append(time.perf_counter() - start)
        assert answer.status_code == 200, (path, answer.status_code)
    return out


def report(label: str, runtime: Runtime, n: int) -> None:
    started = time.perf_counter()
    company_id = fill(runtime)
    # A bulk fill leaves the planner without statistics; a live database has them
    # (autovacuum / ANALYZE), and without them PostgreSQL picks nested loops over
    # 50,000 messages. Measure the steady state.
    with runtime.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    print(f"\n{label}: filled in {time.perf_counter() - started:.1f} s (then ANALYZE)")
    client = signed_in_client(runtime, company_id)
    base = statistics.median(timings(client, "/api/v1/health", n))
    print(f"{'page':24} {'median ms':>10} {'p95 ms':>8} {'x health':>9}")
    print(f"{'GET /api/v1/health':24} {base * 1000:10.1f}")
    for name, path in PAGES.items():
        values = sorted(timings(client, path, n))
        median, p95 = statistics.median(values), values[int(0.95 * (len(values) - 1))]
        flag = "" if p95 < 0.3 else "  OVER 300 ms"
        print(f"{name:24} {median * 1000:10.1f} {p95 * 1000:8.1f} {median / base:9.1f}{flag}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        runtime = make_runtime(url, Path(tmp) / "data")
        report("SQLite", runtime, args.requests)
        runtime.engine.dispose()
        pg = os.environ.get("DOCMAIL_BENCH_POSTGRES_URL")
        if pg:
            engine = make_engine(pg)
            migrate(engine)
            engine.dispose()
            runtime = make_runtime(pg, Path(tmp) / "pg-data")
            report("PostgreSQL", runtime, args.requests)
            runtime.engine.dispose()


if __name__ == "__main__":
    main()
