"""Console output for the CLI: consoles, error lines, progress bars and tables."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from docmail.adapters.db import tables as t
from docmail.errors import DocmailError

# When output goes to a pipe or a file, rich would assume 80 columns and wrap tables;
# a wide fixed width keeps each row on one line for scripts and logs.
PIPE_WIDTH = 200


def console(stderr: bool = False) -> Console:
    """A console bound to the current stdout/stderr (so click's test runner captures it)."""
    stream: TextIO = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else PIPE_WIDTH
    return Console(file=stream, stderr=stderr, width=width, highlight=False)


def error_line(exc: DocmailError) -> str:
    """``error: <message> (field: <field>)``, the one-line shape of every expected error."""
    line = f"error: {exc.message}"
    if exc.field:
        line += f" (field: {exc.field})"
    return line


def print_error(exc: DocmailError) -> None:
    console(stderr=True).print(f"[red]{escape(error_line(exc))}[/red]", soft_wrap=True)


def warn(text: str) -> None:
    console(stderr=True).print(f"[yellow]{escape(text)}[/yellow]", soft_wrap=True)


class Bar:
    """A handle on one progress bar task."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self._task = progress, task

    def advance(self, steps: int = 1) -> None:
        self._progress.advance(self._task, steps)

    def update(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Bar]:
    """A progress bar on stderr, so stdout stays clean for scripts."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(stderr=True),
    )
    with progress:
        yield Bar(progress, progress.add_task(description, total=total))


def last_reply(message: t.Message) -> str:
    """The most useful last words about a message: its error, else the server's reply."""
    if message.last_error:
        return message.last_error
    if message.smtp_code or message.server_reply:
        return f"{message.smtp_code or ''} {message.server_reply or ''}".strip()
    return ""


_STATE_STYLE = {
    "sent": "green",
    "failed": "red",
    "retrying": "yellow",
    "cancelled": "dim",
    "queued": "cyan",
    "sending": "cyan",
}


def messages_table(rows: Sequence[t.Message], title: str = "Messages") -> Table:
    table = Table(title=title, show_lines=False)
    for name in ("id", "state", "to", "subject", "attempts", "last error / reply"):
        table.add_column(name, overflow="fold")
    for message in rows:
        style = _STATE_STYLE.get(message.state, "")
        table.add_row(
            str(message.id),
            f"[{style}]{message.state}[/{style}]" if style else message.state,
            escape(", ".join(message.to)),
            escape(message.subject),
            str(message.attempts),
            escape(last_reply(message)),
        )
    return table
