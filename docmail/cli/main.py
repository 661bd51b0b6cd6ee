"""The ``docmail`` command: set up, run the server and workers, import, send, inspect.

Every command reads its settings from the environment (``DOCMAIL_DATA_DIR``,
``DOCMAIL_DATABASE_URL``, ``DOCMAIL_SECRET_KEY``, ...) and brings the database
schema up to date before it starts. Expected errors print one red line,
``error: <message> (field: <field>)``, and exit with code 2.
"""

from __future__ import annotations

import logging
import os
import secrets as pysecrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select
from sqlalchemy.engine import make_url

from docmail import __version__
from docmail.adapters.db import tables as t
from docmail.adapters.secrets import SecretBox, install_log_redaction
from docmail.bootstrap import build_runtime
from docmail.cli import output
from docmail.cli.importer import CSV_HELP, ImportReport, import_rows, pydantic_errors, read_rows
from docmail.config import Settings
from docmail.demo import (
    DEMO_PASSWORD,
    DEMO_TOKEN_FILE,
    DEMO_USER,
    DemoInfo,
    find_company,
    load_demo,
)
from docmail.domain.addresses import normalize_email
from docmail.domain.outbox import FINAL_STATES, MessageState
from docmail.errors import (
    AuthenticationRequired,
    ConfigurationError,
    DocmailError,
    NotFound,
    ValidationError,
)
from docmail.services.batches import BatchResult, send_batch
from docmail.services.companies import (
    add_membership,
    authenticate_token,
    create_api_token,
    create_company,
    create_user,
)
from docmail.services.documents import DocumentFilter, list_documents
from docmail.services.inputs import BatchIn, SendIn
from docmail.services.messages import MessageFilter, get_message, list_messages
from docmail.services.runtime import Actor, Role, Runtime
from docmail.services.sending import send_document

log = logging.getLogger("docmail.cli")

MIN_PASSWORD = 8


class DocmailGroup(click.Group):
    """A click group that turns expected errors into one red line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DocmailError as exc:
            output.print_error(exc)
            ctx.exit(2)
        except PydanticValidationError as exc:
            first = pydantic_errors("input", exc)[0]
            output.print_error(ValidationError(first.message, field=first.field))
            ctx.exit(2)


@click.group(cls=DocmailGroup)
@click.version_option(__version__, prog_name="docmail")
def cli() -> None:
    """Email business documents (invoices, NF-e, boletos, quotes, ...) to your customers.

    Settings come from the environment: DOCMAIL_DATA_DIR (default ./docmail-data),
    DOCMAIL_DATABASE_URL (default SQLite in the data directory), DOCMAIL_SECRET_KEY.
    """


# ---------------------------------------------------------------- shared helpers


@contextmanager
def open_runtime() -> Iterator[Runtime]:
    """Build the runtime from the environment (migrating the schema) and dispose of it after."""
    runtime = build_runtime(Settings.from_env())
    redactor = install_log_redaction(runtime.secrets)  # no secret reaches the logs in clear
    try:
        yield runtime
    finally:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(redactor)
        runtime.engine.dispose()


def token_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--token",
        envvar="DOCMAIL_TOKEN",
        help="API token of the company to act for (or DOCMAIL_TOKEN); "
        "optional when only one company exists.",
    )(func)


def resolve_actor(runtime: Runtime, token: str | None) -> Actor:
    """The token's company; without a token, the only company (as its admin)."""
    if token:
        return authenticate_token(runtime, token.strip())
    with runtime.session() as session:
        ids = list(session.scalars(select(t.Company.id).order_by(t.Company.id).limit(2)))
    if not ids:
        raise ConfigurationError("there is no company yet; run `docmail init` first")
    if len(ids) > 1:
        raise AuthenticationRequired(
            "several companies exist; say which one with --token (or DOCMAIL_TOKEN)",
            field="token",
        )
    return Actor(company_id=ids[0], role=Role.ADMIN, label="cli")


def echo_flush(text: str = "") -> None:
    click.echo(text)
    sys.stdout.flush()


# ---------------------------------------------------------------- init


def _ask_password() -> tuple[str, bool]:
    """A password from the terminal (hidden), or a generated one when there is no terminal."""
    if sys.stdin.isatty():
        while True:
            value: str = click.prompt("Admin password", hide_input=True, confirmation_prompt=True)
            if len(value) >= MIN_PASSWORD:
                return value, False
            click.echo(f"the password needs at least {MIN_PASSWORD} characters", err=True)
    return pysecrets.token_urlsafe(12), True


def _ensure_admin(runtime: Runtime, company_id: int, email: str, password: str | None) -> str:
    """Create the admin user (or reuse it) with an admin membership; describe what happened."""
    with runtime.session() as session:
        user = session.scalar(select(t.User).where(t.User.email == email))
        user_id = user.id if user else None
        member = user_id is not None and session.scalar(
            select(t.Membership.id).where(
                t.Membership.user_id == user_id, t.Membership.company_id == company_id
            )
        )
    note = f"admin user: {email} exists; password unchanged"
    if user_id is None:
        generated = False
        if password is None:
            password, generated = _ask_password()
        user_id = create_user(runtime, email, password).id
        note = f"admin user: {email} created"
        if generated:
            note += f"\nadmin password (generated, shown once): {password}"
    if not member:
        add_membership(runtime, user_id, company_id, Role.ADMIN)
    return note


def _check_init_input(email: str, password: str | None) -> str:
    if password is not None and len(password) < MIN_PASSWORD:
        raise ValidationError(
            f"password must have at least {MIN_PASSWORD} characters", field="admin-password"
        )
    return normalize_email(email, "admin-email")


@cli.command()
@click.option("--company", default="My Company", show_default=True, help="Company name.")
@click.option(
    "--country",
    type=click.Choice(["MX", "CO", "BR"], case_sensitive=False),
    default="MX",
    show_default=True,
)
@click.option("--language", type=click.Choice(["es", "pt", "en"]), default="es", show_default=True)
@click.option("--admin-email", default="admin@example.com", show_default=True)
@click.option(
    "--admin-password",
    default=None,
    help="Asked (hidden) when omitted on a terminal; generated and printed otherwise.",
)
def init(
    company: str, country: str, language: str, admin_email: str, admin_password: str | None
) -> None:
    """Set up the database, a company, its admin user and an API token.

    The API token is printed alone on the last line, so scripts can do
    TOKEN=$(docmail init --company ACME | tail -1). Running init again with the
    name of an existing company keeps that company and issues a new token.
    """
    email = _check_init_input(admin_email, admin_password)
    with open_runtime() as runtime:
        url = make_url(runtime.settings.resolved_database_url)
        click.echo(f"database: {url.render_as_string(hide_password=True)} (up to date)")
        company_id = find_company(runtime, company)
        if company_id is None:
            company_id = create_company(
                runtime, company, country=country.upper(), language=language
            ).id
            click.echo(f"company: {company.strip()} (id {company_id}) created")
        else:
            click.echo(f"company: {company.strip()} (id {company_id}) exists; reusing it")
        click.echo(_ensure_admin(runtime, company_id, email, admin_password))
        token = create_api_token(runtime, company_id, f"init {time.strftime('%Y-%m-%d %H:%M')}")
    click.echo("API token (shown once, keep it secret):")
    click.echo(token)


# ---------------------------------------------------------------- serve and worker


class Shutdown:
    """Records SIGINT/SIGTERM and asks a running uvicorn server to exit."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.server: Any = None
        self._previous: dict[int, Any] = {}

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested.set()
        if self.server is not None:
            self.server.should_exit = True

    @contextmanager
    def installed(self) -> Iterator[Shutdown]:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self.handle)
        try:
            yield self
        finally:
            for number, handler in self._previous.items():
                signal.signal(number, handler)


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP line


def _start_workers(runtime: Runtime, count: int) -> Any:
    from docmail.worker.pool import WorkerPool

    return WorkerPool(runtime, count).start()


def _stop_workers(pool: Any, timeout: float = 15.0) -> None:
    pool.stop(timeout)


def _store_caught(runtime: Runtime) -> Callable[[Any], None]:
    def on_message(envelope: Any) -> None:
        with runtime.session() as session:
            session.add(
                t.CaughtMessage(
                    mail_from=envelope.mail_from,
                    rcpt_to=list(envelope.rcpt_to),
                    subject=envelope.subject,
                    raw=envelope.raw,
                )
            )
        log.info("caught a message for %s: %s", ", ".join(envelope.rcpt_to), envelope.subject)

    return on_message


def _start_catcher(runtime: Runtime, port: int) -> Any:
    from docmail.adapters.smtp.catcher import MailCatcher

    catcher = MailCatcher(_store_caught(runtime), host="127.0.0.1", port=port)
    try:
        catcher.start()
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot start the mail catcher on 127.0.0.1:{port}: {exc}", field="catcher-port"
        ) from exc
    return catcher


def _print_banner(
    runtime: Runtime, host: str, port: int, demo: DemoInfo | None, catcher_port: int | None
) -> None:
    base = f"http://{host}:{port}"
    echo_flush(f"docmail {__version__} on {base}")
    echo_flush(f"  web app:       {base}/")
    echo_flush(f"  API docs:      {base}/docs")
    if demo is not None:
        echo_flush(f"  sign in:       {DEMO_USER} / {DEMO_PASSWORD}")
        token_file = runtime.settings.data_dir / DEMO_TOKEN_FILE
        echo_flush(f"  API token:     {demo.token}")
        echo_flush(f"                 (saved in {token_file})")
        echo_flush(f"  mail catcher:  smtp://127.0.0.1:{catcher_port} (accepts everything)")
        echo_flush(f"  caught mail:   GET {base}/api/v1/catcher/messages")
        echo_flush(
            f'  try:           curl -H "Authorization: Bearer {demo.token}" {base}/api/v1/documents'
        )


def _run_uvicorn(runtime: Runtime, host: str, port: int, shutdown: Shutdown) -> None:
    import uvicorn

    from docmail.http.app import create_app

    config = uvicorn.Config(create_app(runtime), host=host, port=port, log_level="info")
    server = uvicorn.Server(config)
    shutdown.server = server
    if not shutdown.requested.is_set():
        server.run()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Load demo data and start a local mail catcher.")
@click.option("--no-worker", is_flag=True, help="Do not deliver mail in this process.")
@click.option(
    "--catcher-port",
    default=2525,
    show_default=True,
    type=int,
    help="Port of the demo mail catcher (127.0.0.1 only).",
)
def serve(host: str, port: int, demo: bool, no_worker: bool, catcher_port: int) -> None:
    """Run the HTTP API (and, unless --no-worker, a delivery worker) in this process.

    With --demo, a mail catcher listens on 127.0.0.1:CATCHER-PORT and stores every
    message it receives (see GET /api/v1/catcher/messages); demo data is loaded
    once and its API token is kept in DATA_DIR/demo-token.txt. Ctrl-C or SIGTERM
    stops the server, the worker and the catcher gracefully.
    """
    _configure_logging()
    catcher: Any = None
    workers: Any = None
    with Shutdown().installed() as shutdown, open_runtime() as runtime:
        try:
            info = None
            if demo:
                catcher = _start_catcher(runtime, catcher_port)
                info = load_demo(runtime, catcher_port=catcher.port)
            if not no_worker:
                workers = _start_workers(runtime, 1)
            _print_banner(runtime, host, port, info, catcher.port if catcher else None)
            _run_uvicorn(runtime, host, port, shutdown)
        finally:
            if workers is not None:
                _stop_workers(workers)
            if catcher is not None:
                catcher.stop()
    echo_flush("docmail stopped")


@cli.command()
@click.option(
    "--concurrency",
    "-c",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Number of delivery threads.",
)
def worker(concurrency: int) -> None:
    """Deliver queued messages until SIGTERM or Ctrl-C (then finish the current one).

    Run as many worker processes as you like, on any machine, against the same
    DOCMAIL_DATABASE_URL: each message is claimed by one worker at a time.
    """
    _configure_logging()
    with Shutdown().installed() as shutdown, open_runtime() as runtime:
        started = _start_workers(runtime, concurrency)
        echo_flush(f"docmail worker: {concurrency} thread(s) delivering; Ctrl-C to stop")
        try:
            shutdown.requested.wait()
        finally:
            echo_flush("stopping workers...")
            _stop_workers(started)
    echo_flush("docmail worker stopped")


# ---------------------------------------------------------------- import


def _print_report(report: ImportReport) -> None:
    con = output.console()
    con.print(
        f"created: {len(report.created)}, existing: {len(report.existing)}, "
        f"errors: {len(report.errors)}"
    )
    for label in report.existing:
        con.print(f"  existing, skipped: {output.escape(label)}")
    for error in report.errors:
        con.print(f"  [red]error: {output.escape(str(error))}[/red]", soft_wrap=True)


@cli.command("import", epilog=CSV_HELP)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@token_option
def import_(file: Path, token: str | None) -> None:
    """Import parties and documents from FILE (.json or .csv).

    Existing party codes and document numbers are reported and left unchanged, so
    an import can be repeated safely. Bad rows are reported with their row, field
    and message while the other rows are still imported; the exit code is then 1.
    """
    rows = read_rows(file)
    with open_runtime() as runtime:
        actor = resolve_actor(runtime, token)
        with output.progress_bar(f"importing {file.name}", len(rows)) as bar:
            report = import_rows(runtime, actor, rows, advance=bar.advance)
    _print_report(report)
    if report.errors:
        sys.exit(1)


# ---------------------------------------------------------------- send and messages


def _find_document_id(runtime: Runtime, actor: Actor, doc_type: str, number: str) -> int:
    flt = DocumentFilter(type=doc_type, number=number, limit=500)
    for doc in list_documents(runtime, actor, flt)[0]:
        if doc.number == number:
            return doc.id
    raise NotFound(f"{doc_type} {number} not found", field="number", value=number)


def _document_ids(
    runtime: Runtime, actor: Actor, doc_type: str | None, number: str | None, ids: tuple[int, ...]
) -> list[int]:
    if bool(doc_type) != bool(number):
        raise ValidationError("--type and --number go together", field="number")
    found = list(ids)
    if doc_type and number:
        found.append(_find_document_id(runtime, actor, doc_type, number))
    if not found:
        raise ValidationError(
            "say which documents to send: --type T --number N, or --document-id ID",
            field="document_id",
        )
    return list(dict.fromkeys(found))


def _send_batch(runtime: Runtime, actor: Actor, ids: list[int], mode: str) -> BatchResult:
    data = BatchIn(document_ids=ids, mode=mode)  # type: ignore[arg-type]
    with output.progress_bar("queueing", len(ids)) as bar:
        result = send_batch(runtime, actor, data, progress=bar.update)
    emails = len({i.message_id for i in result.items if i.message_id is not None})
    click.echo(
        f"batch {result.batch_id}: {emails} emails queued for {result.queued} documents, "
        f"{result.failed} documents failed"
    )
    for item in result.items:
        if item.error:
            docs = ", ".join(map(str, item.document_ids))
            field = f" (field: {item.field})" if item.field else ""
            output.warn(f"  documents {docs}: {item.error}{field}")
    return result


def _wait_final(runtime: Runtime, actor: Actor, ids: list[int], timeout: float) -> list[t.Message]:
    """Deliver in this process until every message is final or the timeout passes."""
    from docmail.worker.worker import Worker

    worker = Worker(runtime, name=f"cli-send-{os.getpid()}")
    deadline = time.monotonic() + timeout
    while True:
        worker.drain()
        rows = [get_message(runtime, actor, i) for i in ids]
        if all(MessageState(m.state) in FINAL_STATES for m in rows):
            return rows
        if time.monotonic() > deadline:
            output.warn(f"gave up waiting after {timeout:g} s; the rest stays queued")
            return rows
        time.sleep(0.5)


@cli.command()
@token_option
@click.option("--type", "doc_type", help="Document type code (with --number).")
@click.option("--number", help="Document number (with --type).")
@click.option(
    "--document-id",
    "document_ids",
    type=int,
    multiple=True,
    help="Document id; repeat for a batch.",
)
@click.option(
    "--to",
    "to",
    multiple=True,
    help="Recipient instead of the pre-filled ones (single document only); repeatable.",
)
@click.option(
    "--mode",
    type=click.Choice(["per_document", "per_party"]),
    default="per_document",
    show_default=True,
    help="For several documents: one email each, or one per party.",
)
@click.option("--wait", is_flag=True, help="Deliver now in this process and show the outcome.")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to --wait at most.")
def send(
    token: str | None,
    doc_type: str | None,
    number: str | None,
    document_ids: tuple[int, ...],
    to: tuple[str, ...],
    mode: str,
    wait: bool,
    timeout: float,
) -> None:
    """Queue the email for one document, or a batch for several.

    Recipients, subject and body are pre-filled from the party's contacts and the
    templates, as in the compose screen. With --wait the exit code is 1 unless
    every message was sent.
    """
    with open_runtime() as runtime:
        actor = resolve_actor(runtime, token)
        ids = _document_ids(runtime, actor, doc_type, number, document_ids)
        if len(ids) == 1 and mode == "per_document":
            outcome = send_document(runtime, actor, ids[0], SendIn(to=list(to) or None))
            message = outcome.message
            state = "already queued" if outcome.replayed else "queued"
            click.echo(
                f"message {message.id} {state}: {message.subject} -> {', '.join(message.to)}"
            )
            message_ids = [message.id]
        else:
            if to:
                raise ValidationError("--to works with a single document only", field="to")
            result = _send_batch(runtime, actor, ids, mode)
            message_ids = [i.message_id for i in result.items if i.message_id is not None]
        if wait and message_ids:
            rows = _wait_final(runtime, actor, message_ids, timeout)
            output.console().print(output.messages_table(rows, title="Delivery"))
            if any(m.state != MessageState.SENT.value for m in rows):
                sys.exit(1)


@cli.command()
@token_option
@click.option("--state", type=click.Choice([s.value for s in MessageState]))
@click.option("--document-id", type=int, help="Only messages about this document.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
def messages(token: str | None, state: str | None, document_id: int | None, limit: int) -> None:
    """Show the delivery log, newest first."""
    with open_runtime() as runtime:
        actor = resolve_actor(runtime, token)
        flt = MessageFilter(state=state, document_id=document_id, limit=limit)
        rows, total = list_messages(runtime, actor, flt)
    con = output.console()
    con.print(output.messages_table(rows))
    con.print(f"{len(rows)} of {total} message(s)")


# ---------------------------------------------------------------- secrets


@cli.group()
def secrets() -> None:
    """Encryption keys for secrets stored in the database (SMTP passwords)."""


@secrets.command("new-key")
def new_key() -> None:
    """Print a new key for DOCMAIL_SECRET_KEY (put it first in the list to rotate)."""
    click.echo(SecretBox.new_key())


@secrets.command("rotate")
def rotate_secrets_command() -> None:
    """Re-encrypt every stored secret with the first key of DOCMAIL_SECRET_KEY ("new,old")."""
    from docmail.services.secrets_rotation import rotate_secrets

    with open_runtime() as runtime:
        counts = rotate_secrets(runtime)
    for table, count in counts.items():
        click.echo(f"{table}: {count} secret(s) re-encrypted")
    click.echo(f"done: {sum(counts.values())} secret(s) now use the newest key")


# ---------------------------------------------------------------- e-invoices


@cli.command("import-einvoice")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--pdf",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The printed form from the ERP (otherwise docmail renders one).",
)
@click.option("--party-language", type=click.Choice(["es", "pt", "en"]), default=None)
@token_option
def import_einvoice(
    file: Path, pdf: Path | None, party_language: str | None, token: str | None
) -> None:
    """Import an e-invoice XML (CFDI, NF-e/CT-e, DIAN) as a stamped document.

    The party is found by the receiver's tax id or created. Importing the same
    document again reports it as existing and changes nothing.
    """
    from docmail.services.einvoices import import_einvoice as run_import

    with open_runtime() as runtime:
        actor = resolve_actor(runtime, token)
        result = run_import(
            runtime,
            actor,
            file.read_bytes(),
            pdf.read_bytes() if pdf else None,
            party_language,
        )
    doc = result.document
    state = "created" if result.created else "existing, unchanged"
    echo_flush(
        f"{state}: document {doc.id} {doc.doc_type} {doc.number} "
        f"(fiscal id {doc.fiscal_id}) for party {doc.party.code}"
        + (" (new party)" if result.party_created else "")
    )
