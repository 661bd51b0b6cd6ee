"""An OAuth consent link connects a mailbox only for the person and browser that started it.

The attack: company B's admin creates a Gmail account named after a victim's
address, starts the flow and sends the victim the genuine consent link; the
victim approves the docmail app they already use. Before, the provider's redirect
put the victim's tokens on B's account. Now the callback must come back to the
browser that started (a nonce cookie) signed in as the same user: nothing is
connected otherwise, and the state stays unused.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from docmail.adapters.db import tables as t
from docmail.services.companies import add_membership, create_user
from docmail.services.runtime import Role
from tests.support.app import make_tenant
from tests.support.oauth_server import (  # noqa: F401 - fixtures
    MAILBOX,
    OAuthWorld,
    oauth_server_fixture,
    oauth_world_fixture,
    xoauth2_smtp_fixture,
)
from tests.support.web import csrf_of, sign_in

VICTIM = "cfo@alpha.example.com"


def _attacker(world: OAuthWorld) -> tuple[TestClient, int]:
    """Company B's admin, signed in, with a Gmail account named after the victim."""
    tenant = make_tenant(world.runtime, "Beta SA de CV")
    user = create_user(world.runtime, "admin@beta.example.com", "beta-password-1")
    add_membership(world.runtime, user.id, tenant.company_id, Role.ADMIN)
    made = tenant.client.post(
        "/api/v1/accounts",
        json={"kind": "gmail", "name": "Trap", "from_email": VICTIM, "username": VICTIM},
    )
    assert made.status_code == 201, made.text
    return sign_in(world.runtime, "admin@beta.example.com", "beta-password-1"), made.json()["id"]


def _consent_link(browser: TestClient, account_id: int) -> str:
    answer = browser.post(
        f"/settings/accounts/{account_id}/authenticate",
        data={"csrf_token": csrf_of(browser)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def _tokens(world: OAuthWorld, account_id: int) -> int:
    with world.runtime.session() as session:
        query = select(func.count()).where(t.OAuthToken.account_id == account_id)
        return session.scalar(query) or 0


def test_a_consent_link_sent_to_a_victim_puts_no_tokens_on_the_attackers_account(
    world: OAuthWorld,
) -> None:
    attacker, trap = _attacker(world)
    link = _consent_link(attacker, trap)

    callback = world.consent(link)  # the victim approves at the provider ...
    landed = world.browser.get(callback, follow_redirects=False)  # ... in their own browser

    assert landed.status_code == 403
    assert "otro navegador o por otra persona" in landed.text
    assert _tokens(world, trap) == 0
    assert world.auth.issued("access") == []  # the code was never even exchanged


def test_a_victim_who_is_not_signed_in_connects_nothing_either(world: OAuthWorld) -> None:
    attacker, trap = _attacker(world)
    callback = world.consent(_consent_link(attacker, trap))

    landed = TestClient(world.browser.app).get(callback, follow_redirects=False)

    assert landed.status_code == 403 and _tokens(world, trap) == 0


def test_the_same_user_in_another_browser_connects_nothing(world: OAuthWorld) -> None:
    callback = world.consent(world.start())
    other_browser = sign_in(world.runtime, "admin@acme.mx", "admin-password-1")

    landed = other_browser.get(callback, follow_redirects=False)
    finished = world.browser.get(callback, follow_redirects=False)

    assert landed.status_code == 403
    assert finished.status_code == 303, "the refused try left the state for its own browser"
    assert _tokens(world, world.account_id) == 1


def test_the_starting_browser_gets_the_mailbox_and_is_told_which_one(world: OAuthWorld) -> None:
    landed = world.authenticate(return_to=None)
    page = world.browser.get(landed.headers["location"]).text

    assert landed.status_code == 303 and _tokens(world, world.account_id) == 1
    assert f"Buzón {MAILBOX} conectado para ACME SA de CV" in page


def test_an_api_token_gets_a_link_for_a_person_not_a_consent_url(world: OAuthWorld) -> None:
    started = world.api(
        "POST", f"/accounts/{world.account_id}/oauth/start", 200, json={"return_to": "/x"}
    )

    assert started["connect_url"].endswith(f"/accounts/{world.account_id}/connect?back=/x")
    assert "state=" not in started["connect_url"]
    with world.runtime.session() as session:
        assert session.scalar(select(func.count()).select_from(t.OAuthState)) == 0
