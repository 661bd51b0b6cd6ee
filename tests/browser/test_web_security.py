"""Sign-in, CSRF, roles and session expiry through the FastAPI TestClient (no browser)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from docmail.adapters.db import tables as t
from docmail.http.app import create_app
from docmail.services.runtime import Runtime
from tests.browser.world import PASSWORD, WebWorld, build_world
from tests.support.app import make_runtime
from tests.support.web import csrf_of, sign_in


@pytest.fixture
def web(sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[Runtime, WebWorld]]:
    target = tmp_path / "web.sqlite3"
    target.write_bytes(sqlite_template.read_bytes())
    runtime = make_runtime(f"sqlite:///{target}", tmp_path / "data")
    yield runtime, build_world(runtime, smtp_port=1)
    runtime.engine.dispose()


def signed_in(runtime: Runtime, email: str) -> TestClient:
    return sign_in(runtime, email, PASSWORD)


csrf = csrf_of


def test_pages_need_a_session_and_send_the_browser_to_sign_in(web: tuple) -> None:
    runtime, _world = web
    client = TestClient(create_app(runtime))
    answer = client.get("/documents", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"


def test_a_login_without_its_form_token_is_refused(web: tuple) -> None:
    runtime, world = web
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    answer = client.post("/login", data={"email": world.admin, "password": PASSWORD})
    assert answer.status_code == 403
    assert "docmail_session" not in client.cookies


def test_the_session_cookie_is_http_only_and_same_site_lax(web: tuple) -> None:
    runtime, world = web
    client = TestClient(create_app(runtime))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    answer = client.post(
        "/login",
        data={"email": world.admin, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_a_post_with_a_wrong_csrf_token_changes_nothing(web: tuple) -> None:
    runtime, world = web
    client = signed_in(runtime, world.admin)
    answer = client.post(
        "/settings/users",
        data={"csrf_token": "forged", "email": "x@y.mx", "password": "12345678", "role": "admin"},
    )
    assert answer.status_code == 403
    assert "x@y.mx" not in client.get("/settings/users").text


def test_a_viewer_cannot_send_and_a_sender_cannot_open_settings(web: tuple) -> None:
    runtime, world = web
    viewer = signed_in(runtime, world.viewer)
    sent = viewer.post(
        f"/documents/{world.invoice_id}/send",
        data={"csrf_token": csrf(viewer), "to": "a@b.mx", "idem_key": "k"},
    )
    assert sent.status_code == 403
    assert viewer.get(f"/documents/{world.invoice_id}/send").status_code == 403
    sender = signed_in(runtime, world.sender)
    assert sender.get("/settings/accounts").status_code == 403
    assert sender.get("/catcher").status_code == 403


def test_an_expired_session_is_deleted_and_asks_to_sign_in_again(web: tuple) -> None:
    runtime, world = web
    client = signed_in(runtime, world.admin)
    assert client.get("/documents").status_code == 200
    with runtime.session() as session:
        past = runtime.clock() - timedelta(minutes=1)
        session.execute(update(t.WebSession).values(expires_at=past))
    answer = client.get("/documents", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"


def test_switching_company_shows_only_that_companys_documents(web: tuple) -> None:
    runtime, world = web
    client = signed_in(runtime, world.admin)
    assert "F-0001" in client.get("/documents").text
    client.post("/company", data={"csrf_token": csrf(client), "company_id": world.other_company_id})
    listing = client.get("/documents").text
    assert "X-1" in listing and "F-0001" not in listing


def test_repeated_wrong_passwords_are_slowed_down(web: tuple) -> None:
    runtime, world = web
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    statuses = []
    for _ in range(6):
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        statuses.append(
            client.post(
                "/login",
                data={"email": world.admin, "password": "nope", "csrf_token": token.group(1)},
            ).status_code
        )
    assert statuses[:5] == [401] * 5 and statuses[5] == 429


def test_every_interface_message_has_spanish_and_portuguese_translations() -> None:
    from docmail.web.catalog import ES, PT

    root = Path(__file__).resolve().parents[2] / "docmail" / "web"
    pattern = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\)""")
    used = set()
    for path in [*root.rglob("*.html"), *root.glob("*.py")]:
        used |= {a or b for a, b in pattern.findall(path.read_text())}
    assert used, "no messages found"
    assert sorted(used - ES.keys()) == []
    assert sorted(used - PT.keys()) == []


def test_an_admin_connects_a_gmail_account_from_the_settings_page(web: tuple) -> None:
    from docmail.services.accounts import create_account
    from docmail.services.inputs import AccountIn
    from docmail.services.runtime import Actor, Role

    runtime, world = web
    runtime.settings.extra.update(
        google_client_id="web-client",
        google_client_secret="web-secret",
        google_authorize_url="http://127.0.0.1:9/authorize",
    )
    admin = Actor(world.company_id, Role.ADMIN)
    gmail = create_account(
        runtime, admin, AccountIn(kind="gmail", name="Ventas Gmail", from_email="ventas@acme.mx")
    )
    client = signed_in(runtime, world.admin)
    page = client.get("/settings/accounts").text
    assert "Ventas Gmail" in page and "sin conectar" in page and "Autenticar" in page
    refused = client.post(f"/settings/accounts/{gmail.id}/authenticate", follow_redirects=False)
    assert refused.status_code == 403, "no CSRF token, no redirect to the provider"
    answer = client.post(
        f"/settings/accounts/{gmail.id}/authenticate",
        data={"csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("http://127.0.0.1:9/authorize?")
    assert "code_challenge_method=S256" in location and "state=" in location
    assert "client_id=web-client" in location and "web-secret" not in location
    done = client.get("/settings/accounts?oauth=connected").text
    assert "Buzón conectado: token actualizado." in done


def test_the_send_dialog_offers_to_reconnect_a_mailbox_and_comes_back_to_the_document(
    web: tuple,
) -> None:
    from docmail.services.accounts import create_account
    from docmail.services.inputs import AccountIn
    from docmail.services.runtime import Actor, Role

    runtime, world = web
    runtime.settings.extra.update(
        google_client_id="web-client",
        google_client_secret="web-secret",
        google_authorize_url="http://127.0.0.1:9/authorize",
    )
    gmail = create_account(
        runtime,
        Actor(world.company_id, Role.ADMIN),
        AccountIn(kind="gmail", name="Gmail", from_email="cobranza@acme.mx", is_default=True),
    )
    admin = signed_in(runtime, world.admin)
    dialog = admin.get(f"/documents/{world.invoice_id}/send").text
    link = f"/accounts/{gmail.id}/connect?back=/documents/{world.invoice_id}"
    assert "necesita que inicie sesión de nuevo" in dialog and link in dialog
    page = admin.get(link).text
    assert "cobranza@acme.mx" in page and f'value="/documents/{world.invoice_id}"' in page
    answer = admin.post(
        f"/accounts/{gmail.id}/connect",
        data={"csrf_token": csrf(admin), "back": f"/documents/{world.invoice_id}"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("http://127.0.0.1:9/authorize?")
    sender = signed_in(runtime, world.sender)  # not an admin and not the mailbox's owner
    refused = sender.post(
        f"/accounts/{gmail.id}/connect",
        data={"csrf_token": csrf(sender), "back": "/"},
        follow_redirects=False,
    )
    assert refused.status_code == 403


def test_previewing_a_template_over_the_saved_size_is_refused_naming_the_part(
    web: tuple,
) -> None:
    runtime, world = web
    client = signed_in(runtime, world.admin)
    token = csrf(client, "/settings/templates/invoice/es")
    form = {"subject": "Factura", "body_html": "<p>Hola</p>", "body_text": "Hola"}
    url = "/settings/templates/invoice/es/preview"
    common = {"csrf_token": token, "document_id": str(world.invoice_id)}
    assert client.post(url, data={**form, **common}).status_code == 200
    answer = client.post(url, data={**form, **common, "body_text": "{{ 1 }}" * 40_000})
    assert answer.status_code == 422
    assert 'data-field="body_text"' in answer.text
    assert "200000 characters" in answer.text
    assert "<iframe" not in answer.text
