"""A personal mailbox sends only for its owner (and for an admin who picks it).

The attack: a sender of the company chooses a colleague's own Gmail account
(``owner_user_id`` set) in the send dialog or the API, and the invoice goes out
in the colleague's name. Now that choice is refused and never offered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from docmail.adapters.db import tables as t
from docmail.services import accounts
from docmail.services.inputs import AccountIn
from docmail.services.runtime import Actor, Role, Runtime
from tests.browser.world import PASSWORD, WebWorld, _user_id, build_world
from tests.support.app import client_for, make_runtime
from tests.support.web import csrf_of, sign_in

API = "/api/v1"


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, WebWorld, int]]:
    runtime = make_runtime(database_url, tmp_path / "data")
    world = build_world(runtime, smtp_port=1)
    own = accounts.create_account(
        runtime,
        Actor(world.company_id, Role.ADMIN),
        AccountIn(
            name="Buzón de Admin",
            host="127.0.0.1",
            port=1,
            security="none",
            from_email="admin@acme.mx",
            owner_user_id=_user_id(runtime, world.admin),
        ),
    )
    yield runtime, world, own.id


def _messages(runtime: Runtime) -> int:
    with runtime.session() as session:
        return session.scalar(select(func.count()).select_from(t.Message)) or 0


def test_a_sender_cannot_send_through_a_colleagues_own_mailbox(world: tuple) -> None:
    runtime, web, own_id = world
    sender = sign_in(runtime, web.sender, PASSWORD)

    dialog = sender.get(f"/documents/{web.invoice_id}/send").text
    answer = sender.post(
        f"/documents/{web.invoice_id}/send",
        data={
            "csrf_token": csrf_of(sender),
            "account_id": str(own_id),
            "confirm": "1",
            "to": "cxp@cliente.example.com",
        },
    )

    assert "Buzón de Admin" not in dialog and "Facturación" in dialog
    assert answer.status_code in (403, 422), answer.text
    assert _messages(runtime) == 0


def test_an_api_token_below_admin_cannot_choose_a_personal_mailbox(world: tuple) -> None:
    runtime, web, own_id = world
    sender = client_for(runtime, web.company_id, Role.SENDER)

    single = sender.post(f"{API}/documents/{web.invoice_id}/send", json={"account_id": own_id})
    batch = sender.post(
        f"{API}/documents/send-batch",
        json={"document_ids": [web.invoice_id], "account_id": own_id},
    )

    for answer in (single, batch):
        assert answer.status_code == 403, answer.text
        assert answer.json()["field"] == "account_id"
        assert "another user's own mailbox" in answer.json()["error"]
    assert _messages(runtime) == 0


def test_the_owner_and_an_admin_who_picks_it_may_send_through_it(world: tuple) -> None:
    runtime, web, own_id = world
    admin_token = client_for(runtime, web.company_id, Role.ADMIN)
    owner = sign_in(runtime, web.admin, PASSWORD)

    by_token = admin_token.post(
        f"{API}/documents/{web.invoice_id}/send", json={"account_id": own_id}
    )
    dialog = owner.get(f"/documents/{web.invoice_id}/send").text

    assert by_token.status_code in (200, 201, 202), by_token.text
    assert by_token.json()["account_id"] == own_id
    assert "Buzón de Admin" in dialog


def test_a_personal_mailbox_made_default_is_not_used_for_others_by_default(world: tuple) -> None:
    runtime, web, own_id = world
    admin = Actor(web.company_id, Role.ADMIN)
    accounts.update_account(runtime, admin, own_id, accounts.AccountPatch(is_default=True))
    sender = client_for(runtime, web.company_id, Role.SENDER)

    answer = sender.post(f"{API}/documents/{web.invoice_id}/send", json={})

    assert answer.status_code == 403, answer.text
    assert _messages(runtime) == 0
