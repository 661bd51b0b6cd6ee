"""A person at the counter, in a real browser, against the real app, database, worker and SMTP."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from docmail.adapters.db import tables as t
from tests.browser.conftest import Live


def message_count(live: Live) -> int:
    with live.runtime.session() as session:
        return session.scalar(select(func.count(t.Message.id))) or 0


def csrf_of(page: Page) -> str:
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    return token


def test_signing_in_shows_the_documents_of_the_company(live: Live) -> None:
    page = live.context().new_page()
    page.goto("/login")
    expect(page.get_by_role("heading", name="docmail")).to_be_visible()
    live.shot(page, "01-sign-in")
    page.fill("#email", live.world.sender)
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("Correo o contraseña incorrectos")
    page.fill("#password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/documents")
    expect(page.get_by_role("link", name="F-0001")).to_be_visible()
    expect(page.get_by_role("link", name="X-1")).to_have_count(0)
    live.shot(page, "02-documents-list")
    page.context.close()


def test_an_invoice_is_sent_with_an_edited_subject_and_arrives(live: Live) -> None:
    page = live.sign_in(live.world.sender)
    page.get_by_role("link", name="F-0001").click()
    page.click("#open-send")
    dialog = page.locator("#send-dialog")
    expect(dialog).to_be_visible()
    to_chips = dialog.locator('.chips[data-name="to"] input[type=hidden]')
    expect(to_chips).to_have_count(2)
    assert "finance@cli01.mx" in (to_chips.nth(0).get_attribute("value") or "")
    page.fill("#f-subject", "Su factura F-0001 (corregida)")
    page.fill("#f-body", "Hola,\n\nle enviamos su factura.\n")
    expect(dialog.frame_locator("iframe.mailview").locator("body")).to_contain_text(
        "le enviamos su factura"
    )
    live.shot(page, "03-document-send-dialog")
    page.click("#review-send")
    expect(page.locator("#confirm-summary")).to_contain_text("finance@cli01.mx")
    page.click("#confirm-send")
    expect(dialog.locator("[data-state=sent]")).to_be_visible(timeout=15000)
    received = live.smtp.wait_for(1)
    assert received[0].message["Subject"] == "Su factura F-0001 (corregida)"
    assert "finance@cli01.mx" in received[0].rcpt_tos
    page.goto("/log")
    expect(page.locator("table.list tbody tr").first).to_contain_text("enviado")
    live.shot(page, "05-delivery-log")
    page.locator("table.list tbody tr a").first.click()
    expect(page.frame_locator("iframe.mailview").locator("body")).to_contain_text("factura")
    live.shot(page, "06-message-view")
    page.context.close()


def test_cancelling_the_dialog_leaves_the_document_and_the_outbox_untouched(live: Live) -> None:
    with live.runtime.session() as session:
        before = session.get_one(t.Document, live.world.invoice_id).updated_at
    page = live.sign_in(live.world.sender)
    page.goto(f"/documents/{live.world.invoice_id}")
    page.click("#open-send")
    page.fill("#f-subject", "no lo envíes")
    page.click("#send-dialog .dialog-actions .close-dialog")
    expect(page.locator("#send-dialog")).to_be_hidden()
    page.wait_for_timeout(300)
    assert message_count(live) == 0
    assert live.smtp.messages == []
    with live.runtime.session() as session:
        assert session.get_one(t.Document, live.world.invoice_id).updated_at == before
    page.context.close()


@pytest.mark.invoices(21)
def test_a_batch_of_twenty_shows_progress_and_a_summary(live: Live) -> None:
    page = live.sign_in(live.world.sender)
    page.check("#select-all")
    page.locator("input.pick").last.uncheck()
    page.click("#batch-preview")
    expect(page.locator("#batch-title")).to_be_visible()
    expect(page.locator("#batch-confirm")).to_contain_text("20")
    page.click("#batch-confirm")
    expect(page.locator("#batch-summary")).to_contain_text("20 enviados", timeout=30000)
    expect(page.locator("progress")).to_have_attribute("value", "20")
    live.shot(page, "04-batch-summary")
    assert len(live.smtp.wait_for(20)) == 20
    page.context.close()


def test_a_viewer_has_no_send_button_and_a_forged_send_is_refused(live: Live) -> None:
    page = live.sign_in(live.world.viewer)
    page.goto(f"/documents/{live.world.invoice_id}")
    expect(page.locator("h1")).to_contain_text("F-0001")
    expect(page.locator("#open-send")).to_have_count(0)
    token = csrf_of(page)
    answer = page.request.post(
        f"/documents/{live.world.invoice_id}/send",
        form={"csrf_token": token, "to": "x@example.com", "idem_key": "forged"},
    )
    assert answer.status == 403
    assert message_count(live) == 0
    page.context.close()


def test_another_companys_document_is_not_found_by_url(live: Live) -> None:
    page = live.sign_in(live.world.admin)
    answer = page.goto(f"/documents/{live.world.other_invoice_id}")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="No encontrado")).to_be_visible()
    page.context.close()


def test_the_template_editor_shows_a_syntax_error_at_its_line(live: Live) -> None:
    page = live.sign_in(live.world.admin)
    page.goto("/settings/templates/invoice/es")
    expect(page.locator("#template-preview iframe")).to_be_visible()
    page.fill("#f-body_html", "<p>Hola {{ party.name }}</p>\n<p>{% if %}</p>\n")
    problems = page.locator("#template-problems")
    expect(problems).to_contain_text("Línea 2")
    live.shot(page, "09-template-editor-error")
    page.click("#template-form button[type=submit]")
    expect(page.locator("#problems-body_html")).to_contain_text("Línea 2")
    page.context.close()


def test_the_interface_speaks_portuguese(live: Live) -> None:
    page = live.context(locale="pt-BR").new_page()
    page.goto("/login")
    expect(page.locator("button[type=submit]")).to_have_text("Entrar")
    expect(page.locator("label[for=password]")).to_have_text("Senha")
    page.context.close()
    page = live.sign_in(live.world.sender, locale="pt-BR")
    expect(page.get_by_role("heading", name="Documentos")).to_be_visible()
    expect(page.get_by_role("link", name="Registro de envios")).to_be_visible()
    page.context.close()


def test_a_post_without_the_csrf_token_is_refused(live: Live) -> None:
    page = live.sign_in(live.world.admin)
    answer = page.request.post("/logout", form={})
    assert answer.status == 403
    page.goto("/documents")
    expect(page.get_by_role("heading", name="Documentos")).to_be_visible()
    page.context.close()


def test_signing_out_ends_the_session_on_the_server(live: Live) -> None:
    page = live.sign_in(live.world.admin)
    cookie = next(c for c in page.context.cookies() if c["name"] == "docmail_session")
    page.get_by_role("button", name="Cerrar sesión").click()
    page.wait_for_url("**/login")
    other = live.context()
    other.add_cookies([{**cookie}])  # type: ignore[list-item]
    replay = other.new_page()
    replay.goto("/documents")
    assert replay.url.endswith("/login")
    with live.runtime.session() as session:
        assert session.scalar(select(func.count()).select_from(t.WebSession)) == 0
    other.close()
    page.context.close()


def test_settings_and_catcher_pages_render_for_an_admin(live: Live) -> None:
    page = live.sign_in(live.world.admin)
    with live.runtime.session() as session:
        session.add(
            t.CaughtMessage(
                mail_from="facturacion@acme.mx",
                rcpt_to=["finance@cli01.mx"],
                subject="Factura F-0001",
                raw=b"From: facturacion@acme.mx\r\nTo: finance@cli01.mx\r\n"
                b"Subject: Factura F-0001\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
                b"<p>Estimado cliente, le enviamos su factura.</p>\r\n",
                company_id=live.world.company_id,  # what this company's outbox sent
            )
        )
    pages = {
        "07-settings-accounts": f"/settings/accounts/{live.world.account_id}",
        "08-settings-parties": "/settings/parties/1",
        "08b-settings-types": "/settings/types",
        "08c-settings-users": "/settings/users",
        "10-catcher-inbox": "/catcher",
    }
    for name, path in pages.items():
        answer = page.goto(path)
        assert answer is not None and answer.status == 200, path
        live.shot(page, name)
    page.goto(f"/settings/accounts/{live.world.account_id}")
    page.get_by_role("button", name="Probar conexión").click()
    expect(page.locator("#test-result")).to_contain_text("La conexión funciona")
    page.goto("/catcher/1")
    expect(page.frame_locator("iframe.mailview").locator("body")).to_contain_text("Estimado")
    live.shot(page, "11-catcher-message")
    page.context.close()
    small = live.sign_in(live.world.admin, width=375)
    live.shot(small, "12-documents-375px")
    small.goto(f"/documents/{live.world.invoice_id}")
    small.click("#open-send")
    expect(small.locator("#send-dialog")).to_be_visible()
    live.shot(small, "13-send-dialog-375px")
    small.context.close()
