"""``docmail invite``: invite a person to a company (they accept with the link)."""

from __future__ import annotations

import click

from docmail.cli.common import cli, open_runtime, resolve_actor, token_option
from docmail.services import members
from docmail.services.oauth import public_base

ROLES = click.Choice(["admin", "sender", "viewer"])


@cli.command()
@click.argument("email")
@click.option("--role", type=ROLES, default="sender", show_default=True)
@click.option("--name", default="", help="the person's name, shown in the invitation")
@click.option(
    "--base-url",
    default="http://127.0.0.1:8025",
    show_default=True,
    help="docmail's address for browsers (DOCMAIL_PUBLIC_URL wins when set)",
)
@token_option
def invite(email: str, role: str, name: str, base_url: str, token: str | None) -> None:
    """Invite EMAIL to the company; the link is emailed and printed (it works once).

    Nobody sets another person's password: a new person chooses theirs when
    accepting, someone who already uses docmail signs in and accepts.
    """
    with open_runtime() as runtime:
        actor = resolve_actor(runtime, token)
        made = members.invite(
            runtime, actor, email, role, name=name, base_url=public_base(runtime, base_url)
        )
    if made.emailed:
        click.echo(f"invitation for {made.email} ({made.role}) emailed")
    else:
        click.echo(
            f"invitation for {made.email} ({made.role}) not emailed: {made.not_emailed_reason}"
        )
    click.echo(f"link (works once, until {made.expires_at:%Y-%m-%d %H:%M} UTC):")
    click.echo(made.link)
