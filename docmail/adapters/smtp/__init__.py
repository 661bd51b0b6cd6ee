"""SMTP delivery: the smtplib transport, its in-memory fake, and the demo mail catcher."""

from docmail.adapters.smtp.catcher import CaughtEnvelope, MailCatcher
from docmail.adapters.smtp.transport import (
    MockTransport,
    SendResult,
    SmtpSettings,
    SmtpTransport,
    Transport,
)

__all__ = [
    "CaughtEnvelope",
    "MailCatcher",
    "MockTransport",
    "SendResult",
    "SmtpSettings",
    "SmtpTransport",
    "Transport",
]
