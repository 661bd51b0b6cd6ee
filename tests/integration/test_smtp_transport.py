"""SmtpTransport against a real aiosmtpd server on 127.0.0.1 (no mocks of smtplib)."""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

import pytest

from docmail.adapters.smtp import SmtpTransport
from docmail.errors import (
    AuthenticationFailed,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from tests.support.smtp_server import TEST_PASSWORD, TEST_USER, SmtpTestServer

SENDER = "facturas@empresa.test"
CUSTOMER = "cliente@example.test"


def build_message(subject: str = "Factura F-0001", body: str = "Adjuntamos su factura.") -> bytes:
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = SENDER
    message["To"] = CUSTOMER
    message["Subject"] = subject
    message.set_content(body)
    message.add_attachment(
        b"%PDF-1.7 fake", maintype="application", subtype="pdf", filename="F-0001.pdf"
    )
    return message.as_bytes()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- successful delivery ---------------------------------------------------------------


def test_starttls_with_login_delivers_the_exact_bytes_and_envelope(
    smtp_server: SmtpTestServer,
) -> None:
    raw = build_message()
    with SmtpTransport(smtp_server.client_settings()) as transport:
        result = transport.send(SENDER, [CUSTOMER, "copia@example.test"], raw)

    assert result.code == 250
    assert "queued as" in result.reply
    assert result.refused == {}
    received = smtp_server.wait_for(1)[0]
    assert received.raw == raw
    assert received.mail_from == SENDER
    assert received.rcpt_tos == [CUSTOMER, "copia@example.test"]
    assert received.username == TEST_USER
    assert received.message["Subject"] == "Factura F-0001"


def test_implicit_tls_with_login_delivers_the_message(smtp_server_ssl: SmtpTestServer) -> None:
    raw = build_message()
    with SmtpTransport(smtp_server_ssl.client_settings()) as transport:
        transport.send(SENDER, [CUSTOMER], raw)

    received = smtp_server_ssl.wait_for(1)[0]
    assert received.raw == raw
    assert received.username == TEST_USER


def test_plain_connection_without_login_delivers_the_message(
    smtp_server_plain: SmtpTestServer,
) -> None:
    raw = build_message()
    with SmtpTransport(smtp_server_plain.client_settings()) as transport:
        transport.send(SENDER, [CUSTOMER], raw)

    received = smtp_server_plain.wait_for(1)[0]
    assert received.raw == raw
    assert received.username is None


def test_bare_line_feeds_are_sent_as_crlf(smtp_server_plain: SmtpTestServer) -> None:
    raw = b"Subject: lf\nFrom: a@b.test\n\nline one\nline two\n"
    with SmtpTransport(smtp_server_plain.client_settings()) as transport:
        transport.send(SENDER, [CUSTOMER], raw)

    assert smtp_server_plain.wait_for(1)[0].raw == raw.replace(b"\n", b"\r\n")


@pytest.mark.parametrize("overlapped", [False, True], ids=["send", "send_meanwhile"])
def test_lines_that_start_with_a_dot_arrive_unchanged(
    smtp_server_plain: SmtpTestServer, overlapped: bool
) -> None:
    # The lone "." line would end DATA early if it were not doubled on the wire.
    body = b".first\r\n.\r\n..two dots\r\nmiddle. dot\r\n.\r\n.last"
    raw = b"Subject: dots\r\nFrom: a@b.test\r\n\r\n" + body
    called: list[int] = []
    with SmtpTransport(smtp_server_plain.client_settings()) as transport:
        if overlapped:
            transport.send_meanwhile(SENDER, [CUSTOMER], raw, lambda: called.append(1))
        else:
            transport.send(SENDER, [CUSTOMER], raw)

    assert smtp_server_plain.wait_for(1)[0].raw == raw + b"\r\n"
    assert called == ([1] if overlapped else [])


def test_a_message_prepared_ahead_is_sent_as_itself_and_never_in_place_of_another(
    smtp_server_plain: SmtpTestServer,
) -> None:
    first = b"Subject: one\r\n\r\n.dot first\r\n"
    second = b"Subject: two\r\n\r\nsecond\r\n"
    with SmtpTransport(smtp_server_plain.client_settings()) as transport:
        transport.prepare(first)
        transport.send(SENDER, [CUSTOMER], first)
        transport.prepare(first)  # prepared, but something else goes out next
        transport.send(SENDER, [CUSTOMER], second)

    assert [m.raw for m in smtp_server_plain.wait_for(2)] == [first, second]


def test_a_non_ascii_address_goes_out_with_smtputf8_where_the_server_offers_it() -> None:
    raw = "Subject: envío\r\n\r\nHola, José.\r\n".encode()
    with SmtpTestServer("none", smtputf8=True) as server:
        with SmtpTransport(server.client_settings()) as transport:
            transport.send("facturación@empresa.test", ["josé@ejemplo.test", CUSTOMER], raw)
        (received,) = server.wait_for(1)

    assert received.mail_from == "facturación@empresa.test"
    assert received.rcpt_tos == ["josé@ejemplo.test", CUSTOMER]
    assert received.raw == raw


def test_a_non_ascii_address_fails_permanently_where_the_server_lacks_smtputf8(
    smtp_server_plain: SmtpTestServer,
) -> None:
    with (
        SmtpTransport(smtp_server_plain.client_settings()) as transport,
        pytest.raises(PermanentDeliveryError, match="SMTPUTF8"),
    ):
        transport.send(SENDER, ["josé@ejemplo.test"], b"Subject: x\r\n\r\nx\r\n")
    assert smtp_server_plain.messages == []


@pytest.mark.parametrize(
    "address", ["Cliente <c@example.test>", "c@example.test\r\nRCPT TO:<x@evil.test>", ""]
)
def test_an_address_that_is_not_bare_is_refused_before_anything_is_sent(
    smtp_server_plain: SmtpTestServer, address: str
) -> None:
    with SmtpTransport(smtp_server_plain.client_settings()) as transport:
        with pytest.raises(PermanentDeliveryError, match="not a bare email address"):
            transport.send(SENDER, [address], b"Subject: x\r\n\r\nbad\r\n")
        transport.send(SENDER, [CUSTOMER], b"Subject: y\r\n\r\ngood\r\n")  # same transport

    (received,) = smtp_server_plain.wait_for(1)
    assert received.rcpt_tos == [CUSTOMER] and received.raw.endswith(b"good\r\n")


def test_eight_bit_messages_are_announced_as_8bitmime(smtp_server_plain: SmtpTestServer) -> None:
    raw = "Subject: año\r\n\r\nPago en €, señor.\r\n".encode()
    with SmtpTransport(smtp_server_plain.client_settings()) as transport:
        transport.send(SENDER, [CUSTOMER], raw)

    received = smtp_server_plain.wait_for(1)[0]
    assert received.raw == raw
    assert "BODY=8BITMIME" in received.mail_options


def test_check_returns_the_greeting_and_the_login_answer(smtp_server: SmtpTestServer) -> None:
    with SmtpTransport(smtp_server.client_settings()) as transport:
        answer = transport.check()

    assert answer.startswith("220 ")
    assert "235" in answer


def test_one_connection_carries_five_messages(smtp_server: SmtpTestServer) -> None:
    with SmtpTransport(smtp_server.client_settings()) as transport:
        for number in range(5):
            transport.send(SENDER, [CUSTOMER], build_message(f"Factura {number}"))

    assert len(smtp_server.wait_for(5)) == 5
    assert smtp_server.connections == 1


def test_a_connection_the_server_closed_while_idle_is_reopened_once(
    smtp_server: SmtpTestServer,
) -> None:
    with SmtpTransport(smtp_server.client_settings()) as transport:
        transport.send(SENDER, [CUSTOMER], build_message("first"))
        smtp_server.disconnect_clients()
        transport.send(SENDER, [CUSTOMER], build_message("second"))

    subjects = [m.message["Subject"] for m in smtp_server.wait_for(2)]
    assert subjects == ["first", "second"]
    assert smtp_server.connections == 2


def test_a_421_to_mail_from_on_a_reused_connection_is_retried_on_a_new_one(
    smtp_server: SmtpTestServer,
) -> None:
    with SmtpTransport(smtp_server.client_settings()) as transport:
        transport.send(SENDER, [CUSTOMER], build_message("first"))
        smtp_server.fail_next(421, "4.4.2 idle too long, closing", at="mail")
        transport.send(SENDER, [CUSTOMER], build_message("second"))

    assert len(smtp_server.wait_for(2)) == 2
    assert smtp_server.connections == 2


def test_a_hang_up_after_mail_from_was_accepted_is_never_retried(
    smtp_server: SmtpTestServer,
) -> None:
    with SmtpTransport(smtp_server.client_settings()) as transport:
        transport.send(SENDER, [CUSTOMER], build_message("first"))
        smtp_server.fail_next(421, "4.4.2 shutting down", at="rcpt")
        with pytest.raises(TransientDeliveryError) as caught:
            transport.send(SENDER, [CUSTOMER], build_message("second"))

    assert caught.value.smtp_code == 421
    assert len(smtp_server.messages) == 1
    assert smtp_server.connections == 1


def test_some_refused_recipients_are_reported_while_the_rest_get_the_message(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.fail_next(550, "5.1.1 <nadie@example.test>: user unknown", at="rcpt")
    with SmtpTransport(smtp_server.client_settings()) as transport:
        result = transport.send(SENDER, ["nadie@example.test", CUSTOMER], build_message())

    assert result.refused == {
        "nadie@example.test": (550, "5.1.1 <nadie@example.test>: user unknown")
    }
    assert smtp_server.wait_for(1)[0].rcpt_tos == [CUSTOMER]


# -- TLS problems ----------------------------------------------------------------------


def test_an_untrusted_certificate_is_a_permanent_error_that_names_the_certificate(
    smtp_server: SmtpTestServer,
) -> None:
    settings = smtp_server.client_settings(ca_file=None)
    with SmtpTransport(settings) as transport, pytest.raises(PermanentDeliveryError) as caught:
        transport.send(SENDER, [CUSTOMER], build_message())

    assert "certificate" in caught.value.message
    assert "verify_tls" in caught.value.message
    assert smtp_server.messages == []


def test_an_untrusted_certificate_is_accepted_when_verification_is_off(
    smtp_server_ssl: SmtpTestServer,
) -> None:
    settings = smtp_server_ssl.client_settings(ca_file=None, verify_tls=False)
    with SmtpTransport(settings) as transport:
        transport.send(SENDER, [CUSTOMER], build_message())

    assert len(smtp_server_ssl.wait_for(1)) == 1


def test_implicit_tls_against_a_server_with_an_untrusted_certificate_fails_permanently(
    smtp_server_ssl: SmtpTestServer,
) -> None:
    settings = smtp_server_ssl.client_settings(ca_file=None)
    with SmtpTransport(settings) as transport, pytest.raises(PermanentDeliveryError) as caught:
        transport.check()

    assert "TLS certificate of 127.0.0.1 is not trusted" in caught.value.message


def test_starttls_against_a_server_without_starttls_fails_permanently_in_plain_words(
    smtp_server_plain: SmtpTestServer,
) -> None:
    settings = smtp_server_plain.client_settings(security="starttls")
    with SmtpTransport(settings) as transport, pytest.raises(PermanentDeliveryError) as caught:
        transport.send(SENDER, [CUSTOMER], build_message())

    assert "does not offer STARTTLS" in caught.value.message
    assert smtp_server_plain.messages == []


def test_a_username_for_a_server_without_login_fails_permanently_in_plain_words(
    smtp_server_plain: SmtpTestServer,
) -> None:
    settings = smtp_server_plain.client_settings(username="someone", password="pw-123")
    with SmtpTransport(settings) as transport, pytest.raises(PermanentDeliveryError) as caught:
        transport.check()

    assert "does not offer login" in caught.value.message
    assert "pw-123" not in caught.value.message


# -- login problems --------------------------------------------------------------------


def test_a_wrong_password_fails_the_check_without_revealing_the_password(
    smtp_server: SmtpTestServer,
) -> None:
    settings = smtp_server.client_settings(password="wrong-Pa55word")
    with SmtpTransport(settings) as transport, pytest.raises(AuthenticationFailed) as caught:
        transport.check()

    error = caught.value
    assert error.transient is False
    assert error.smtp_code == 535
    assert f"the server refused the login for user '{TEST_USER}': 535" in error.message
    assert "wrong-Pa55word" not in error.message
    assert "wrong-Pa55word" not in repr(error.args)
    assert TEST_PASSWORD not in error.message


def test_a_wrong_password_fails_a_send_permanently(smtp_server_ssl: SmtpTestServer) -> None:
    settings = smtp_server_ssl.client_settings(password="wrong-Pa55word")
    with SmtpTransport(settings) as transport, pytest.raises(AuthenticationFailed) as caught:
        transport.send(SENDER, [CUSTOMER], build_message())

    assert "wrong-Pa55word" not in str(caught.value)
    assert "wrong-Pa55word" not in repr(transport)
    assert smtp_server_ssl.messages == []


def test_a_server_that_requires_login_tells_a_transport_without_credentials_to_log_in(
    smtp_server: SmtpTestServer,
) -> None:
    settings = smtp_server.client_settings(username=None, password=None)
    with SmtpTransport(settings) as transport, pytest.raises(PermanentDeliveryError) as caught:
        transport.send(SENDER, [CUSTOMER], build_message())

    assert caught.value.smtp_code == 530
    assert "set the username and password" in caught.value.message


# -- server replies --------------------------------------------------------------------


def test_a_451_reply_is_transient_and_keeps_the_server_text(smtp_server: SmtpTestServer) -> None:
    smtp_server.fail_next(451, "4.3.0 Try again later")
    with (
        SmtpTransport(smtp_server.client_settings()) as transport,
        pytest.raises(TransientDeliveryError) as caught,
    ):
        transport.send(SENDER, [CUSTOMER], build_message())

    assert caught.value.smtp_code == 451
    assert caught.value.server_reply == "4.3.0 Try again later"
    assert "4.3.0 Try again later" in caught.value.message


def test_the_next_send_works_after_a_temporary_failure_on_the_same_transport(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.fail_next(451, "4.3.0 Try again later")
    with SmtpTransport(smtp_server.client_settings()) as transport:
        with pytest.raises(TransientDeliveryError):
            transport.send(SENDER, [CUSTOMER], build_message("first"))
        transport.send(SENDER, [CUSTOMER], build_message("second"))

    assert [m.message["Subject"] for m in smtp_server.wait_for(1)] == ["second"]
    assert smtp_server.connections == 1


def test_an_unknown_user_reply_is_permanent(smtp_server: SmtpTestServer) -> None:
    smtp_server.fail_next(550, "5.1.1 <cliente@example.test>: Recipient address rejected")
    with (
        SmtpTransport(smtp_server.client_settings()) as transport,
        pytest.raises(PermanentDeliveryError) as caught,
    ):
        transport.send(SENDER, [CUSTOMER], build_message())

    assert caught.value.transient is False
    assert caught.value.smtp_code == 550
    assert caught.value.server_reply is not None
    assert caught.value.server_reply.startswith("5.1.1")


def test_a_421_reply_is_transient_and_the_next_send_reconnects(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.fail_next(421, "4.7.0 Too busy, closing connection")
    with SmtpTransport(smtp_server.client_settings()) as transport:
        with pytest.raises(TransientDeliveryError) as caught:
            transport.send(SENDER, [CUSTOMER], build_message("first"))
        transport.send(SENDER, [CUSTOMER], build_message("second"))

    assert caught.value.smtp_code == 421
    assert len(smtp_server.wait_for(1)) == 1
    assert smtp_server.connections == 2


def test_every_recipient_refused_permanently_is_a_permanent_error_naming_them(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.fail_next(550, "5.1.1 user unknown", count=2, at="rcpt")
    recipients = ["uno@example.test", "dos@example.test"]
    with SmtpTransport(smtp_server.client_settings()) as transport:
        with pytest.raises(PermanentDeliveryError) as caught:
            transport.send(SENDER, recipients, build_message())
        transport.send(SENDER, [CUSTOMER], build_message("after"))

    assert caught.value.recipients == recipients
    assert "uno@example.test" in caught.value.message
    assert smtp_server.wait_for(1)[0].message["Subject"] == "after"


def test_recipients_refused_with_one_temporary_reply_are_transient(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.fail_next(550, "5.1.1 user unknown", at="rcpt")
    smtp_server.fail_next(452, "4.2.2 mailbox full", at="rcpt")
    with (
        SmtpTransport(smtp_server.client_settings()) as transport,
        pytest.raises(TransientDeliveryError) as caught,
    ):
        transport.send(SENDER, ["uno@example.test", "dos@example.test"], build_message())

    assert caught.value.smtp_code == 452


def test_a_refused_sender_is_permanent(smtp_server: SmtpTestServer) -> None:
    smtp_server.fail_next(553, "5.7.1 Sender address rejected: not owned by user", at="mail")
    with (
        SmtpTransport(smtp_server.client_settings()) as transport,
        pytest.raises(PermanentDeliveryError) as caught,
    ):
        transport.send(SENDER, [CUSTOMER], build_message())

    assert caught.value.smtp_code == 553
    assert "MAIL FROM" in caught.value.message


# -- connection problems ---------------------------------------------------------------


def test_a_closed_port_is_a_transient_could_not_connect_error(
    smtp_server_plain: SmtpTestServer,
) -> None:
    port = closed_port()
    settings = smtp_server_plain.client_settings(port=port)
    with SmtpTransport(settings) as transport, pytest.raises(TransientDeliveryError) as caught:
        transport.send(SENDER, [CUSTOMER], build_message())

    assert caught.value.message.startswith(f"could not connect to 127.0.0.1:{port}")
    assert "refused" in caught.value.message


def test_a_connection_dropped_before_the_greeting_is_transient_and_not_retried(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.drop_next_connection()
    with SmtpTransport(smtp_server.client_settings()) as transport:
        with pytest.raises(TransientDeliveryError) as caught:
            transport.send(SENDER, [CUSTOMER], build_message("first"))
        assert smtp_server.connections == 1
        transport.send(SENDER, [CUSTOMER], build_message("second"))

    assert "could not connect" in caught.value.message
    assert [m.message["Subject"] for m in smtp_server.wait_for(1)] == ["second"]


def test_a_server_that_stalls_after_data_times_out_as_transient_and_is_not_resent(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.stall_seconds = 1.0
    settings = smtp_server.client_settings(timeout=0.3)
    with SmtpTransport(settings) as transport:
        started = time.monotonic()
        with pytest.raises(TransientDeliveryError) as caught:
            transport.send(SENDER, [CUSTOMER], build_message())
        elapsed = time.monotonic() - started

    assert elapsed < 0.9
    assert "DATA" in caught.value.message
    assert "0.3 seconds" in caught.value.message
    assert smtp_server.connections == 1


def test_errors_are_delivery_errors_with_the_cause_chained(
    smtp_server: SmtpTestServer,
) -> None:
    smtp_server.fail_next(451, "4.3.0 Try again later")
    settings = replace(smtp_server.client_settings(), timeout=2.0)
    with SmtpTransport(settings) as transport, pytest.raises(DeliveryError) as caught:
        transport.send(SENDER, [CUSTOMER], build_message())

    assert caught.value.__cause__ is not None
