"""Amazon SES (API v2) as a transport: raw RFC 5322 bytes through ``SendEmail``.

Credentials are always the account's own (never the process environment).
Errors are translated here, keeping SES's error code and message:
throttling, 5xx answers and network trouble are transient; a rejected message,
an unverified sender domain or a suspended account are permanent; refused
credentials are ``AuthenticationFailed`` (the worker pauses the account).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import parseaddr
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

try:  # the [ses] extra; without it SesTransport refuses to start, naming the extra
    import boto3
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )
except ImportError:  # pragma: no cover - exercised by the core-only install check
    HAVE_BOTO3 = False
else:
    HAVE_BOTO3 = True

from docmail.adapters.outbound import OutboundPolicy
from docmail.adapters.smtp.transport import SendResult
from docmail.errors import (
    AuthenticationFailed,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    ValidationError,
)
from docmail.extras import require

RETRY_LATER = "docmail will try again later"
MAX_RECIPIENTS = 50  # SES's limit per message

TRANSIENT_CODES = frozenset(
    {
        "TooManyRequestsException",
        "Throttling",
        "ThrottlingException",
        "LimitExceededException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalServerError",
        "RequestTimeout",
    }
)
CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "AccessDeniedException",
        "AccessDenied",
        "ExpiredToken",
        "ExpiredTokenException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)
ADVICE = {
    "MessageRejected": "SES refused this message; check the sender identity and the content",
    "MailFromDomainNotVerifiedException": "verify the sender's domain in SES",
    "AccountSuspendedException": "the SES account is suspended; contact AWS support",
    "SendingPausedException": "sending is paused for this SES account or configuration set",
    "NotFoundException": "a resource named in the request does not exist in SES",
}


@dataclass(frozen=True)
class SesSettings:
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    endpoint_url: str | None = None
    timeout: float = 30.0
    from_email: str | None = None  # checked against the verified identities by check()
    outbound: OutboundPolicy | None = None  # where endpoint_url may point; None = anywhere

    def __post_init__(self) -> None:
        if not self.region:
            raise ValidationError("the SES region is empty, e.g. us-east-1", field="region")
        if not self.access_key_id or not self.secret_access_key:
            raise ValidationError(
                "SES needs an access key id and a secret access key", field="access_key_id"
            )

    @property
    def server(self) -> str:
        return self.endpoint_url or f"SES {self.region}"


def translate_error(exc: Exception, settings: SesSettings, doing: str) -> DeliveryError:
    """Map a botocore error to the docmail error tree, keeping SES's code and message."""
    where = settings.server
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        text = str(error.get("Message") or "").replace(settings.secret_access_key, "***")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        reply = f"{code}: {text}" if text else code
        if code in CREDENTIAL_CODES:
            return AuthenticationFailed(
                f"{where} refused the credentials while {doing} ({reply}); check the access "
                "key id and secret access key of the SES account",
                server_reply=reply,
            )
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientDeliveryError(
                f"{where} answered {reply} while {doing}; {RETRY_LATER}", server_reply=reply
            )
        advice = ADVICE.get(code, "retrying will not help")
        return PermanentDeliveryError(
            f"{where} refused {doing}: {reply}; {advice}", server_reply=reply
        )
    if isinstance(exc, NoCredentialsError):
        return AuthenticationFailed(f"no SES credentials while {doing}; set the access keys")
    if isinstance(exc, ReadTimeoutError | ConnectionClosedError):
        return TransientDeliveryError(
            f"lost the connection to {where} while {doing} (SES may already have accepted "
            f"the message); {RETRY_LATER}"
        )
    if isinstance(exc, EndpointConnectionError | BotoCoreError):
        return TransientDeliveryError(
            f"could not reach {where} while {doing} ({type(exc).__name__}); {RETRY_LATER}"
        )
    return PermanentDeliveryError(f"{where} failed while {doing}: {type(exc).__name__}")


class SesTransport:
    """Transport over the SES v2 API; one boto3 client per transport."""

    def __init__(self, settings: SesSettings) -> None:
        if not HAVE_BOTO3:
            require("ses", "account kind 'ses'", field="kind")
        self.settings = settings
        self._client: Any = None

    def _check_endpoint(self) -> None:
        """Refuse an ``endpoint_url`` on an internal network (``SesSettings.outbound``).

        The check resolves the name when the client is made; botocore resolves it
        again to connect, so unlike SMTP a name whose DNS answer changes in between
        is not caught. An endpoint given as an address has no such gap.
        """
        url = self.settings.endpoint_url
        if self.settings.outbound is None or not url:
            return  # without endpoint_url, botocore connects to AWS's own endpoint
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.settings.outbound.check(parts.hostname or "", port, field="endpoint_url")

    def __repr__(self) -> str:
        s = self.settings
        return f"<SesTransport {s.server} key={s.access_key_id!r}>"

    def __enter__(self) -> SesTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, envelope_from: str, recipients: list[str], raw: bytes) -> SendResult:
        """Send the raw message as it is; the recipients become the envelope (Bcc included)."""
        if not recipients:
            raise PermanentDeliveryError("no recipients given; add at least one address")
        if len(recipients) > MAX_RECIPIENTS:
            raise PermanentDeliveryError(
                f"SES accepts at most {MAX_RECIPIENTS} recipients per message, "
                f"this one has {len(recipients)}; split it"
            )
        try:
            answer = self._api().send_email(
                FromEmailAddress=envelope_from,
                Destination={"ToAddresses": list(recipients)},
                Content={"Raw": {"Data": raw}},
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate_error(exc, self.settings, "sending the message") from exc
        return SendResult(code=250, reply=f"SES MessageId {answer.get('MessageId', '?')}")

    def check(self) -> str:
        """Validate the credentials with a cheap call and say whether the sender is verified."""
        try:
            answer = self._api().list_email_identities(PageSize=100)
        except (ClientError, BotoCoreError) as exc:
            raise translate_error(exc, self.settings, "checking the credentials") from exc
        names = {i.get("IdentityName", "").lower() for i in answer.get("EmailIdentities", [])}
        text = f"SES {self.settings.region}: credentials accepted, {len(names)} identities"
        sender = parseaddr(self.settings.from_email or "")[1].lower()
        if sender:
            verified = sender in names or sender.rpartition("@")[2] in names
            text += f"; sender {sender} {'is' if verified else 'is NOT'} a verified identity"
        return text

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _api(self) -> Any:
        if self._client is None:
            self._check_endpoint()
            s = self.settings
            session = boto3.session.Session(
                aws_access_key_id=s.access_key_id,
                aws_secret_access_key=s.secret_access_key,
                region_name=s.region,
            )
            config = Config(
                connect_timeout=s.timeout,
                read_timeout=s.timeout,
                retries={"max_attempts": 2, "mode": "standard"},
            )
            self._client = session.client("sesv2", endpoint_url=s.endpoint_url, config=config)
        return self._client
