"""One exception tree for all of docmail.

Adapters translate library errors into these at the edge (``raise ... from exc``);
the HTTP layer maps each class to one status code and the JSON shape
``{"error": message, "field": field}``. Messages say what went wrong *and*
what to do about it, and never contain secrets.
"""

from __future__ import annotations

from typing import Any


class DocmailError(Exception):
    """Base of every error docmail raises on purpose."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.value = value

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "field": self.field}
        return body


class ValidationError(DocmailError):
    """Input is malformed: an address, a header, a size, an unknown value."""

    status_code = 422


class TemplateError(ValidationError):
    """A template does not compile, uses unknown names, or misbehaves while rendering."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        line: int | None = None,
        problems: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, field=field)
        self.line = line
        self.problems = problems or []

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["line"] = self.line
        if self.problems:
            body["problems"] = self.problems
        return body


class PayloadTooLarge(ValidationError):
    status_code = 413


class NotFound(DocmailError):
    """The object does not exist *for this company* (other tenants' objects look absent)."""

    status_code = 404


class Conflict(DocmailError):
    """The request is valid but the current state forbids it (e.g. not stamped yet)."""

    status_code = 409


class AuthenticationRequired(DocmailError):
    status_code = 401


class PermissionDenied(DocmailError):
    status_code = 403


class ConfigurationError(DocmailError):
    """docmail itself is misconfigured (missing key file, bad database URL)."""

    status_code = 500


class DeliveryError(DocmailError):
    """Sending through a transport failed.

    ``transient`` tells the outbox whether retrying later may help (4xx replies,
    timeouts, refused connections) or not (5xx replies, bad credentials).
    ``smtp_code`` and ``server_reply`` carry the server's own words for the log.
    """

    status_code = 502

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        smtp_code: int | None = None,
        server_reply: str | None = None,
        recipients: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.smtp_code = smtp_code
        self.server_reply = server_reply
        self.recipients = recipients or []


class TransientDeliveryError(DeliveryError):
    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, transient=True, **kwargs)


class PermanentDeliveryError(DeliveryError):
    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, transient=False, **kwargs)


class AuthenticationFailed(PermanentDeliveryError):
    """The mail server refused our credentials; fix the account, retrying will not help."""
