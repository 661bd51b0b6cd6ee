"""A company's template renders with no write lock held, so other companies keep working.

On SQLite a write transaction locks the whole database. Before, a send composed
(and rendered its template, up to the render time limit) inside its write
transaction, so every other company's requests waited and then failed with
"database is locked". Here company B's render is held still, deterministically,
while company A writes and reads through the API: A must be answered while B's
render is still running, and B's email must still be queued once afterwards.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

import httpx

from docmail.templates.engine import RenderedEmail, TemplateEngine, TemplateSource
from tests.support.app import Tenant, make_runtime, make_tenant

API = "/api/v1"
PDF = base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()


def _invoice(tenant: Tenant, number: str) -> int:
    def post(path: str, body: dict[str, Any]) -> httpx.Response:
        answer = tenant.client.post(f"{API}{path}", json=body)
        assert answer.status_code in (200, 201, 202), answer.text
        return answer

    post(
        "/accounts",
        {
            "name": "Mail",
            "host": "127.0.0.1",
            "port": 1,
            "security": "none",
            "from_email": f"facturas@{number.lower()}.example.com",
            "is_default": True,
        },
    )
    post("/parties", {"code": "C1", "name": "Cliente", "email": "pagos@cliente.example.com"})
    made = post(
        "/documents",
        {
            "type": "invoice",
            "number": number,
            "party_code": "C1",
            "issue_date": "2026-12-01",
            "total": "10.00",
            "currency": "MXN",
            "status": "stamped",
        },
    )
    return int(made.json()["id"])


class HeldRender:
    """Wraps the engine: a render for ``company`` waits until released."""

    def __init__(self, engine: TemplateEngine, company: str) -> None:
        self._render = engine.render
        self._company = company
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(
        self, source: TemplateSource, context: dict[str, Any], locale: str
    ) -> RenderedEmail:
        if context.get("company", {}).get("name") == self._company:
            self.entered.set()
            assert self.release.wait(20), "the test never released the render"
        return self._render(source, context, locale)


def test_other_companies_write_and_read_while_one_companys_template_renders(
    sqlite_template: Path, tmp_path: Path
) -> None:
    target = tmp_path / "db.sqlite3"
    target.write_bytes(sqlite_template.read_bytes())
    runtime = make_runtime(f"sqlite:///{target}", tmp_path / "data")
    alfa, beta = make_tenant(runtime, "Alfa SA"), make_tenant(runtime, "Beta SA")
    _invoice(alfa, "A-1")
    beta_doc = _invoice(beta, "B-1")
    held = HeldRender(runtime.templates, "Beta SA")
    runtime.templates.render = held  # type: ignore[method-assign]

    answers: dict[str, httpx.Response] = {}
    sending = threading.Thread(
        target=lambda: answers.update(
            beta=beta.client.post(f"{API}/documents/{beta_doc}/send", json={})
        )
    )
    sending.start()
    try:
        assert held.entered.wait(10), "B's render never started"
        writing = threading.Thread(
            target=lambda: answers.update(
                write=alfa.client.post(
                    f"{API}/parties", json={"code": "C2", "name": "Otro cliente"}
                ),
                read=alfa.client.get(f"{API}/documents"),
            )
        )
        writing.start()
        writing.join(10)
        assert not writing.is_alive(), "A waited for B's render (the write lock was held)"
        assert not held.release.is_set() and sending.is_alive()  # B is still rendering
    finally:
        held.release.set()
        sending.join(20)

    assert answers["write"].status_code == 201, answers["write"].text
    assert answers["read"].status_code == 200
    assert answers["beta"].status_code == 202, answers["beta"].text
    messages = beta.client.get(f"{API}/messages").json()["items"]
    assert len(messages) == 1 and messages[0]["state"] == "queued"
