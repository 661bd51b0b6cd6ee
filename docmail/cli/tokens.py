"""``docmail tokens create|list|revoke``: the company's API tokens from the command line."""

from __future__ import annotations

from datetime import datetime

import click
from rich.table import Table

from docmail.cli import output
from docmail.cli.common import cli, open_runtime, resolve_actor, token_option
from docmail.services import tokens as token_service
from docmail.services.runtime import Role
from docmail.services.tokens import TokenIn, parse_expiry


@cli.group()
def tokens() -> None:
    """API tokens of a company: create (shown once), list, revoke. Admins only."""


@tokens.command("create")
@click.option("--name", required=True, help="A name people recognise, e.g. the program using it.")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.SENDER.value,
    show_default=True,
    help="At most the role of the token (or admin) running this command.",
)
@click.option("--expires", default=None, help="UTC date or date and time, e.g. 2026-12-31T18:00.")
@token_option
def create(name: str, role: str, expires: str | None, token: str | None) -> None:
    """Create a token; it is printed alone on the last line, once.

    NEW=$(docmail tokens create --name erp | tail -1)
    """
    data = TokenIn(name=name, role=Role(role), expires_at=parse_expiry(expires, "expires"))
    with open_runtime() as runtime:
        made = token_service.create_token(runtime, resolve_actor(runtime, token), data)
    click.echo(f"token {made.row.id} {made.row.name!r} ({made.row.role}) created")
    click.echo("API token (shown once, keep it secret):")
    click.echo(made.token)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


@tokens.command("list")
@token_option
def list_(token: str | None) -> None:
    """Every token of the company, newest first (times in UTC)."""
    with open_runtime() as runtime:
        rows = token_service.list_tokens(runtime, resolve_actor(runtime, token))
    table = Table(title="API tokens")
    columns = ("id", "name", "prefix", "role", "created", "created by", "last used", "expires")
    for name in (*columns, "revoked"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(
            str(row.id),
            output.escape(row.name),
            row.prefix,
            row.role,
            _when(row.created_at),
            output.escape(row.created_by),
            _when(row.last_used_at),
            _when(row.expires_at),
            _when(row.revoked_at),
        )
    con = output.console()
    con.print(table)
    con.print(f"{len(rows)} token(s)")


@tokens.command("revoke")
@click.argument("token_id", type=click.IntRange(1))
@token_option
def revoke(token_id: int, token: str | None) -> None:
    """Revoke token TOKEN_ID: requests with it are refused (401) from now on."""
    with open_runtime() as runtime:
        row = token_service.revoke_token(runtime, resolve_actor(runtime, token), token_id)
    click.echo(f"token {row.id} {row.name!r} revoked at {_when(row.revoked_at)} UTC")
