"""``docmail backup`` and ``docmail restore``: the whole installation in one archive file."""

from __future__ import annotations

import time
from pathlib import Path

import click

from docmail.cli.common import cli, echo_flush, open_runtime

_KEYS_NOTE = (
    "Passwords, OAuth secrets and tokens stay encrypted in the archive, exactly as "
    "stored; the keys are NOT in it. Restoring needs the same DOCMAIL_SECRET_KEY (or "
    "the old data directory's secret.key): keep them safe, apart from the archive."
)


def _print_table(table: str, rows: int) -> None:
    echo_flush(f"  {table}: {rows} row(s)")


@cli.command(epilog=_KEYS_NOTE)
@click.argument("archive", required=False, type=click.Path(dir_okay=False, path_type=Path))
def backup(archive: Path | None) -> None:
    """Write every table and every attachment to one new .tar.gz ARCHIVE.

    ARCHIVE defaults to docmail-backup-<date>-<time>.tar.gz in the current
    directory; an existing file is never overwritten. The archive is read from one
    consistent snapshot, so docmail (and its workers) may keep running meanwhile.
    It holds a manifest with the docmail version, the schema revision, the row
    counts and the sha256 of every file.
    """
    from docmail.services.backup import create_backup

    target = archive or Path(f"docmail-backup-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz")
    with open_runtime() as runtime:
        echo_flush(f"backing up to {target}")
        summary = create_backup(runtime, target, on_table=_print_table)
    echo_flush(
        f"done: {sum(summary.rows.values())} rows in {len(summary.rows)} tables, "
        f"{summary.blobs} attachment file(s), {summary.size} bytes written to {summary.path}"
    )


@cli.command(epilog=_KEYS_NOTE)
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore(archive: Path) -> None:
    """Load a backup ARCHIVE into a new, empty database.

    Point DOCMAIL_DATABASE_URL (or DOCMAIL_DATA_DIR) at the new database first: a
    database that holds any data is refused. The archive must come from a docmail
    with the same schema revision. Every file's sha256, the row counts and the
    secrets (against your keys) are checked before anything is written; the rows
    are then loaded in one transaction, so a failure leaves the database empty.
    """
    from docmail.services.backup import restore_backup

    with open_runtime() as runtime:
        echo_flush(f"checking {archive}")
        summary = restore_backup(runtime, archive, on_table=_print_table)
    echo_flush(
        f"restored: {sum(summary.rows.values())} rows in {len(summary.rows)} tables and "
        f"{summary.blobs} attachment file(s) from a backup made {summary.created_at} "
        f"(docmail {summary.docmail_version}, schema {summary.revision})"
    )
