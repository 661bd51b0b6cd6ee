"""Amazon SES v2 as a transport, against moto's server on 127.0.0.1 (never AWS itself)."""

from __future__ import annotations

import base64
import email
import os
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer
from moto.ses.models import ses_backends

from docmail.adapters.ses import SesSettings, SesTransport, translate_error
from docmail.domain.outbox import RetryPolicy
from docmail.errors import AuthenticationFailed, PermanentDeliveryError, TransientDeliveryError
from docmail.worker.worker import Worker
from tests.support.app import make_runtime, make_tenant
from tests.support.smtp_server import HOST, free_port

REGION = "us-east-1"
SENDER = "facturacion@acme.mx"
FAKE_KEY_ID = "AKIATESTDOCMAIL00001"
FAKE_SECRET = "ses-secret-access-key-do-not-leak-0123456789"
PDF = b"%PDF-1.4\n" + os.urandom(30_000) + b"\n%%EOF\n"
XML = b'<?xml version="1.0" encoding="UTF-8"?><cfdi:Comprobante Folio="9" Total="116.00"/>'


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    yield f"http://{HOST}:{port}"
    server.stop()


@pytest.fixture
def ses(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh moto SES with ``SENDER`` verified; fake credentials, nothing leaves loopback."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    boto3.client("ses", region_name=REGION, endpoint_url=moto_url).verify_email_identity(
        EmailAddress=SENDER
    )
    yield moto_url
    ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages.clear()


def sent_raw() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def settings(url: str, **changes: Any) -> SesSettings:
    values: dict[str, Any] = dict(
        region=REGION,
        access_key_id=FAKE_KEY_ID,
        secret_access_key=FAKE_SECRET,
        endpoint_url=url,
        timeout=5.0,
        from_email=SENDER,
    )
    values.update(changes)
    return SesSettings(**values)


def mime_with_attachments(sender: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "pagos@cliente.mx", "Factura 9"
    message["Message-ID"] = "<f9@acme.mx>"
    message.set_content("Adjuntamos la factura 9.")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="F-9.pdf")
    message.add_attachment(XML, maintype="application", subtype="xml", filename="F-9.xml")
    return message.as_bytes()


def attachments_of(raw: str | bytes) -> dict[str, bytes]:
    data = raw.encode() if isinstance(raw, str) else raw
    parsed = cast(EmailMessage, email.message_from_bytes(data, policy=default_policy))
    return {
        part.get_filename() or "": cast(bytes, part.get_payload(decode=True))
        for part in parsed.iter_attachments()
    }


def test_ses_sends_the_raw_message_with_its_attachments_intact(ses: str) -> None:
    with SesTransport(settings(ses)) as transport:
        result = transport.send(
            SENDER, ["pagos@cliente.mx", "bcc@acme.mx"], mime_with_attachments(SENDER)
        )
    assert result.code == 250 and result.reply.startswith("SES MessageId ")
    (message,) = sent_raw()
    assert attachments_of(message.raw_data) == {"F-9.pdf": PDF, "F-9.xml": XML}
    assert "bcc@acme.mx" in message.destinations


def test_ses_check_validates_the_credentials_and_reports_the_verified_sender(ses: str) -> None:
    with SesTransport(settings(ses)) as transport:
        answer = transport.check()
    assert "credentials accepted" in answer and f"sender {SENDER} is a verified" in answer


def test_an_unverified_sender_is_a_permanent_error_with_the_ses_code_and_message(ses: str) -> None:
    stranger = "nadie@desconocido.mx"
    with SesTransport(settings(ses)) as transport, pytest.raises(PermanentDeliveryError) as info:
        transport.send(stranger, ["pagos@cliente.mx"], mime_with_attachments(stranger))
    assert info.value.server_reply is not None
    assert info.value.server_reply.startswith("MessageRejected: ")
    assert "nadie@desconocido.mx" in info.value.message and FAKE_SECRET not in info.value.message
    assert sent_raw() == []


def test_an_unreachable_endpoint_is_a_transient_error() -> None:
    dead = f"http://{HOST}:{free_port()}"
    with SesTransport(settings(dead)) as transport, pytest.raises(TransientDeliveryError) as info:
        transport.send(SENDER, ["pagos@cliente.mx"], b"Subject: x\r\n\r\nx\r\n")
    assert "could not reach" in info.value.message


def test_a_ses_account_delivers_documents_through_the_outbox(
    ses: str, database_url: str, tmp_path: Path
) -> None:
    runtime = make_runtime(database_url, tmp_path / "data")
    tenant = make_tenant(runtime)
    created = tenant.client.post(
        "/api/v1/accounts",
        json={
            "kind": "ses",
            "name": "SES",
            "from_email": SENDER,
            "region": REGION,
            "endpoint_url": ses,
            "access_key_id": FAKE_KEY_ID,
            "secret_access_key": FAKE_SECRET,
        },
    )
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["kind"] == "ses" and account["password_set"] is True
    assert FAKE_SECRET not in created.text
    tested = tenant.client.post(f"/api/v1/accounts/{account['id']}/test").json()
    assert tested["ok"] is True, tested
    tenant.client.post(
        "/api/v1/parties",
        json={"code": "C9", "name": "Cliente", "email": "pagos@cliente.mx", "language": "es"},
    ).raise_for_status()
    doc = tenant.client.post(
        "/api/v1/documents",
        json={
            "type": "invoice",
            "number": "F-9",
            "party_code": "C9",
            "issue_date": "2026-11-20",
            "total": "116.00",
            "currency": "MXN",
            "status": "stamped",
            "attachments": [
                {
                    "filename": "F-9.pdf",
                    "content_type": "application/pdf",
                    "content_base64": base64.b64encode(PDF).decode(),
                },
                {
                    "filename": "F-9.xml",
                    "content_type": "application/xml",
                    "content_base64": base64.b64encode(XML).decode(),
                },
            ],
        },
    ).json()
    queued = tenant.client.post(f"/api/v1/documents/{doc['id']}/send", json={}).json()
    assert Worker(runtime, "ses-worker", RetryPolicy(jitter=0.0)).drain() == 1
    log = tenant.client.get(f"/api/v1/messages/{queued['id']}").json()
    assert log["state"] == "sent" and "SES MessageId" in (log["server_reply"] or "")
    (message,) = sent_raw()
    assert attachments_of(message.raw_data) == {"F-9.pdf": PDF, "F-9.xml": XML}


def client_error(code: str, status: int, message: str = "m") -> Exception:
    from botocore.exceptions import ClientError

    body = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(body, "SendEmail")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("TooManyRequestsException", 429, TransientDeliveryError),
        ("InternalFailure", 500, TransientDeliveryError),
        ("Whatever", 503, TransientDeliveryError),
        ("MessageRejected", 400, PermanentDeliveryError),
        ("MailFromDomainNotVerifiedException", 400, PermanentDeliveryError),
        ("AccountSuspendedException", 400, PermanentDeliveryError),
        ("UnrecognizedClientException", 403, AuthenticationFailed),
        ("SignatureDoesNotMatch", 403, AuthenticationFailed),
    ],
)
def test_ses_errors_are_classified_with_the_providers_code(
    code: str, status: int, expected: type[Exception]
) -> None:
    error = translate_error(
        client_error(code, status, f"text {FAKE_SECRET}"), settings("http://x"), "sending"
    )
    assert type(error) is expected
    assert error.server_reply == f"{code}: text ***" and FAKE_SECRET not in error.message
