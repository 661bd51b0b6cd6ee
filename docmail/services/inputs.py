"""Validated input commands shared by the HTTP API, the CLI importer and the services.

Pydantic checks shapes and types; the domain checks meaning (addresses, header
safety, states). Unknown fields are rejected so typos do not pass silently.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from docmail.domain.addresses import check_header_value, normalize_email
from docmail.errors import DocmailError, ValidationError

Security = Literal["starttls", "ssl", "none"]
Language = Literal["es", "pt", "en"]
Status = Literal["draft", "issued", "stamped", "cancelled"]
FallbackName = Literal["general_email", "none", "manual_only"]
BatchMode = Literal["per_document", "per_party"]

_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$"

# Row ids are 64-bit integers in SQLite and PostgreSQL; a larger number cannot name a row
# and would fail when bound to a query, so it is refused as input instead.
MAX_ID = 2**63 - 1
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]


class _Info:
    def __init__(self, field_name: str) -> None:
        self.field_name = field_name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _single_line(value: str | None, info: Any) -> str | None:
    if value is not None:
        try:
            check_header_value(value, info.field_name)
        except DocmailError as exc:  # pydantic reports ValueErrors with the field's full path
            raise ValueError(exc.message) from None
    return value


def _email(value: str | None, info: Any) -> str | None:
    if value is None or value == "":
        return None
    try:
        return normalize_email(value, info.field_name)
    except DocmailError as exc:
        raise ValueError(exc.message) from None


def _required_email(value: str | None, info: Any) -> str:
    email = _email(value, info)
    if email is None:
        raise ValueError(f"{info.field_name} must be an email address, not empty")
    return email


def not_null(value: Any, info: Any) -> Any:
    """For PATCH fields whose column has no "unset" state: null may not erase them."""
    if value is None:
        raise ValueError(f"{info.field_name} cannot be null; leave it out to keep it as it is")
    return value


class RetryPolicyIn(Strict):
    """How an account retries after temporary failures (see domain.outbox.policy_from_config)."""

    kind: Literal["exponential", "fixed"] = "exponential"
    max_attempts: int = Field(default=8, ge=1, le=100)
    base_seconds: float = Field(default=30, ge=0, le=86_400)
    max_delay_seconds: float = Field(default=7200, ge=0, le=7 * 86_400)
    max_age_hours: float = Field(default=48, gt=0, le=30 * 24)
    jitter: float = Field(default=0.2, ge=0, le=1)


class PacingFields(Strict):
    """Per-account limits shared by all workers; None means no limit."""

    rate_per_minute: int | None = Field(default=None, ge=1, le=100_000)
    rate_per_hour: int | None = Field(default=None, ge=1, le=1_000_000)
    rate_per_day: int | None = Field(default=None, ge=1, le=10_000_000)
    max_concurrency: int | None = Field(default=None, ge=1, le=100)
    retry_policy: RetryPolicyIn | None = None


AccountKind = Literal["smtp", "gmail", "microsoft", "ses"]
_REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"


class AccountIn(PacingFields):
    """A new mail account. ``kind``: "smtp" (host/port required), "gmail" / "microsoft"
    (OAuth2; the SMTP server comes from the provider, connect with Authenticate) or "ses"
    (region, access_key_id, secret_access_key; optional endpoint_url)."""

    kind: AccountKind = "smtp"
    name: str = Field(min_length=1, max_length=200)
    host: str | None = Field(default=None, min_length=1, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security = "starttls"
    username: str | None = Field(default=None, max_length=320)
    password: str | None = Field(default=None, max_length=1000)
    from_email: str
    from_name: str = Field(default="", max_length=200)
    verify_tls: bool = True
    is_default: bool = False
    owner_user_id: DbId | None = None  # a user's own mailbox, used when that user sends
    region: str | None = Field(default=None, pattern=_REGION_PATTERN)
    endpoint_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")
    access_key_id: str | None = Field(default=None, min_length=1, max_length=128)
    secret_access_key: str | None = Field(default=None, min_length=1, max_length=1000)

    _lines = field_validator("name", "host", "username", "from_name", "access_key_id")(_single_line)
    _from = field_validator("from_email")(_required_email)

    @model_validator(mode="after")
    def _kind_fields(self) -> AccountIn:
        needed = {"smtp": ("host", "port"), "ses": ("region", "access_key_id", "secret_access_key")}
        for name in needed.get(self.kind, ()):
            if getattr(self, name) is None:
                raise ValueError(f"{name} is required for a {self.kind} account")
        if self.kind in ("gmail", "microsoft") and self.password:
            raise ValueError(f"a {self.kind} account has no password: connect it with OAuth")
        return self


class AccountPatch(PacingFields):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    host: str | None = Field(default=None, min_length=1, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security | None = None
    username: str | None = Field(default=None, max_length=320)
    password: str | None = Field(default=None, max_length=1000)
    from_email: str | None = None
    from_name: str | None = Field(default=None, max_length=200)
    verify_tls: bool | None = None
    is_default: bool | None = None
    paused: bool | None = None
    owner_user_id: DbId | None = None
    region: str | None = Field(default=None, pattern=_REGION_PATTERN)
    endpoint_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")
    access_key_id: str | None = Field(default=None, min_length=1, max_length=128)
    secret_access_key: str | None = Field(default=None, min_length=1, max_length=1000)

    _lines = field_validator("name", "host", "username", "from_name")(_single_line)
    _from = field_validator("from_email")(_email)
    _set = field_validator(
        "name", "host", "port", "security", "from_email", "from_name", "verify_tls", "paused"
    )(not_null)


class ContactIn(Strict):
    name: str = Field(default="", max_length=200)
    email: str
    roles: list[str] = Field(default_factory=list, max_length=20)

    _name = field_validator("name")(_single_line)
    _email_check = field_validator("email")(_required_email)

    @field_validator("roles")
    @classmethod
    def _roles(cls, roles: list[str]) -> list[str]:
        cleaned = []
        for role in roles:
            role = role.strip().lower()
            if not role or len(role) > 40 or not role.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"role {role!r} must be letters, digits, '-' or '_'")
            if role not in cleaned:
                cleaned.append(role)
        return cleaned


class PartyIn(Strict):
    code: str = Field(min_length=1, max_length=64, pattern=_CODE_PATTERN)
    name: str = Field(min_length=1, max_length=300)
    tax_id: str | None = Field(default=None, max_length=64)
    email: str | None = None
    language: Language = "es"
    auto_send: bool = True
    auto_send_only_multiple: bool = False
    contacts: list[ContactIn] = Field(default_factory=list, max_length=200)

    _lines = field_validator("name", "tax_id")(_single_line)
    _email_check = field_validator("email")(_email)


class PartyPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=300)
    tax_id: str | None = Field(default=None, max_length=64)
    email: str | None = None
    language: Language | None = None
    auto_send: bool | None = None
    auto_send_only_multiple: bool | None = None
    contacts: list[ContactIn] | None = Field(default=None, max_length=200)

    _lines = field_validator("name", "tax_id")(_single_line)
    _email_check = field_validator("email")(_email)
    _set = field_validator("name", "language", "auto_send", "auto_send_only_multiple")(not_null)


class DocumentTypeIn(Strict):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1, max_length=200)
    recipient_roles: list[str] = Field(default_factory=list)
    cc_roles: list[str] = Field(default_factory=list)
    fallback: FallbackName = "general_email"
    required_status: Status | None = None


class DocumentTypePatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    recipient_roles: list[str] | None = None
    cc_roles: list[str] | None = None
    fallback: FallbackName | None = None
    required_status: Status | None = None

    _set = field_validator("name", "recipient_roles", "cc_roles", "fallback")(not_null)


class AttachmentIn(Strict):
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=127)
    content_base64: str

    @field_validator("filename")
    @classmethod
    def _filename(cls, value: str) -> str:
        return _as_value_error(check_filename, value, "filename")

    @field_validator("content_type")
    @classmethod
    def _content_type(cls, value: str) -> str:
        return _as_value_error(check_content_type, value, "content_type")


def check_filename(value: str, field: str) -> str:
    """An attachment name: one line, no path, no control characters."""
    check_header_value(value, field)
    if not value or len(value) > 255:
        raise ValidationError(f"{field} must have 1 to 255 characters", field=field, value=value)
    if "/" in value or "\\" in value or value in (".", "..") or value.startswith("."):
        raise ValidationError(
            f"{field} {value!r} must be a plain file name without a path", field=field, value=value
        )
    if any(ord(ch) < 32 for ch in value):
        raise ValidationError(
            f"{field} {value!r} contains control characters", field=field, value=value
        )
    return value


def check_content_type(value: str, field: str) -> str:
    """A bare MIME type such as application/pdf (no parameters)."""
    main, _, sub = value.partition("/")
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-.+")
    if not main or not sub or not set(main.lower()) <= allowed or not set(sub.lower()) <= allowed:
        raise ValidationError(
            f"{field} {value!r} is not a MIME type like application/pdf", field=field, value=value
        )
    return value.lower()


def _as_value_error(check: Any, value: str, field: str) -> str:
    try:
        result: str = check(value, field)
    except DocmailError as exc:  # pydantic reports ValueErrors with the field's full path
        raise ValueError(exc.message) from None
    return result


class DocumentIn(Strict):
    type: str = Field(min_length=1, max_length=40)
    number: str = Field(min_length=1, max_length=100)
    party_code: str = Field(min_length=1, max_length=64)
    issue_date: date | None = None
    due_date: date | None = None
    total: Decimal | None = Field(default=None, max_digits=20, decimal_places=6)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    status: Status = "issued"
    fiscal_id: str | None = Field(default=None, max_length=100)
    data: dict[str, Any] = Field(default_factory=dict)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)
    # The automation run this document belongs to (e.g. "rent-2026-11"): see services.automation.
    run: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
    )

    _lines = field_validator("number", "fiscal_id")(_single_line)


class DocumentsBulkIn(Strict):
    """Many documents in one request (an ERP's nightly export); all stored or none."""

    documents: list[DocumentIn] = Field(min_length=1, max_length=1000)


class DocumentPatch(Strict):
    status: Status | None = None
    due_date: date | None = None
    fiscal_id: str | None = Field(default=None, max_length=100)
    data: dict[str, Any] | None = None

    _set = field_validator("status", "data")(not_null)


class TemplateIn(Strict):
    subject: str = Field(min_length=1, max_length=2000)
    body_html: str = Field(max_length=200_000)
    body_text: str = Field(max_length=200_000)


class SendIn(Strict):
    """Edits the user made in the compose step; anything left out keeps the pre-filled value."""

    to: list[str] | None = None
    cc: list[str] | None = None
    bcc: list[str] | None = None
    subject: str | None = None
    body_html: str | None = None
    body_text: str | None = None
    account_id: DbId | None = None
    attachment_ids: list[DbId] | None = None  # keep only these document attachments
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


class BatchIn(Strict):
    document_ids: list[DbId] = Field(min_length=1, max_length=100_000)
    mode: BatchMode = "per_document"
    account_id: DbId | None = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
