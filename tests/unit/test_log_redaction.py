"""Secrets handled by the SecretBox never appear in clear in log output."""

import io
import logging

from cryptography.fernet import Fernet

from docmail.adapters.secrets import SecretBox, install_log_redaction


def _logger_with_buffer() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    logger = logging.getLogger("test.redaction")
    logger.propagate = False
    logger.handlers = [logging.StreamHandler(stream)]
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_a_decrypted_password_is_redacted_in_messages_and_arguments() -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    token = box.encrypt("hunter2-password")
    logger, stream = _logger_with_buffer()
    install_log_redaction(box, logger)
    assert box.decrypt(token) == "hunter2-password"
    logger.info("login with %s failed", "hunter2-password")
    logger.info("raw hunter2-password in the text")
    output = stream.getvalue()
    assert "hunter2-password" not in output
    assert output.count("***") == 2


def test_secrets_in_tracebacks_are_redacted_too() -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    box.encrypt("refresh-token-abcdef")
    logger, stream = _logger_with_buffer()
    install_log_redaction(box, logger)
    try:
        raise RuntimeError("server said refresh-token-abcdef is invalid")
    except RuntimeError:
        logger.exception("refresh failed")
    assert "refresh-token-abcdef" not in stream.getvalue()
    assert "RuntimeError: server said *** is invalid" in stream.getvalue()


def test_short_values_are_not_treated_as_secrets() -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    box.encrypt("abc")
    logger, stream = _logger_with_buffer()
    install_log_redaction(box, logger)
    logger.info("abc is an ordinary word")
    assert stream.getvalue() == "abc is an ordinary word\n"


def test_an_access_log_line_keeps_the_oauth_code_and_state_out() -> None:
    import logging

    from docmail.adapters.secrets import RedactQuerySecrets

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5000",
            "GET",
            "/oauth/callback?code=4/0AbCdSecret&state=xyz123&scope=mail",
            "1.1",
            302,
        ),
        None,
    )
    RedactQuerySecrets().filter(record)
    line = record.getMessage()
    assert "4/0AbCdSecret" not in line and "xyz123" not in line
    assert "code=***&state=***&scope=mail" in line
