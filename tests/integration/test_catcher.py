"""The demo MailCatcher: a real local SMTP server that hands messages to a callback."""

from __future__ import annotations

import smtplib
import threading
from email.message import EmailMessage

import pytest

from docmail.adapters.smtp import CaughtEnvelope, MailCatcher, SmtpSettings, SmtpTransport
from docmail.errors import TransientDeliveryError


class Inbox:
    """Collects what the catcher hands over; lets the test wait for it."""

    def __init__(self) -> None:
        self.items: list[CaughtEnvelope] = []
        self.arrived = threading.Event()

    def __call__(self, envelope: CaughtEnvelope) -> None:
        self.items.append(envelope)
        self.arrived.set()


def invoice_message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "facturas@empresa.test"
    message["To"] = "cliente@example.test"
    message["Subject"] = "Factura nº 7 — año 2024"
    message.set_content("Hola")
    return message


def test_the_catcher_hands_a_message_sent_with_smtplib_to_the_callback() -> None:
    inbox = Inbox()
    with (
        MailCatcher(inbox, port=0) as catcher,
        smtplib.SMTP("127.0.0.1", catcher.port, timeout=5) as client,
    ):
        client.send_message(invoice_message())

    assert inbox.arrived.wait(2)
    caught = inbox.items[0]
    assert caught.mail_from == "facturas@empresa.test"
    assert caught.rcpt_to == ["cliente@example.test"]
    assert caught.subject == "Factura nº 7 — año 2024"
    assert b"Hola" in caught.raw


def test_the_catcher_works_with_the_smtp_transport_in_plain_mode() -> None:
    inbox = Inbox()
    raw = b"Subject: demo\r\n\r\nbody\r\n"
    with MailCatcher(inbox, port=0) as catcher:
        settings = SmtpSettings(host="127.0.0.1", port=catcher.port, security="none", timeout=5)
        with SmtpTransport(settings) as transport:
            result = transport.send("a@empresa.test", ["b@example.test", "c@example.test"], raw)

    assert result.code == 250
    assert inbox.items[0].raw == raw
    assert inbox.items[0].rcpt_to == ["b@example.test", "c@example.test"]


def test_a_message_without_subject_has_an_empty_subject() -> None:
    inbox = Inbox()
    with (
        MailCatcher(inbox, port=0) as catcher,
        smtplib.SMTP("127.0.0.1", catcher.port, timeout=5) as client,
    ):
        client.sendmail("a@empresa.test", ["b@example.test"], b"X-Note: none\r\n\r\nhi\r\n")

    assert inbox.items[0].subject == ""


def test_a_failing_callback_makes_the_catcher_answer_with_a_temporary_error() -> None:
    def broken(envelope: CaughtEnvelope) -> None:
        raise RuntimeError("database is locked")

    with MailCatcher(broken, port=0) as catcher:
        settings = SmtpSettings(host="127.0.0.1", port=catcher.port, security="none", timeout=5)
        with SmtpTransport(settings) as transport, pytest.raises(TransientDeliveryError) as caught:
            transport.send("a@empresa.test", ["b@example.test"], b"Subject: x\r\n\r\nx\r\n")

    assert caught.value.smtp_code == 451


ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - only to show it is refused


@pytest.mark.parametrize("host", [ALL_INTERFACES, "::", "192.168.1.10", "example.com"])
def test_the_catcher_refuses_to_listen_on_anything_but_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        MailCatcher(lambda envelope: None, host=host)


def test_the_catcher_accepts_localhost_as_a_name_for_127_0_0_1() -> None:
    assert MailCatcher(lambda envelope: None, host="localhost", port=0).host == "127.0.0.1"


def test_a_busy_port_fails_fast_with_a_clear_message() -> None:
    with MailCatcher(lambda envelope: None, port=0) as first:
        second = MailCatcher(lambda envelope: None, port=first.port)
        with pytest.raises(OSError, match="already in use"):
            second.start()
        assert not second.running


def test_stopping_twice_is_harmless() -> None:
    catcher = MailCatcher(lambda envelope: None, port=0)
    catcher.start()
    catcher.stop()
    catcher.stop()
    assert not catcher.running
