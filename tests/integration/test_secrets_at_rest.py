"""No secret in clear: not in the database file, its text columns, the logs or API answers;
and ``docmail secrets rotate`` moves every stored secret to the newest key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import String, Text, select

from docmail.adapters.db import tables as t
from docmail.adapters.secrets import SecretBox
from docmail.bootstrap import build_runtime
from docmail.cli.main import cli
from docmail.config import LOOPBACK, Settings
from docmail.domain.outbox import RetryPolicy
from docmail.errors import ConfigurationError
from docmail.services.runtime import Runtime
from docmail.services.secrets_rotation import SECRET_COLUMNS
from docmail.worker.worker import Worker
from tests.support.app import make_tenant
from tests.support.oauth_server import (  # noqa: F401 - fixtures
    CLIENT_SECRET,
    OAuthWorld,
    oauth_server_fixture,
    oauth_world_fixture,
    xoauth2_smtp_fixture,
)
from tests.support.smtp_server import TEST_PASSWORD, TEST_USER, SmtpTestServer

COMPANY_CLIENT = ("company-client", "company-client-secret-5a4b3c2d1e")
SES_SECRET = "ses-secret-at-rest-check-0123456789abcdef"


def text_columns(runtime: Runtime) -> list[str]:
    """Every value of every text column of every table."""
    values: list[str] = []
    with runtime.engine.connect() as conn:
        for table in t.Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            if columns:
                values += [str(v) for row in conn.execute(select(*columns)) for v in row if v]
    return values


def database_bytes(runtime: Runtime) -> bytes:
    url = runtime.settings.resolved_database_url
    if not url.startswith("sqlite"):
        return b""
    path = Path(url.split("///", 1)[1])
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_no_secret_is_stored_logged_or_answered_in_clear(
    world: OAuthWorld, smtp_server: SmtpTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world.auth.state.clients[COMPANY_CLIENT[0]] = COMPANY_CLIENT[1]
    world.api(
        "PUT",
        "/oauth/clients/gmail",
        200,
        json={"client_id": COMPANY_CLIENT[0], "client_secret": COMPANY_CLIENT[1]},
    )
    world.api(
        "POST",
        "/accounts",
        201,
        json={
            "name": "Relay",
            "host": "127.0.0.1",
            "port": smtp_server.port,
            "username": TEST_USER,
            "password": TEST_PASSWORD,
            "from_email": "relay@acme.mx",
        },
    )
    world.api(
        "POST",
        "/accounts",
        201,
        json={
            "kind": "ses",
            "name": "SES",
            "from_email": "ses@acme.mx",
            "region": "us-east-1",
            "access_key_id": "AKIATEST",
            "secret_access_key": SES_SECRET,
            "endpoint_url": "http://127.0.0.1:9",
        },
    )
    world.authenticate()
    world.send("S-1")
    world.auth.expire_access_tokens()  # forces a refresh and a rotated refresh token
    world.send("S-2")
    assert world.deliver() == 2 and world.auth.refreshes() == 1
    answers = [
        world.tenant.client.get(p).text for p in ("/api/v1/accounts", "/api/v1/oauth/clients")
    ]

    secrets = [TEST_PASSWORD, CLIENT_SECRET, COMPANY_CLIENT[1], SES_SECRET]
    secrets += world.auth.issued("access") + world.auth.issued("refresh")
    assert len(secrets) == 8
    stored = database_bytes(world.runtime)
    columns = "\n".join(text_columns(world.runtime))
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert logs and columns
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret not in columns
        assert secret not in logs
        assert not any(secret in answer for answer in answers)


def stored_tokens(runtime: Runtime) -> list[str]:
    tokens: list[str] = []
    with runtime.engine.connect() as conn:
        for spec in SECRET_COLUMNS:
            columns = [spec.table.c[name] for name in spec.columns]
            tokens += [v for row in conn.execute(select(*columns)) for v in row if v]
    return tokens


def test_secrets_rotate_moves_every_secret_to_the_new_key_and_sending_still_works(
    database_url: str, tmp_path: Path, smtp_server: SmtpTestServer
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_keys=(old,),
        smtp_timeout=5.0,
        outbound_allow=LOOPBACK,
        extra={"smtp_ca_file": smtp_server.ca_file},
    )
    runtime = build_runtime(settings, run_migrations=False)
    tenant = make_tenant(runtime)
    client = tenant.client
    client.put("/api/v1/oauth/clients/microsoft", json={"client_id": "c", "client_secret": "s3"})
    created = client.post(
        "/api/v1/accounts",
        json={
            "name": "Relay",
            "host": "127.0.0.1",
            "port": smtp_server.port,
            "username": TEST_USER,
            "password": TEST_PASSWORD,
            "from_email": "relay@acme.mx",
        },
    )
    assert created.status_code == 201, created.text

    result = CliRunner().invoke(
        cli,
        ["secrets", "rotate"],
        env={
            "DOCMAIL_DATABASE_URL": database_url,
            "DOCMAIL_SECRET_KEY": f"{new},{old}",
            "DOCMAIL_DATA_DIR": str(tmp_path / "data"),
        },
    )
    assert result.exit_code == 0, result.output
    assert "mail_accounts: 1 secret(s)" in result.output
    assert "oauth_clients: 1 secret(s)" in result.output

    tokens = stored_tokens(runtime)
    assert len(tokens) == 2
    for token in tokens:
        with pytest.raises(ConfigurationError):
            SecretBox([old]).decrypt(token)
        assert SecretBox([new]).decrypt(token) in (TEST_PASSWORD, "s3")
    runtime.engine.dispose()

    rotated = build_runtime(settings.with_overrides(secret_keys=(new,)), run_migrations=False)
    rotated_client = tenant.client
    rotated_client.app.state.runtime = rotated  # type: ignore[attr-defined]
    rotated_client.post(
        "/api/v1/parties",
        json={"code": "C1", "name": "Cliente", "email": "pagos@cliente.mx", "language": "es"},
    ).raise_for_status()
    doc = rotated_client.post(
        "/api/v1/documents",
        json={
            "type": "invoice",
            "number": "R-1",
            "party_code": "C1",
            "issue_date": "2026-11-20",
            "total": "1.00",
            "currency": "MXN",
            "status": "stamped",
        },
    ).json()
    assert rotated_client.post(f"/api/v1/documents/{doc['id']}/send", json={}).status_code == 202
    assert Worker(rotated, "rotated", RetryPolicy(jitter=0.0)).drain() == 1
    (received,) = smtp_server.wait_for(1)
    assert received.username == TEST_USER
    rotated.engine.dispose()
