"""Pure helpers of the SMTP adapter: reply classification, error wording, wire format."""

from __future__ import annotations

import smtplib
import socket
import ssl

import pytest

from docmail.adapters.smtp import MockTransport, SendResult, SmtpSettings
from docmail.adapters.smtp.replies import (
    ErrorContext,
    is_transient_reply,
    needs_smtputf8,
    redact,
    reply_text,
    translate_error,
    wire_bytes,
)
from docmail.errors import (
    AuthenticationFailed,
    PermanentDeliveryError,
    TransientDeliveryError,
    ValidationError,
)

CTX = ErrorContext(
    host="smtp.example.test", port=587, phase="DATA", username="ana", secret="hunter2", timeout=10.0
)


@pytest.mark.parametrize(
    ("code", "text", "transient"),
    [
        (451, "4.3.0 Try again later", True),
        (421, "4.7.0 closing", True),
        (550, "5.1.1 user unknown", False),
        (554, "rejected", False),
        (550, "4.7.0 rate limited, try later", True),
        (-1, "garbage", True),
    ],
)
def test_replies_are_transient_only_when_4xx_or_enhanced_4_x_x(
    code: int, text: str, transient: bool
) -> None:
    assert is_transient_reply(code, text) is transient


def test_a_multi_line_reply_becomes_one_line_of_text() -> None:
    assert reply_text(b"5.7.1 first line\nsecond  line") == "5.7.1 first line second line"


def test_redact_hides_the_secret_everywhere() -> None:
    assert redact("pw hunter2 and hunter2", "hunter2") == "pw *** and ***"
    assert redact("nothing", None) == "nothing"


def test_a_4xx_data_reply_becomes_a_transient_error_with_code_and_text() -> None:
    error = translate_error(smtplib.SMTPDataError(451, b"4.3.0 Try again later"), CTX)
    assert isinstance(error, TransientDeliveryError)
    assert (error.smtp_code, error.server_reply) == (451, "4.3.0 Try again later")
    assert "smtp.example.test:587" in error.message


def test_a_5xx_reply_becomes_a_permanent_error() -> None:
    error = translate_error(smtplib.SMTPDataError(554, b"5.6.0 message rejected"), CTX)
    assert type(error) is PermanentDeliveryError
    assert error.transient is False


def test_an_authentication_error_becomes_authentication_failed_naming_the_user() -> None:
    exc = smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials for hunter2")
    error = translate_error(exc, CTX)
    assert isinstance(error, AuthenticationFailed)
    assert error.message.startswith("the server refused the login for user 'ana': 535 5.7.8")
    assert "hunter2" not in error.message
    assert "hunter2" not in (error.server_reply or "")


def test_a_temporary_login_failure_is_transient() -> None:
    exc = smtplib.SMTPAuthenticationError(454, b"4.7.0 Temporary authentication failure")
    assert isinstance(translate_error(exc, CTX), TransientDeliveryError)


def test_all_recipients_refused_permanently_is_permanent_and_lists_them() -> None:
    exc = smtplib.SMTPRecipientsRefused(
        {"a@x.test": (550, b"5.1.1 unknown"), "b@x.test": (553, b"5.1.3 bad address")}
    )
    error = translate_error(exc, CTX)
    assert type(error) is PermanentDeliveryError
    assert error.recipients == ["a@x.test", "b@x.test"]
    assert "a@x.test: 550 5.1.1 unknown" in error.message


def test_all_recipients_refused_with_one_4xx_is_transient_with_that_code() -> None:
    exc = smtplib.SMTPRecipientsRefused(
        {"a@x.test": (550, b"5.1.1 unknown"), "b@x.test": (452, b"4.2.2 mailbox full")}
    )
    error = translate_error(exc, CTX)
    assert isinstance(error, TransientDeliveryError)
    assert error.smtp_code == 452


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        socket.gaierror(-2, "Name or service not known"),
        smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
        ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
    ],
)
def test_network_failures_while_connecting_are_transient_could_not_connect(
    exc: Exception,
) -> None:
    error = translate_error(exc, ErrorContext(host="smtp.example.test", port=25))
    assert error.transient is True
    assert error.message.startswith(
        (
            "could not connect to smtp.example.test:25",
            "TLS handshake with smtp.example.test:25 failed",
        )
    )


def test_a_timeout_wrapped_by_smtplib_is_worded_as_no_answer_in_time() -> None:
    try:
        try:
            raise TimeoutError("timed out")
        except TimeoutError as inner:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed") from inner
    except smtplib.SMTPServerDisconnected as exc:
        error = translate_error(exc, CTX)
    assert "no answer within 10 seconds" in error.message
    assert "may already have accepted" in error.message


def test_an_untrusted_certificate_is_permanent_and_says_what_to_do() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "unable to get local issuer certificate"
    error = translate_error(exc, CTX)
    assert type(error) is PermanentDeliveryError
    assert error.message == (
        "TLS certificate of smtp.example.test is not trusted: unable to get local issuer "
        "certificate; fix the certificate or, only for a test server, turn off verify_tls"
    )


def test_wire_bytes_keeps_crlf_and_converts_bare_line_ends() -> None:
    assert wire_bytes(b"a\r\nb\r\n") == b"a\r\nb\r\n"
    assert wire_bytes(b"a\nb\rc\r\n") == b"a\r\nb\r\nc\r\n"


def test_non_ascii_addresses_need_smtputf8() -> None:
    assert needs_smtputf8("a@x.test", ["ñandú@x.test"]) is True
    assert needs_smtputf8("a@x.test", ["b@x.test"]) is False


def test_settings_never_show_the_password_in_their_repr() -> None:
    settings = SmtpSettings(
        host="h", port=587, security="starttls", username="u", password="hunter2"
    )
    assert "hunter2" not in repr(settings)


def test_settings_refuse_an_unknown_security_mode() -> None:
    with pytest.raises(ValidationError) as caught:
        SmtpSettings(host="h", port=587, security="tls")
    assert caught.value.field == "security"


def test_mock_transport_records_accepted_messages_and_answers_250() -> None:
    transport = MockTransport()
    result = transport.send("a@x.test", ["b@x.test"], b"raw")
    assert result.code == 250
    assert transport.sent == [("a@x.test", ["b@x.test"], b"raw")]


def test_mock_transport_handler_can_fail_a_send() -> None:
    def refuse(sender: str, recipients: list[str], raw: bytes) -> SendResult:
        raise TransientDeliveryError("try later", smtp_code=451)

    transport = MockTransport(refuse)
    with pytest.raises(TransientDeliveryError):
        transport.send("a@x.test", ["b@x.test"], b"raw")
    assert transport.sent == []
    assert len(transport.attempts) == 1
