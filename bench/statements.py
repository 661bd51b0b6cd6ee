"""Statement rendering benchmark, as a ratio to a baseline measured in the same run.

    .venv/bin/python -m bench.statements [--parties 20] [--documents 40]

Baseline: WeasyPrint rendering a trivial one-line page. Measured: building and
printing a statement (database read, aging, HTML, PDF) for each of N parties
with M open documents each. The goal is under a second per party; the ratio
says what the statement costs beyond WeasyPrint's fixed cost per page.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from docmail.adapters.db.engine import make_engine
from docmail.adapters.db.schema import migrate
from docmail.adapters.pdf import html_to_pdf
from docmail.services.automation_statements import render_statement
from docmail.services.documents import create_document
from docmail.services.inputs import DocumentIn
from tests.integration.test_automation_runs import PartySpec, add_party, company
from tests.support.app import make_runtime


def _baseline(rounds: int) -> float:
    html_to_pdf("<p>warm-up</p>")
    started = time.perf_counter()
    for _ in range(rounds):
        html_to_pdf("<html><body><p>Hello</p></body></html>")
    return (time.perf_counter() - started) / rounds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parties", type=int, default=20)
    parser.add_argument("--documents", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        runtime = make_runtime(url, Path(tmp) / "data")
        actor = company(runtime)
        as_of = date(2026, 12, 31)
        for p in range(args.parties):
            add_party(runtime, actor, PartySpec(f"P{p}", True, False, True))
            for d in range(args.documents):
                due = as_of - timedelta(days=(d * 7) % 150)
                create_document(
                    runtime,
                    actor,
                    DocumentIn.model_validate(
                        {
                            "type": "credit_note" if d % 9 == 0 else "invoice",
                            "number": f"P{p}-{d}",
                            "party_code": f"P{p}",
                            "total": f"{100 + d}.50",
                            "currency": "MXN",
                            "due_date": due.isoformat(),
                        }
                    ),
                )
        baseline = _baseline(args.parties)
        started = time.perf_counter()
        for p in range(args.parties):
            render_statement(runtime, actor, f"P{p}", as_of)
        per_party = (time.perf_counter() - started) / args.parties
        runtime.engine.dispose()
    print(f"baseline trivial page: {baseline * 1000:.1f} ms")
    print(f"statement per party ({args.documents} documents): {per_party * 1000:.1f} ms")
    print(f"ratio: {per_party / baseline:.2f}x; under one second: {per_party < 1.0}")


if __name__ == "__main__":
    main()
