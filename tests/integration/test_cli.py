"""The docmail command line, run in-process with CliRunner and (for serve) as a real process."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from docmail.adapters.db import tables as t
from docmail.adapters.smtp.catcher import CaughtEnvelope, MailCatcher
from docmail.bootstrap import build_runtime
from docmail.cli.importer import parse_contacts
from docmail.cli.main import cli
from docmail.config import Settings
from docmail.demo import DEMO_COMPANY, load_demo, minimal_pdf
from docmail.services.companies import authenticate_token
from docmail.services.runtime import Runtime

# ---------------------------------------------------------------- helpers


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DOCMAIL_DATABASE_URL", "DOCMAIL_TOKEN", "DOCMAIL_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "data"
    monkeypatch.setenv("DOCMAIL_DATA_DIR", str(directory))
    monkeypatch.setenv("DOCMAIL_OUTBOUND_ALLOW", "127.0.0.0/8,::1")  # the catcher's address
    return directory


@pytest.fixture
def runtime(data_dir: Path) -> Iterator[Runtime]:
    rt = build_runtime(Settings.from_env())
    yield rt
    rt.engine.dispose()


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def count(runtime: Runtime, table: type[t.Base]) -> int:
    with runtime.session() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def last_line(result: Result) -> str:
    return result.stdout.strip().splitlines()[-1]


# ---------------------------------------------------------------- init and secrets


def test_init_prints_a_token_on_its_last_line_that_authenticates(
    data_dir: Path, runtime: Runtime
) -> None:
    result = run("init", "--company", "Acme SA de CV", "--admin-email", "boss@acme.example.com")
    assert result.exit_code == 0, result.output
    token = last_line(result)
    assert re.fullmatch(r"dm_\S+", token)
    assert "generated, shown once" in result.stdout  # no terminal, no password given
    actor = authenticate_token(runtime, token)
    with runtime.session() as session:
        company = session.get_one(t.Company, actor.company_id)
        assert (company.name, company.country, company.default_language) == (
            "Acme SA de CV",
            "MX",
            "es",
        )
        user = session.scalar(select(t.User).where(t.User.email == "boss@acme.example.com"))
        assert user is not None


def test_init_again_with_the_same_company_name_issues_a_new_token_without_a_duplicate(
    data_dir: Path, runtime: Runtime
) -> None:
    args = ("init", "--company", "Acme", "--country", "co", "--admin-password", "s3cret-pass")
    first, second = run(*args), run(*args)
    assert first.exit_code == second.exit_code == 0, second.output
    assert "exists; reusing it" in second.stdout
    assert last_line(first) != last_line(second)
    ids = {authenticate_token(runtime, last_line(r)).company_id for r in (first, second)}
    assert len(ids) == 1
    assert count(runtime, t.Company) == 1
    assert count(runtime, t.User) == 1
    assert count(runtime, t.Membership) == 1


def test_init_with_a_short_password_prints_one_error_line_and_exits_with_2(data_dir: Path) -> None:
    result = run("init", "--admin-password", "short")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: password must have at least 8 characters (field: admin-password)"
    )
    assert "Traceback" not in result.output


def test_secrets_new_key_prints_a_fernet_key() -> None:
    result = run("secrets", "new-key")
    assert result.exit_code == 0
    Fernet(result.stdout.strip().encode())


# ---------------------------------------------------------------- import

PARTIES = [
    {
        "code": "C-001",
        "name": "Abarrotes Norte SA de CV",
        "tax_id": "ANO010101AA1",
        "contacts": [{"name": "Pagos", "email": "pagos@norte.example.com", "roles": ["finance"]}],
    },
    {"code": "C-002", "name": "Loja Sul Ltda", "language": "pt", "email": "sul@sul.example.com"},
]
DOCUMENTS = [
    {
        "type": "invoice",
        "number": "F-1",
        "party_code": "C-001",
        "total": 1160.5,
        "currency": "MXN",
        "issue_date": "2025-09-01",
    },
    {
        "type": "boleto",
        "number": "B-9",
        "party_code": "C-002",
        "total": "99.90",
        "currency": "BRL",
        "due_date": "2025-10-01",
    },
]


def write_json(path: Path, parties: list[dict[str, object]], docs: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"parties": parties, "documents": docs}))
    return path


def test_import_of_a_json_file_creates_parties_and_documents_and_a_repeat_reports_them_existing(
    data_dir: Path, tmp_path: Path, runtime: Runtime
) -> None:
    run("init")
    source = write_json(tmp_path / "load.json", PARTIES, DOCUMENTS)
    first = run("import", str(source))
    assert first.exit_code == 0, first.output
    assert "created: 4, existing: 0, errors: 0" in first.stdout
    assert count(runtime, t.Party) == 2
    assert count(runtime, t.Document) == 2
    with runtime.session() as session:
        doc = session.scalar(select(t.Document).where(t.Document.number == "F-1"))
        assert doc is not None and str(doc.total) == "1160.500000"

    again = run("import", str(source))
    assert again.exit_code == 0, again.output
    assert "created: 0, existing: 4, errors: 0" in again.stdout
    assert "existing, skipped: party C-001" in again.stdout
    assert "existing, skipped: invoice F-1" in again.stdout
    assert count(runtime, t.Document) == 2


def test_a_bad_row_is_reported_with_its_field_and_exit_code_1_while_other_rows_are_imported(
    data_dir: Path, tmp_path: Path, runtime: Runtime
) -> None:
    run("init")
    bad = {"code": "C-003", "name": "Mala", "contacts": [{"email": "not-an-email"}]}
    source = write_json(tmp_path / "load.json", [PARTIES[0], bad, PARTIES[1]], DOCUMENTS)
    result = run("import", str(source))
    assert result.exit_code == 1
    assert "created: 4, existing: 0, errors: 1" in result.stdout
    assert re.search(
        r"parties\[1\]: .*not-an-email.* \(field: contacts\[0\]\.email\)", result.stdout
    )
    assert count(runtime, t.Party) == 2


def test_import_of_csv_files_parses_contacts_and_documents(
    data_dir: Path, tmp_path: Path, runtime: Runtime
) -> None:
    run("init")
    parties = tmp_path / "parties.csv"
    parties.write_text(
        "code,name,tax_id,email,language,contacts\n"
        'P1,"Café, SA",CAF010101AA1,,es,"Ana Ruiz <ana@cafe.example.com> [finance einvoice]; '
        'cfdi@cafe.example.com [einvoice]"\n'
        "P2,Northwind,,ap@nw.example.com,en,\n"
    )
    documents = tmp_path / "documents.csv"
    documents.write_text(
        "type,number,party_code,issue_date,due_date,total,currency,status,fiscal_id\n"
        "invoice,A-7,P1,2025-09-01,2025-10-01,1234.50,MXN,stamped,UUID-1\n"
        "invoice,A-8,NOPE,2025-09-01,,10,MXN,,\n"
    )
    assert run("import", str(parties)).exit_code == 0
    result = run("import", str(documents))
    assert result.exit_code == 1
    assert "line 3: party with code 'NOPE' not found (field: party_code)" in result.stdout
    with runtime.session() as session:
        contacts = session.scalars(select(t.Contact).order_by(t.Contact.id)).all()
        assert [(c.name, c.email, c.roles) for c in contacts] == [
            ("Ana Ruiz", "ana@cafe.example.com", ["finance", "einvoice"]),
            ("", "cfdi@cafe.example.com", ["einvoice"]),
        ]
    assert count(runtime, t.Document) == 1


def test_contacts_cell_rejects_an_entry_without_an_address() -> None:
    with pytest.raises(ValueError, match="must look like"):
        parse_contacts("Ana Ruiz [finance]")


# ---------------------------------------------------------------- demo data


def test_demo_data_loads_twice_without_duplicating(data_dir: Path, runtime: Runtime) -> None:
    first = load_demo(runtime, catcher_port=2525)
    sizes = [count(runtime, table) for table in (t.Company, t.Party, t.Document, t.MailAccount)]
    second = load_demo(runtime, catcher_port=2626)
    assert [count(runtime, table) for table in (t.Company, t.Party, t.Document, t.MailAccount)] == (
        sizes
    )
    assert sizes[0] == 1 and sizes[1] >= 5 and sizes[2] >= 12
    assert (second.company_id, second.token, second.account_id) == (
        first.company_id,
        first.token,
        first.account_id,
    )
    token_file = data_dir / "demo-token.txt"
    assert token_file.read_text().strip() == first.token
    assert token_file.stat().st_mode & 0o777 == 0o600
    with runtime.session() as session:
        account = session.get_one(t.MailAccount, first.account_id)
        assert (account.host, account.port, account.security) == ("127.0.0.1", 2626, "none")
        types = set(session.scalars(select(t.Document.doc_type)))
        assert {"invoice", "credit_note", "nfe", "boleto", "quote", "retention"} <= types
        nfe = session.scalar(select(t.Document).where(t.Document.doc_type == "nfe"))
        assert nfe is not None and nfe.fiscal_id and re.fullmatch(r"\d{44}", nfe.fiscal_id)


def _check_xref(data: bytes) -> int:
    """Check every xref offset points at 'N 0 obj'; return the number of objects."""
    startxref = int(data.rsplit(b"startxref", 1)[1].split()[0])
    assert data[startxref:].startswith(b"xref")
    lines = data[startxref:].split(b"\n")
    first, size = map(int, lines[1].split())
    entries = lines[2 : 2 + size]
    assert all(len(e) == 19 for e in entries)  # 20 bytes each with the newline
    for number, entry in enumerate(entries, start=first):
        offset, _, kind = entry.split()
        if kind == b"n":
            assert data[int(offset) :].startswith(b"%d 0 obj" % number)
    return size - 1


def test_the_demo_pdf_is_a_valid_one_page_pdf() -> None:
    data = minimal_pdf(f"{DEMO_COMPANY} - invoice A-1001", ["Número: A-1001", "(a) \\ b"])
    assert data.startswith(b"%PDF-1.")
    assert data.rstrip().endswith(b"%%EOF")
    assert _check_xref(data) == 5
    try:
        import pypdf
    except ImportError:
        return
    import io

    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    assert len(reader.pages) == 1
    assert "A-1001" in reader.pages[0].extract_text()


def test_every_demo_document_has_a_pdf_and_stamped_e_documents_an_xml(
    data_dir: Path, runtime: Runtime
) -> None:
    load_demo(runtime)
    with runtime.session() as session:
        for doc in session.scalars(select(t.Document)):
            kinds = sorted(a.content_type for a in doc.attachments)
            expect_xml = doc.doc_type == "nfe" or (
                doc.doc_type in ("invoice", "credit_note", "payment", "retention")
                and doc.status == "stamped"
            )
            assert kinds == (
                ["application/pdf", "application/xml"] if expect_xml else ["application/pdf"]
            ), doc.number
            pdf = next(a for a in doc.attachments if a.content_type == "application/pdf")
            blob = session.get_one(t.Blob, pdf.blob_sha256).data
            assert doc.number.encode() in blob
            _check_xref(blob)


# ---------------------------------------------------------------- send and messages


@pytest.fixture
def catcher() -> Iterator[tuple[MailCatcher, list[CaughtEnvelope]]]:
    caught: list[CaughtEnvelope] = []
    server = MailCatcher(caught.append, port=0)
    server.start()
    yield server, caught
    server.stop()


def test_send_wait_delivers_through_smtp_and_messages_lists_it(
    data_dir: Path, runtime: Runtime, catcher: tuple[MailCatcher, list[CaughtEnvelope]]
) -> None:
    server, caught = catcher
    token = load_demo(runtime, catcher_port=server.port).token
    env = {"DOCMAIL_TOKEN": token}
    result = run("send", "--type", "invoice", "--number", "A-1001", "--wait", env=env)
    assert result.exit_code == 0, result.output
    assert "sent" in result.stdout
    assert len(caught) == 1 and caught[0].subject.startswith("Factura A-1001")
    assert sorted(caught[0].rcpt_to) == [
        "cfdi@laesperanza.example.com",
        "cxp@laesperanza.example.com",
    ]

    listed = run("messages", "--state", "sent", env=env)
    assert listed.exit_code == 0, listed.output
    assert "Factura A-1001" in listed.stdout
    assert "cxp@laesperanza.example.com" in listed.stdout
    assert "1 of 1 message(s)" in listed.stdout


def test_a_quote_needs_to_and_a_batch_is_queued_per_party(
    data_dir: Path, runtime: Runtime, catcher: tuple[MailCatcher, list[CaughtEnvelope]]
) -> None:
    server, caught = catcher
    token = load_demo(runtime, catcher_port=server.port).token
    env = {"DOCMAIL_TOKEN": token}
    refused = run("send", "--type", "quote", "--number", "COT-0456", env=env)
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: to: give at least one recipient")
    quote = run(
        "send",
        "--type",
        "quote",
        "--number",
        "COT-0456",
        "--to",
        "Ing. Rojas <rojas@andina.example.com>",
        "--wait",
        env=env,
    )
    assert quote.exit_code == 0, quote.output
    assert caught[-1].rcpt_to == ["rojas@andina.example.com"]

    with runtime.session() as session:
        ids = list(
            session.scalars(
                select(t.Document.id).where(
                    t.Document.number.in_(["A-1001", "NC-0201", "000123456"])
                )
            )
        )
    args = [f"--document-id={i}" for i in ids]
    batch = run("send", *args, "--mode", "per_party", "--wait", env=env)
    assert batch.exit_code == 0, batch.output
    assert "2 emails queued for 3 documents, 0 documents failed" in batch.stdout
    assert len(caught) == 3


def test_several_companies_without_a_token_is_an_error(data_dir: Path) -> None:
    run("init", "--company", "One")
    run("init", "--company", "Two")
    result = run("messages")
    assert result.exit_code == 2
    assert "several companies exist" in result.stderr
    assert "(field: token)" in result.stderr


# ---------------------------------------------------------------- serve --demo as a process


@dataclass
class ServeRun:
    data_dir: Path
    token: str
    caught: list[dict[str, object]]
    exit_code: int | None
    log: str


def _docmail_executable() -> str:
    local = Path(sys.executable).with_name("docmail")
    return str(local) if local.exists() else shutil.which("docmail") or "docmail"


def _wait_health(client: httpx.Client, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "docmail serve exited early"
        try:
            if client.get("/api/v1/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("docmail serve did not answer /api/v1/health in time")


def _send_and_catch(client: httpx.Client, token: str) -> list[dict[str, object]]:
    auth = {"Authorization": f"Bearer {token}"}
    found = client.get(
        "/api/v1/documents", params={"type": "invoice", "number": "A-1001"}, headers=auth
    ).json()["items"]
    doc_id = next(d["id"] for d in found if d["number"] == "A-1001")
    assert client.post(f"/api/v1/documents/{doc_id}/send", headers=auth).status_code == 202
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        items: list[dict[str, object]] = client.get(
            "/api/v1/catcher/messages", headers=auth
        ).json()["items"]
        if items:
            return items
        time.sleep(0.2)
    return []


def _stop(proc: subprocess.Popen[bytes]) -> int | None:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> ServeRun:
    data_dir = tmp_path_factory.mktemp("serve") / "data"
    port, catcher_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCMAIL_")}
    env["DOCMAIL_DATA_DIR"] = str(data_dir)
    log_path = data_dir.parent / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                _docmail_executable(),
                "serve",
                "--demo",
                "--port",
                str(port),
                "--catcher-port",
                str(catcher_port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                _wait_health(client, proc, timeout=30)
                token = (data_dir / "demo-token.txt").read_text().strip()
                caught = _send_and_catch(client, token)
        finally:
            code = _stop(proc)
    return ServeRun(data_dir, token, caught, code, log_path.read_text(errors="replace"))


@pytest.mark.slow
def test_serve_demo_delivers_to_its_catcher_and_stops_cleanly_on_sigterm(served: ServeRun) -> None:
    assert served.caught, served.log
    assert served.caught[0]["subject"] == "Factura A-1001 de Demo Comercial SA de CV"
    assert served.exit_code == 0, served.log
    assert "http://127.0.0.1:" in served.log and "/docs" in served.log
    assert served.token in served.log
    assert "/api/v1/catcher/messages" in served.log


@pytest.mark.slow
def test_messages_lists_the_message_sent_by_the_server(
    served: ServeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCMAIL_DATABASE_URL", raising=False)
    env = {"DOCMAIL_DATA_DIR": str(served.data_dir), "DOCMAIL_TOKEN": served.token}
    result = run("messages", "--limit", "5", env=env)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "Factura A-1001" in line)
    assert "sent" in row and "250" in row


def test_attachment_base64_in_json_import_is_stored(
    data_dir: Path, tmp_path: Path, runtime: Runtime
) -> None:
    run("init")
    pdf = minimal_pdf("Invoice F-2", ["F-2"])
    doc = {
        **DOCUMENTS[0],
        "number": "F-2",
        "attachments": [
            {
                "filename": "F-2.pdf",
                "content_type": "application/pdf",
                "content_base64": base64.b64encode(pdf).decode(),
            }
        ],
    }
    source = write_json(tmp_path / "one.json", PARTIES[:1], [doc])
    assert run("import", str(source)).exit_code == 0
    with runtime.session() as session:
        stored = session.scalar(select(t.DocumentAttachment))
        assert stored is not None and stored.size == len(pdf)
