"""The ``docmail`` command: set up, run the server and workers, import, send, inspect.

Every command reads its settings from the environment (``DOCMAIL_DATA_DIR``,
``DOCMAIL_DATABASE_URL``, ``DOCMAIL_SECRET_KEY``, ...) and brings the database
schema up to date before it starts (under the migration lock), except ``serve`` and
``worker``: they refuse an older schema unless given ``--migrate`` (or ``serve --demo``).
Expected errors print one red line, ``error: <message> (field: <field>)``, and exit
with code 2.
"""

from __future__ import annotations

import os
import secrets as pysecrets
import sys
import time
from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.engine import make_url

from docmail.adapters.db import tables as t
from docmail.adapters.secrets import SecretBox
from docmail.cli import backup as _backup  # noqa: F401 - registers backup and restore
from docmail.cli import members as _members  # noqa: F401 - registers invite
from docmail.cli import output
from docmail.cli import schema as _schema  # noqa: F401 - registers migrate
from docmail.cli import server as _server  # noqa: F401 - registers serve and worker
from docmail.cli import tokens as _tokens  # noqa: F401 - registers tokens create/list/revoke
from docmail.cli.common import cli, echo_flush, open_runtime, resolve_actor, token_option
from docmail.cli.importer import CSV_HELP, ImportReport, import_rows, read_rows
from docmail.demo import (
    find_company,
)
from docmail.domain.addresses import normalize_email
from docmail.domain.outbox import FINAL_STATES, MessageState
from docmail.errors import (
    NotFound,
    ValidationError,
)
from docmail.services import members
from docmail.services.batches import BatchResult, send_batch
from docmail.services.companies import (
    add_membership,
    create_api_token,
    create_company,
    create_user,
)
from docmail.services.documents import DocumentFilter, list_documents
from docmail.services.inputs import BatchIn, SendIn
from docmail.services.messages import MessageFilter, get_message, list_messages
from docmail.services.oauth import public_base
from docmail.services.runtime import Actor, Role, Runtime
from docmail.services.sending import send_document

__all__ = ["cli"]

MIN_PASSWORD = 8


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
    if user_id is not None and not member:
        # Someone who already uses docmail joins only by accepting (their consent).
        made = members.invite(
            runtime,
            Actor(company_id, Role.ADMIN, label="cli:init"),
            email,
            Role.ADMIN.value,
            base_url=public_base(runtime, "http://127.0.0.1:8025"),
        )
        return (
            f"admin user: {email} already uses docmail; they become admin by accepting:\n"
            f"{made.link}"
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
        name = f"init {time.strftime('%Y-%m-%d %H:%M')}"
        token = create_api_token(runtime, company_id, name, created_by="cli:init")
    click.echo("API token (shown once, keep it secret):")
    click.echo(token)


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
