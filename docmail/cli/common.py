"""What every ``docmail`` command shares: the click group, the runtime, the acting company."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select

from docmail import __version__
from docmail.adapters.db import tables as t
from docmail.adapters.secrets import install_log_redaction
from docmail.bootstrap import build_runtime
from docmail.cli import output
from docmail.cli.importer import pydantic_errors
from docmail.config import Settings
from docmail.errors import (
    AuthenticationRequired,
    ConfigurationError,
    DocmailError,
    ValidationError,
)
from docmail.services.runtime import Actor, Role, Runtime
from docmail.services.tokens import authenticate_token

log = logging.getLogger("docmail.cli")


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
def open_runtime(*, migrate: bool = True) -> Iterator[Runtime]:
    """Build the runtime from the environment and dispose of it after.

    ``migrate``: bring the schema up to date first (under the migration lock);
    otherwise refuse a database whose schema is not this docmail's newest, naming
    ``docmail migrate`` (``serve`` and ``worker`` without ``--migrate``).
    """
    runtime = build_runtime(Settings.from_env(), run_migrations=migrate, require_schema=not migrate)
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
