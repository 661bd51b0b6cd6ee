"""``docmail backup`` / ``docmail restore``: round trips between SQLite and PostgreSQL.

A real company (parties, contacts, an SMTP account with its password, documents
with attachments, messages really sent to aiosmtpd with their attempts) is backed
up, restored into a fresh database and compared table by table, column by column.
Damaged or foreign archives are refused before anything is written.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import select

from docmail.adapters.db import tables as t
from docmail.adapters.db.backup import TABLES, table_has_rows
from docmail.adapters.db.engine import make_engine
from docmail.adapters.db.schema import migrate
from docmail.bootstrap import build_runtime
from docmail.cli.main import cli
from docmail.config import LOOPBACK, Settings
from docmail.domain.outbox import RetryPolicy
from docmail.errors import ValidationError
from docmail.http.app import create_app
from docmail.services.backup import create_backup, restore_backup
from docmail.services.companies import add_membership, create_user
from docmail.services.runtime import Role, Runtime
from docmail.worker.worker import Worker
from tests.support.app import CREATED, make_tenant
from tests.support.postgres import PostgresServer
from tests.support.smtp_server import TEST_PASSWORD, TEST_USER, SmtpTestServer

API = "/api/v1"
PDF = b"%PDF-1.4\n" + os.urandom(40_000) + b"\n%%EOF\n"
XML = '<?xml version="1.0" encoding="UTF-8"?><cfdi numero="{n}">Açaí — ñ</cfdi>\n'
MANIFEST_NAME = "manifest.json"
RAW_CAUGHT = b"From: a@b.mx\r\nSubject: =?utf-8?q?a=C3=A7=C3=A3o?=\r\n\r\n\x00\xff\xfe binary\r\n"


# ---------------------------------------------------------------- helpers


def runtime_for(url: str, data_dir: Path, keys: tuple[str, ...], ca_file: str) -> Runtime:
    settings = Settings(
        data_dir=data_dir,
        database_url=url,
        secret_keys=keys,
        smtp_timeout=5.0,
        outbound_allow=LOOPBACK,
        extra={"smtp_ca_file": ca_file},
    )
    runtime = build_runtime(settings, run_migrations=False)
    CREATED.append(runtime)  # disposed after the test
    return runtime


def fresh_sqlite(template: Path, path: Path) -> str:
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


def fresh_postgres(server: PostgresServer) -> str:
    url = server.create_database()
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def client(runtime: Runtime, token: str) -> TestClient:
    result = TestClient(create_app(runtime), raise_server_exceptions=False)
    result.headers["Authorization"] = f"Bearer {token}"
    return result


def call(api: TestClient, method: str, path: str, expect: int, **kw: Any) -> Any:
    response = api.request(method, f"{API}{path}", **kw)
    assert response.status_code == expect, response.text
    return response.json()


def every_row(runtime: Runtime) -> dict[str, list[dict[str, Any]]]:
    with runtime.engine.connect() as conn:
        return {
            table.name: [
                dict(row)
                for row in conn.execute(select(table).order_by(*table.primary_key.columns))
                .mappings()
                .all()
            ]
            for table in TABLES
        }


@dataclass
class Source:
    runtime: Runtime
    token: str
    documents: dict[int, list[bytes]]  # document id -> attachment bytes, in order


def populate(runtime: Runtime, smtp: SmtpTestServer) -> Source:
    """A company with everything a backup must carry, made through the real API and worker."""
    tenant = make_tenant(runtime)
    make_tenant(runtime, "Outra Ltda", country="BR")
    api = tenant.client
    account = {
        "name": "Facturación",
        "host": "127.0.0.1",
        "port": smtp.port,
        "username": TEST_USER,
        "password": TEST_PASSWORD,
        "from_email": "facturas@acme.mx",
        "retry_policy": {"kind": "fixed", "base_seconds": 0, "jitter": 0, "max_attempts": 5},
    }
    call(api, "POST", "/accounts", 201, json=account)
    contacts = [{"name": "Ana", "email": "ana@cliente.mx", "roles": ["finance"]}]
    party = {"code": "C1", "name": "Cliente Ñandú", "language": "es", "contacts": contacts}
    call(api, "POST", "/parties", 201, json=party)
    documents: dict[int, list[bytes]] = {}
    for number in range(1, 4):
        files = [PDF, XML.format(n=number).encode()]
        body = {"type": "invoice", "number": f"A-{number}", "party_code": "C1", "total": "1234.5"}
        doc = call(
            api,
            "POST",
            "/documents",
            201,
            data={"document": json.dumps(body)},
            files=[
                ("attachments", (f"A-{number}.pdf", files[0], "application/pdf")),
                ("attachments", (f"A-{number}.xml", files[1], "application/xml")),
            ],
        )
        documents[doc["id"]] = files
    smtp.fail_next(451, "4.3.0 try again later", count=1)  # one message gets two attempts
    for doc_id in list(documents)[:2]:
        call(api, "POST", f"/documents/{doc_id}/send", 202, json={})
    policy = RetryPolicy(base_delay=timedelta(0), jitter=0.0)
    Worker(runtime, "backup-test-worker", policy).drain()
    assert len(smtp.messages) == 2
    user = create_user(runtime, "clerk@acme.mx", "a-long-password")
    add_membership(runtime, user.id, tenant.company_id, Role.SENDER)
    with runtime.session() as session:
        session.add(t.CaughtMessage(mail_from="a@b.mx", rcpt_to=["c@d.mx"], raw=RAW_CAUGHT))
    return Source(runtime, tenant.token, documents)


def assert_restored(source: Source, restored: Runtime, smtp: SmtpTestServer) -> None:
    """Same rows, same bytes, and the restored installation keeps working."""
    before = every_row(source.runtime)
    assert every_row(restored) == before
    assert len(before["message_attempts"]) == 3 and len(before["blobs"]) == 4
    api = client(restored, source.token)  # the API token was restored (by its hash)
    for doc_id, files in source.documents.items():
        doc = call(api, "GET", f"/documents/{doc_id}", 200)
        for attachment, data in zip(doc["attachments"], files, strict=True):
            response = api.get(f"{API}/documents/{doc_id}/attachments/{attachment['id']}")
            assert response.status_code == 200 and response.content == data
    with restored.session() as session:
        account = session.scalars(select(t.MailAccount)).one()
        assert account.password_encrypted and TEST_PASSWORD not in account.password_encrypted
        assert restored.secrets.decrypt(account.password_encrypted) == TEST_PASSWORD
    body = {"type": "invoice", "number": "A-99", "party_code": "C1"}
    new = call(api, "POST", "/documents", 201, json=body)
    assert new["id"] == max(row["id"] for row in before["documents"]) + 1  # sequences go on
    call(api, "POST", f"/documents/{new['id']}/send", 202, json={})
    assert Worker(restored, "restored-worker").drain() == 1  # logs in with the password
    assert smtp.messages[-1].message["Subject"] and len(smtp.messages) == 3
    api.close()


# ---------------------------------------------------------------- round trips


def test_the_cli_backs_up_a_sqlite_installation_and_restores_it_into_a_new_one(
    sqlite_template: Path, tmp_path: Path, smtp_server: SmtpTestServer
) -> None:
    keys = (Fernet.generate_key().decode(),)
    source_url = fresh_sqlite(sqlite_template, tmp_path / "source.sqlite3")
    source = populate(
        runtime_for(source_url, tmp_path / "a", keys, smtp_server.ca_file), smtp_server
    )
    archive = tmp_path / "backup.tar.gz"
    runner = CliRunner()
    env = {"DOCMAIL_SECRET_KEY": keys[0], "DOCMAIL_DATA_DIR": str(tmp_path / "a")}

    made = runner.invoke(
        cli, ["backup", str(archive)], env={**env, "DOCMAIL_DATABASE_URL": source_url}
    )
    assert made.exit_code == 0, made.output
    assert "documents: 3 row(s)" in made.output and "4 attachment file(s)" in made.output
    assert archive.stat().st_mode & 0o077 == 0, "the archive is readable by its owner only"
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile(MANIFEST_NAME))  # type: ignore[arg-type]
        contents = b"".join(tar.extractfile(m).read() for m in tar if m.isfile())  # type: ignore[union-attr]
    assert manifest["database"] == "sqlite" and manifest["row_counts"]["documents"] == 3
    assert manifest["files"][f"blobs/{hashlib.sha256(PDF).hexdigest()}"]["size"] == len(PDF)
    assert TEST_PASSWORD.encode() not in contents, "no secret in clear in the archive"

    target_url = fresh_sqlite(sqlite_template, tmp_path / "target.sqlite3")
    target_env = {
        **env,
        "DOCMAIL_DATABASE_URL": target_url,
        "DOCMAIL_DATA_DIR": str(tmp_path / "b"),
    }
    loaded = runner.invoke(cli, ["restore", str(archive)], env=target_env)
    assert loaded.exit_code == 0, loaded.output
    assert "restored: " in loaded.output
    restored = runtime_for(target_url, tmp_path / "b", keys, smtp_server.ca_file)
    assert_restored(source, restored, smtp_server)

    again = runner.invoke(cli, ["restore", str(archive)], env=target_env)
    assert again.exit_code == 2 and "target database is not empty" in again.output


@pytest.mark.postgres
def test_a_sqlite_backup_restores_into_postgresql(
    sqlite_template: Path,
    postgres_server: PostgresServer,
    tmp_path: Path,
    smtp_server: SmtpTestServer,
) -> None:
    keys = (Fernet.generate_key().decode(),)
    source_url = fresh_sqlite(sqlite_template, tmp_path / "source.sqlite3")
    source = populate(
        runtime_for(source_url, tmp_path / "a", keys, smtp_server.ca_file), smtp_server
    )
    archive = tmp_path / "backup.tar.gz"
    create_backup(source.runtime, archive)
    target = runtime_for(fresh_postgres(postgres_server), tmp_path / "b", keys, smtp_server.ca_file)
    summary = restore_backup(target, archive)
    assert summary.rows["documents"] == 3 and summary.blobs == 4
    assert_restored(source, target, smtp_server)


@pytest.mark.postgres
def test_a_postgresql_backup_restores_into_sqlite(
    sqlite_template: Path,
    postgres_server: PostgresServer,
    tmp_path: Path,
    smtp_server: SmtpTestServer,
) -> None:
    keys = (Fernet.generate_key().decode(),)
    source_rt = runtime_for(
        fresh_postgres(postgres_server), tmp_path / "a", keys, smtp_server.ca_file
    )
    source = populate(source_rt, smtp_server)
    archive = tmp_path / "backup.tar.gz"
    assert create_backup(source.runtime, archive).rows["message_attempts"] == 3
    target_url = fresh_sqlite(sqlite_template, tmp_path / "target.sqlite3")
    target = runtime_for(target_url, tmp_path / "b", keys, smtp_server.ca_file)
    restore_backup(target, archive)
    assert_restored(source, target, smtp_server)


def test_the_backup_is_one_snapshot_while_others_keep_writing(
    database_url: str, sqlite_template: Path, tmp_path: Path, smtp_server: SmtpTestServer
) -> None:
    keys = (Fernet.generate_key().decode(),)
    source = populate(
        runtime_for(database_url, tmp_path / "a", keys, smtp_server.ca_file), smtp_server
    )
    before = every_row(source.runtime)

    def write_meanwhile(table: str, rows: int) -> None:
        # A company and its party committed after the companies table was read: a torn
        # dump would carry the party without its company.
        if table == "companies":
            other = make_tenant(source.runtime, "Later SA")
            body = {"code": "L1", "name": "Later", "email": "l@later.mx"}
            call(other.client, "POST", "/parties", 201, json=body)
            other.client.close()

    archive = tmp_path / "backup.tar.gz"
    create_backup(source.runtime, archive, on_table=write_meanwhile)
    assert len(every_row(source.runtime)["parties"]) == len(before["parties"]) + 1
    target_url = fresh_sqlite(sqlite_template, tmp_path / "target.sqlite3")
    target = runtime_for(target_url, tmp_path / "b", keys, smtp_server.ca_file)
    restore_backup(target, archive)
    assert every_row(target) == before


# ---------------------------------------------------------------- refusals


def _rewrite(archive: Path, target: Path, change: Callable[[str, bytes], bytes]) -> Path:
    """Copy ``archive`` member by member, letting ``change`` alter each member's bytes."""
    with tarfile.open(archive) as old, tarfile.open(target, "w:gz") as new:
        for member in old:
            data = change(member.name, old.extractfile(member).read())  # type: ignore[union-attr]
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))
    return target


def _flip_a_blob_byte(name: str, data: bytes) -> bytes:
    if name.startswith("blobs/") and len(data) > 1000:
        return data[:500] + bytes([data[500] ^ 0x01]) + data[501:]
    return data


def _older_revision(name: str, data: bytes) -> bytes:
    if name != MANIFEST_NAME:
        return data
    manifest = json.loads(data)
    manifest["alembic_revision"] = "0005"
    return json.dumps(manifest).encode()


def test_a_damaged_foreign_or_misplaced_archive_is_refused_with_nothing_written(
    sqlite_template: Path, tmp_path: Path, smtp_server: SmtpTestServer
) -> None:
    keys = (Fernet.generate_key().decode(),)
    source_url = fresh_sqlite(sqlite_template, tmp_path / "source.sqlite3")
    source = populate(
        runtime_for(source_url, tmp_path / "a", keys, smtp_server.ca_file), smtp_server
    )
    archive = tmp_path / "backup.tar.gz"
    create_backup(source.runtime, archive)
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    not_gzip = tmp_path / "plain.tar.gz"
    not_gzip.write_bytes(gzip.decompress(archive.read_bytes())[:5000])
    cases = {
        _rewrite(archive, tmp_path / "flipped.tar.gz", _flip_a_blob_byte): "does not match",
        truncated: "damaged",
        not_gzip: "cannot read it as a .tar.gz file",
        _rewrite(archive, tmp_path / "old.tar.gz", _older_revision): "revision 0005",
    }
    target_url = fresh_sqlite(sqlite_template, tmp_path / "target.sqlite3")
    target = runtime_for(target_url, tmp_path / "b", keys, smtp_server.ca_file)
    for bad, words in cases.items():
        with pytest.raises(ValidationError, match=words):
            restore_backup(target, bad)
    with target.engine.connect() as conn:
        assert table_has_rows(conn) == []

    other_keys = runtime_for(target_url, tmp_path / "c", (Fernet.generate_key().decode(),), "")
    with pytest.raises(ValidationError, match="cannot be decrypted with this installation's keys"):
        restore_backup(other_keys, archive)
    with target.engine.connect() as conn:
        assert table_has_rows(conn) == []

    env = {"DOCMAIL_DATABASE_URL": target_url, "DOCMAIL_SECRET_KEY": keys[0]}
    result = CliRunner().invoke(cli, ["restore", str(truncated)], env=env)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is damaged" in errors[0] and "nothing was restored" in errors[0]
