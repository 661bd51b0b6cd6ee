"""OAuth2 mailboxes end to end: consent, XOAUTH2 sending, refresh, revocation, re-authentication.

A real authorization server (PKCE, expiring access tokens, rotating refresh tokens,
revocation) and a real aiosmtpd server that accepts only XOAUTH2 with a token the
authorization server vouches for, both on 127.0.0.1; a real database; the real worker.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

from sqlalchemy import select

from docmail.adapters.db import tables as t
from tests.support.oauth_server import (  # noqa: F401 - fixtures
    MAILBOX,
    OAuthWorld,
    oauth_server_fixture,
    oauth_world_fixture,
    xoauth2_smtp_fixture,
)


def test_a_new_gmail_account_takes_its_smtp_server_from_the_provider_and_is_not_connected(
    world: OAuthWorld,
) -> None:
    account = world.account()
    assert account["host"] == "127.0.0.1" and account["port"] == world.smtp.port
    assert account["username"] == MAILBOX and account["password_set"] is False
    assert account["oauth"]["status"] == "not_connected"
    assert account["needs_attention"] is True


def test_consent_stores_encrypted_tokens_and_the_message_goes_out_over_xoauth2(
    world: OAuthWorld,
) -> None:
    started = world.api("POST", f"/accounts/{world.account_id}/oauth/start", 200, json={})
    assert started["connect_url"].endswith(f"/accounts/{world.account_id}/connect")
    query = parse_qs(urlparse(world.start()).query)
    assert query["code_challenge_method"] == ["S256"] and query["scope"] == [
        "https://mail.google.com/"
    ]
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]

    back = world.authenticate(return_to="/documents/1/send?x=1")
    assert back.status_code == 303
    assert back.headers["location"] == (
        f"/documents/1/send?x=1&account_id={world.account_id}&oauth=connected"
    )
    row = world.token_row()
    (access,) = world.auth.issued("access")
    (refresh,) = world.auth.issued("refresh")
    assert access not in row.access_token_encrypted and refresh not in row.refresh_token_encrypted
    assert world.runtime.secrets.decrypt(row.refresh_token_encrypted or "") == refresh
    account = world.account()
    assert account["oauth"]["status"] == "connected" and account["oauth"]["token_updated_at"]
    assert account["needs_attention"] is False

    world.send("F-1")
    assert world.deliver() == 1
    (received,) = world.smtp.messages
    assert received.user == MAILBOX and received.rcpt_tos == ["pagos@cliente.mx"]
    assert received.message["From"].addresses[0].addr_spec == MAILBOX
    assert world.smtp.auth_attempts == [True]


def test_an_authorization_state_works_once_and_a_wrong_one_is_refused(world: OAuthWorld) -> None:
    callback = world.consent(world.start(return_to=None))
    first = world.browser.get(callback, follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"].endswith(f"account_id={world.account_id}&oauth=connected")
    again = world.browser.get(callback, follow_redirects=False)
    assert again.status_code == 422 and "ya se usó" in again.text  # the admin reads Spanish
    forged = world.browser.get("/oauth/callback?code=x&state=forged")
    assert forged.status_code == 422


def test_return_to_must_be_a_local_path(world: OAuthWorld) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        error = world.api(
            "POST", f"/accounts/{world.account_id}/oauth/start", 422, json={"return_to": target}
        )
        assert error["field"] == "return_to"


def test_a_token_near_expiry_is_refreshed_before_sending_and_the_rotated_one_stored(
    world: OAuthWorld,
) -> None:
    world.authenticate()
    first_refresh = world.auth.issued("refresh")[0]
    world.runtime.clock = lambda: datetime.now(UTC) + timedelta(minutes=58)  # expires in < 5 min
    world.send("F-2")
    assert world.deliver() == 1
    assert world.auth.refreshes() == 1 and world.smtp.auth_attempts == [True]
    row = world.token_row()
    stored_refresh = world.runtime.secrets.decrypt(row.refresh_token_encrypted or "")
    assert stored_refresh != first_refresh and stored_refresh == world.auth.issued("refresh")[-1]
    assert row.refreshed_at is not None and row.version == 2


def test_a_token_the_server_refuses_is_refreshed_once_and_the_login_retried(
    world: OAuthWorld,
) -> None:
    world.authenticate()
    world.auth.expire_access_tokens()  # docmail still believes its token valid for an hour
    world.send("F-3")
    assert world.deliver() == 1
    assert world.smtp.auth_attempts == [False, True]
    assert world.auth.refreshes() == 1
    assert len(world.smtp.messages) == 1


def test_a_revoked_grant_pauses_the_account_until_reauthentication_then_all_go_out_once(
    world: OAuthWorld,
) -> None:
    world.authenticate()
    world.send("F-4")
    assert world.deliver() == 1
    before = world.account()["oauth"]["token_updated_at"]

    world.auth.revoke_all()
    waiting = [world.send("F-5"), world.send("F-6")]
    world.deliver()
    for message in waiting:
        assert world.api("GET", f"/messages/{message['id']}", 200)["state"] == "queued"
    account = world.account()
    assert account["oauth"]["status"] == "needs_authentication"
    assert account["paused"] is True and account["pause_reason"].startswith("needs authentication")
    assert account["needs_attention"] is True
    listed = world.api("GET", "/accounts/needs-attention", 200)["items"]
    assert [a["id"] for a in listed] == [world.account_id]
    assert world.deliver() == 0  # nothing is tried while paused: no messages failed

    assert world.authenticate().status_code == 303
    account = world.account()
    assert account["paused"] is False and account["oauth"]["status"] == "connected"
    assert account["oauth"]["token_updated_at"] > before
    assert world.deliver() == 2
    for message in waiting:
        assert world.api("GET", f"/messages/{message['id']}", 200)["state"] == "sent"
    ids = [m.message["Message-ID"] for m in world.smtp.messages]
    assert len(ids) == 3 and len(set(ids)) == 3  # nothing lost, nothing doubled


def test_a_users_own_connected_mailbox_is_used_when_they_send_without_choosing(
    world: OAuthWorld,
) -> None:
    from docmail.services.accounts import resolve_account
    from docmail.services.companies import add_membership, create_user
    from docmail.services.runtime import Actor, Role

    user = create_user(world.runtime, "ana@acme.mx", "password-123")
    add_membership(world.runtime, user.id, world.tenant.company_id, Role.SENDER)
    own = world.api(
        "POST",
        "/accounts",
        201,
        json={
            "kind": "gmail",
            "name": "Ana",
            "from_email": "ana@acme.mx",
            "owner_user_id": user.id,
        },
    )
    ana = Actor(world.tenant.company_id, Role.SENDER, user_id=user.id)
    with world.runtime.session() as session:
        assert resolve_account(session, ana, None).id == world.account_id  # not connected yet
    world.account_id = own["id"]
    world.authenticate()
    with world.runtime.session() as session:
        assert resolve_account(session, ana, None).id == own["id"]
        other = Actor(world.tenant.company_id, Role.SENDER, user_id=None)
        assert resolve_account(session, other, None).is_default
        owner = session.scalar(
            select(t.MailAccount.owner_user_id).where(t.MailAccount.id == own["id"])
        )
        assert owner == user.id


def test_workers_refreshing_at_once_spend_the_refresh_token_only_once(world: OAuthWorld) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from docmail.adapters.oauth.tokens import OAuthTokenSource
    from docmail.services.oauth import client_credentials, registry

    world.authenticate()
    world.runtime.clock = lambda: datetime.now(UTC) + timedelta(minutes=58)
    provider = registry(world.runtime).get("gmail")
    creds = client_credentials(world.runtime, world.tenant.company_id, provider)

    def fetch(_: int) -> str:
        source = OAuthTokenSource(
            world.runtime.engine,
            world.runtime.secrets,
            provider,
            lambda: creds,
            world.account_id,
            world.runtime.clock,
        )
        return source.access_token()

    with ThreadPoolExecutor(max_workers=4) as pool:
        tokens = set(pool.map(fetch, range(4)))
    assert world.auth.refreshes() == 1
    assert tokens == {world.auth.issued("access")[-1]}
