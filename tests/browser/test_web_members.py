"""Members in Chromium, in Spanish, Portuguese and English: an admin invites someone,
the invitation arrives by email through the company's account, the person accepts
with their own password and signs in; the admin removes them and their open
session ends at once."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import Live

# (browser locale, texts the pages must show in that language)
LANGUAGES = {
    "es-MX": {
        "invite": "Enviar invitación",
        "ready": "Invitación para {email} lista",
        "emailed": "Se envió por correo",
        "accept": "Aceptar y unirse a ACME SA de CV",
        "remove": "Quitar",
        "confirm": "¿Quitar a {email} de ACME SA de CV?",
        "removed": "El miembro fue quitado",
        "subject": "Invitación a ACME SA de CV en docmail",
    },
    "pt-BR": {
        "invite": "Enviar convite",
        "ready": "Convite para {email} pronto",
        "emailed": "Foi enviado por e-mail",
        "accept": "Aceitar e entrar em ACME SA de CV",
        "remove": "Remover",
        "confirm": "Remover {email} de ACME SA de CV?",
        "removed": "O membro foi removido",
        "subject": "Invitación a ACME SA de CV en docmail",  # the company writes Spanish
    },
    "en-US": {
        "invite": "Send invitation",
        "ready": "Invitation for {email} ready",
        "emailed": "It was emailed",
        "accept": "Accept and join ACME SA de CV",
        "remove": "Remove",
        "confirm": "Remove {email} from ACME SA de CV?",
        "removed": "The member was removed",
        "subject": "Invitación a ACME SA de CV en docmail",
    },
}
_LINK = re.compile(r"https?://\S+/invitations/\S+")


def _emailed_link(live: Live, email: str) -> tuple[str, str]:
    """The subject and link of the invitation the test mail server received for ``email``."""
    for _ in range(3):
        for received in live.smtp.wait_for(len(live.smtp.messages) or 1, timeout=10):
            if email in received.rcpt_tos:
                body = received.message.get_body(("plain",))
                assert body is not None
                found = _LINK.search(body.get_content())
                assert found is not None
                return str(received.message["Subject"]), found.group(0)
        live.smtp.wait_for(len(live.smtp.messages) + 1, timeout=10)
    raise AssertionError(f"no invitation arrived for {email}")


def _accept(live: Live, link: str, locale: str, words: dict[str, str]) -> Page:
    page = live.context(locale).new_page()
    page.goto(link.replace(live.base_url, ""))
    live.shot(page, f"invitation-{locale}")
    page.fill("#name", "Nueva Persona")
    page.fill("#password", "her-own-password-1")
    page.fill("#password_again", "her-own-password-1")
    page.get_by_role("button", name=words["accept"]).click()
    page.wait_for_url("**/documents")
    return page


@pytest.mark.parametrize("locale", sorted(LANGUAGES))
def test_invite_accept_sign_in_and_remove_with_the_session_ending(live: Live, locale: str) -> None:
    words, email = LANGUAGES[locale], f"nueva.{locale.lower()}@cliente.example.com"
    admin = live.sign_in(live.world.admin, locale)
    admin.goto("/settings/users")
    admin.fill("#f-email", email)
    admin.fill("#f-name", "Nueva Persona")
    admin.select_option("#f-role", "sender")
    admin.get_by_role("button", name=words["invite"]).click()
    answer = admin.locator("#invited")
    assert words["ready"].format(email=email) in answer.inner_text()
    assert words["emailed"] in answer.inner_text()
    shown_link = admin.input_value("#invite-link")
    live.shot(admin, f"members-invited-{locale}")

    subject, emailed_link = _emailed_link(live, email)
    assert subject == words["subject"] and emailed_link == shown_link

    invitee = _accept(live, emailed_link, locale, words)
    assert "ACME SA de CV" in invitee.content()
    invitee.get_by_role("button", name=re.compile("Cerrar sesión|Sair|Sign out")).click()
    invitee.wait_for_url("**/login")
    invitee.fill("#email", email)
    invitee.fill("#password", "her-own-password-1")
    invitee.click("button[type=submit]")
    invitee.wait_for_url("**/documents")

    admin.goto("/settings/users")
    row = admin.locator("table.members tbody tr", has_text=email)
    row.get_by_role("button", name=words["remove"]).click()
    assert words["confirm"].format(email=email) in admin.content()
    live.shot(admin, f"members-remove-{locale}")
    admin.get_by_role("button", name=words["remove"]).click()
    admin.wait_for_url("**/settings/users?done=removed")
    assert words["removed"] in admin.locator(".alert.ok").inner_text()

    invitee.goto("/documents")
    invitee.wait_for_url("**/login")
    admin.context.close()
    invitee.context.close()


def test_the_members_page_fits_a_phone(live: Live) -> None:
    page = live.sign_in(live.world.admin, "es-MX", width=390)
    page.goto("/settings/users")
    page.fill("#f-email", "telefono@cliente.example.com")
    page.get_by_role("button", name="Enviar invitación").click()
    assert page.locator("#invite-link").is_visible()
    wide = page.evaluate("document.documentElement.scrollWidth")
    live.shot(page, "members-phone")
    assert wide <= 390 + 1, "the page scrolls sideways on a phone"
    page.context.close()
