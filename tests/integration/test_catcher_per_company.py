"""The demo mail catcher keeps each company's mail apart.

One ``docmail serve --demo`` may hold several companies; before, every admin read
every caught message. Now each caught message belongs to the company whose outbox
sent it (found by its Message-ID) and only that company's admins see it; mail no
outbox sent belongs to nobody.
"""

from __future__ import annotations

import base64
from pathlib import Path

from docmail.adapters.smtp.catcher import CaughtEnvelope, MailCatcher
from docmail.cli.server import _store_caught
from docmail.worker.worker import Worker
from tests.support.app import Tenant, make_runtime, make_tenant

API = "/api/v1"
PDF = base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()


def _send_one(tenant: Tenant, port: int, tag: str) -> None:
    def post(path: str, body: dict[str, object]) -> None:
        answer = tenant.client.post(f"{API}{path}", json=body)
        assert answer.status_code in (201, 202), answer.text

    post(
        "/accounts",
        {
            "name": "Demo",
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "from_email": f"facturas@{tag}.example.com",
            "is_default": True,
        },
    )
    post("/parties", {"code": "C1", "name": f"Cliente {tag}", "email": f"pagos@{tag}.example.com"})
    post(
        "/documents",
        {
            "type": "invoice",
            "number": f"{tag}-1",
            "party_code": "C1",
            "issue_date": "2026-12-01",
            "total": "10.00",
            "currency": "MXN",
            "status": "stamped",
        },
    )
    documents = tenant.client.get(f"{API}/documents").json()["items"]
    post(f"/documents/{documents[0]['id']}/send", {})


def test_each_company_sees_only_the_mail_its_own_outbox_sent(
    database_url: str, tmp_path: Path
) -> None:
    runtime = make_runtime(database_url, tmp_path / "data")
    alfa, beta = make_tenant(runtime, "Alfa SA"), make_tenant(runtime, "Beta SA")
    with MailCatcher(_store_caught(runtime), port=0) as catcher:
        _send_one(alfa, catcher.port, "alfa")
        _send_one(beta, catcher.port, "beta")
        assert Worker(runtime, "catcher-test").drain() == 2
        _store_caught(runtime)(
            CaughtEnvelope(
                "x@stranger.example.com",
                ["y@z.example.com"],
                b"Subject: stray\r\n\r\nhi\r\n",
                "stray",
                "",
            )
        )

    seen = {}
    for tag, tenant in (("alfa", alfa), ("beta", beta)):
        items = tenant.client.get(f"{API}/catcher/messages").json()["items"]
        seen[tag] = [item["mail_from"] for item in items]
    assert seen == {"alfa": ["facturas@alfa.example.com"], "beta": ["facturas@beta.example.com"]}
    beta_id = beta.client.get(f"{API}/catcher/messages").json()["items"][0]["id"]
    assert alfa.client.get(f"{API}/catcher/messages/{beta_id}/raw").status_code == 404
    assert beta.client.get(f"{API}/catcher/messages/{beta_id}/raw").status_code == 200
