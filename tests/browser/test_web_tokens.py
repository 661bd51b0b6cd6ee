"""The API token and audit pages in Chromium, in Spanish and Portuguese: create a token,
see it once, use it, revoke it, and read who did it in the audit list."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.conftest import Live

# (browser locale, texts the page must show in that language)
LANGUAGES = {
    "es-MX": {
        "nav": "Tokens de la API",
        "create": "Crear token",
        "once": "solo se muestra esta vez",
        "revoke": "Revocar",
        "revoked": "Token revocado",
        "audit": "Registro de cambios",
        "sender": "remitente",
    },
    "pt-BR": {
        "nav": "Tokens da API",
        "create": "Criar token",
        "once": "só é mostrado desta vez",
        "revoke": "Revogar",
        "revoked": "Token revogado",
        "audit": "Registro de alterações",
        "sender": "remetente",
    },
}


def _api_status(live: Live, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{live.base_url}/api/v1/parties", headers=headers, timeout=10).status_code


@pytest.mark.parametrize("locale", sorted(LANGUAGES))
def test_an_admin_creates_a_token_sees_it_once_and_revokes_it(live: Live, locale: str) -> None:
    words = LANGUAGES[locale]
    page = live.sign_in(live.world.admin, locale)
    page.goto("/settings/accounts")
    page.get_by_role("link", name=words["nav"]).click()
    page.wait_for_url("**/settings/tokens")

    page.fill("#f-name", "ERP contable")
    page.select_option("#f-role", "sender")
    page.get_by_role("button", name=words["create"]).click()
    shown = page.locator("#new-token")
    assert words["once"] in shown.inner_text()
    token = page.input_value("#new-token-value")
    assert token.startswith("dm_")
    row = page.locator("#tokens tbody tr", has_text="ERP contable")
    assert token[:11] in row.inner_text() and words["sender"] in row.inner_text()
    live.shot(page, f"tokens-created-{locale}")
    assert _api_status(live, token) == 200

    page.goto("/settings/tokens")  # the token is never shown again
    assert token not in page.content()
    assert page.locator("#new-token").count() == 0

    row = page.locator("#tokens tbody tr", has_text="ERP contable")
    row.get_by_role("button", name=f"{words['revoke']} ERP contable").click()
    page.wait_for_url("**/settings/tokens?revoked=*")
    assert words["revoked"] in page.locator(".alert.ok").inner_text()
    assert row.get_by_role("button").count() == 0
    assert _api_status(live, token) == 401

    page.get_by_role("link", name=words["audit"]).click()
    page.wait_for_url("**/settings/audit")
    events = page.locator("#audit tbody tr")
    assert "token.revoked" in events.nth(0).inner_text()
    assert "token.created" in events.nth(1).inner_text()
    assert live.world.admin in events.nth(0).inner_text()
    assert token not in page.content()
    live.shot(page, f"audit-{locale}")
    page.context.close()


def test_a_sender_cannot_open_the_token_or_audit_pages(live: Live) -> None:
    page = live.sign_in(live.world.sender)
    for path in ("/settings/tokens", "/settings/audit"):
        answer = page.goto(path)
        assert answer is not None and answer.status == 403
    page.context.close()
