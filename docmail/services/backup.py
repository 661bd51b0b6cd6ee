"""A whole installation in one archive file, and restoring it into an empty database.

The archive is a gzip-compressed tar file, written in this order:

* ``tables/<table>.jsonl``: one JSON object per row, tables in dependency order,
  rows in primary-key order (values portable between SQLite and PostgreSQL, see
  ``adapters.db.backup``); ``tables/blobs.jsonl`` holds the attachments' metadata and
* ``blobs/<sha256>``: the attachment bytes, right after it;
* ``manifest.json``, last: format, docmail version, Alembic revision, creation time,
  database kind, row counts and the sha256 and size of every other member.

Everything is read from one snapshot (see ``snapshot``), so a worker sending
meanwhile does not tear it. Secrets (SMTP passwords, OAuth client secrets and
tokens) are in the archive exactly as stored: encrypted. The keys are NOT in it
(``DOCMAIL_SECRET_KEY`` or the data directory's ``secret.key``): a restore needs them.

A restore reads the archive twice. The first pass checks everything before
anything is written: the manifest, the Alembic revision against this docmail's,
every member's sha256 and size, the row counts, and that the secrets decrypt with
the configured keys. The second pass inserts every row in one transaction into an
empty database (and resets PostgreSQL's id sequences): all or nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, insert
from sqlalchemy.exc import SQLAlchemyError

from docmail import __version__
from docmail.adapters.db import backup as db
from docmail.errors import ConfigurationError, DocmailError, ValidationError
from docmail.services.runtime import Runtime
from docmail.services.secrets_rotation import SECRET_COLUMNS

FORMAT = "docmail-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 512 * 1024 * 1024
READ_CHUNK = 1024 * 1024
_MEMBER = re.compile(r"^(?:tables/(?P<table>[a-z_]+)\.jsonl|blobs/(?P<blob>[0-9a-f]{64}))$")
_SECRETS = {spec.table.name: spec.columns for spec in SECRET_COLUMNS}

TableCallback = Callable[[str, int], None]  # (table name, rows) after each table


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    rows: dict[str, int]
    blobs: int
    size: int


@dataclass(frozen=True)
class RestoreSummary:
    rows: dict[str, int]
    blobs: int
    revision: str
    created_at: str
    docmail_version: str


def _ignore(table: str, rows: int) -> None:
    return None


def _damaged(source: Path, what: str) -> ValidationError:
    return ValidationError(
        f"the archive {source} is damaged: {what}; nothing was restored",
        field="archive",
        value=str(source),
    )


# ---------------------------------------------------------------- writing


def create_backup(
    runtime: Runtime, target: Path, on_table: TableCallback | None = None
) -> BackupSummary:
    """Write the archive to ``target`` (a new file, mode 0600); nothing is left on failure."""
    if target.exists():
        raise ValidationError(
            f"{target} already exists; choose a new file name", field="archive", value=str(target)
        )
    if not target.parent.is_dir():
        raise ValidationError(
            f"the directory {target.parent} does not exist", field="archive", value=str(target)
        )
    partial = target.with_name(f".{target.name}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                manifest = _write_archive(runtime, tar, target.parent, on_table or _ignore)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise DocmailError(
            f"cannot write the backup {target}: {exc.strerror or exc}; no archive was written",
            field="archive",
            value=str(target),
        ) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupSummary(target, manifest["row_counts"], manifest["blobs"], target.stat().st_size)


def _write_archive(
    runtime: Runtime, tar: tarfile.TarFile, spool_dir: Path, on_table: TableCallback
) -> dict[str, Any]:
    files: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    with db.snapshot(runtime.engine) as conn:
        revision = db.database_revision(conn)
        _check_revision(revision, db.code_revision(runtime.engine), "the database")
        db.check_tables_known(conn)
        for table in db.TABLES:
            exclude = frozenset({"data"}) if table is db.BLOBS else frozenset()
            name = f"tables/{table.name}.jsonl"
            rows = db.dump_rows(conn, table, exclude)
            counts[table.name], files[name] = _add_rows(tar, name, rows, spool_dir)
            if table is db.BLOBS:
                for sha256, data in db.dump_blob_data(conn):
                    files[f"blobs/{sha256}"] = _add_bytes(tar, f"blobs/{sha256}", data)
            on_table(table.name, counts[table.name])
    manifest = _manifest(runtime, revision, counts, files)
    _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
    return manifest


def _manifest(
    runtime: Runtime, revision: str, counts: dict[str, int], files: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "docmail_version": __version__,
        "alembic_revision": revision,
        "created_at": runtime.clock().isoformat(),
        "database": runtime.engine.dialect.name,
        "secrets": "encrypted as stored; restoring needs the same DOCMAIL_SECRET_KEY",
        "tables": [table.name for table in db.TABLES],
        "row_counts": counts,
        "blobs": sum(1 for name in files if name.startswith("blobs/")),
        "files": files,
    }


def _member_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(time.time()), 0o600
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> dict[str, Any]:
    tar.addfile(_member_info(name, len(data)), io.BytesIO(data))
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _add_rows(
    tar: tarfile.TarFile, name: str, rows: Iterable[dict[str, Any]], spool_dir: Path
) -> tuple[int, dict[str, Any]]:
    """Spool JSON lines to a temporary file (a tar member needs its size first), then add it."""
    digest, count = hashlib.sha256(), 0
    with tempfile.TemporaryFile(dir=spool_dir) as spool:
        for row in rows:
            line = json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            digest.update(line)
            spool.write(line)
            count += 1
        size = spool.tell()
        spool.seek(0)
        tar.addfile(_member_info(name, size), spool)
    return count, {"sha256": digest.hexdigest(), "size": size}


def _check_revision(found: str, expected: str, what: str) -> None:
    if found != expected:
        raise ValidationError(
            f"{what} is at schema revision {found or 'none'}, but this docmail "
            f"({__version__}) is at {expected}; use the docmail version whose migrations match "
            "(or migrate) and try again",
            field="alembic_revision",
            value=found,
        )


# ---------------------------------------------------------------- reading


@contextmanager
def _members(source: Path) -> Iterator[Iterator[tuple[str, IO[bytes]]]]:
    """The archive's members in order, each readable until the next one is taken."""
    try:
        with tarfile.open(source, mode="r|gz") as tar:
            yield _files(tar, source)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise _damaged(source, f"cannot read it as a .tar.gz file ({exc})") from exc


def _files(tar: tarfile.TarFile, source: Path) -> Iterator[tuple[str, IO[bytes]]]:
    for info in tar:
        stream = tar.extractfile(info) if info.isfile() else None
        if stream is None:
            raise _damaged(source, f"member {info.name!r} is not a regular file")
        yield info.name, stream


@dataclass
class _Scan:
    """What the first pass learns: every member's hash, size and line count, in order."""

    source: Path
    order: list[str] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    secrets: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    manifest: bytes | None = None

    def add(self, name: str, stream: IO[bytes]) -> None:
        if name in self.order:
            raise _damaged(self.source, f"member {name} appears twice")
        self.order.append(name)
        if name == MANIFEST:
            self.manifest = stream.read(MAX_MANIFEST_BYTES + 1)
            return
        match = _MEMBER.match(name)
        if match is None:
            raise _damaged(self.source, f"unexpected member {name!r}")
        table = match["table"]
        if table is None:
            self._add_blob(name, match["blob"], stream)
        else:
            self._add_table(name, table, stream)

    def _add_blob(self, name: str, sha256: str, stream: IO[bytes]) -> None:
        digest, size = hashlib.sha256(), 0
        while chunk := stream.read(READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
        self.files[name] = {"sha256": digest.hexdigest(), "size": size}
        if digest.hexdigest() != sha256:
            self.unreadable.append(f"{name} does not have the content its name says")

    def _add_table(self, name: str, table: str, stream: IO[bytes]) -> None:
        digest, size, count = hashlib.sha256(), 0, 0
        secret_columns = _SECRETS.get(table, ())
        for line in stream:
            digest.update(line)
            size, count = size + len(line), count + 1
            if secret_columns:
                self._collect_secrets(name, table, line, secret_columns)
        self.files[name] = {"sha256": digest.hexdigest(), "size": size}
        self.lines[table] = count

    def _collect_secrets(
        self, name: str, table: str, line: bytes, columns: tuple[str, ...]
    ) -> None:
        try:
            row = json.loads(line)
            self.secrets += [(table, row[c]) for c in columns if row.get(c)]
        except (ValueError, TypeError, AttributeError):
            self.unreadable.append(f"{name} has a line that is not a JSON row")


def verify_archive(runtime: Runtime, source: Path) -> dict[str, Any]:
    """Check the whole archive without writing anything; return its manifest."""
    scan = _Scan(source)
    with _members(source) as members:
        for name, stream in members:
            scan.add(name, stream)
    manifest = _parse_manifest(scan)
    _check_revision(manifest["alembic_revision"], db.code_revision(runtime.engine), "the backup")
    _check_files(scan, manifest)
    _check_layout(scan, manifest)
    if scan.unreadable:
        raise _damaged(source, scan.unreadable[0])
    _check_secrets(runtime, scan.secrets)
    return manifest


def _parse_manifest(scan: _Scan) -> dict[str, Any]:
    if scan.manifest is None:
        raise _damaged(scan.source, f"it has no {MANIFEST} (is it a docmail backup?)")
    if len(scan.manifest) > MAX_MANIFEST_BYTES:
        raise _damaged(scan.source, f"{MANIFEST} is too large")
    try:
        manifest = json.loads(scan.manifest)
    except ValueError as exc:
        raise _damaged(scan.source, f"{MANIFEST} is not JSON ({exc})") from exc
    keys = ("format", "format_version", "alembic_revision", "tables", "row_counts", "blobs")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _damaged(scan.source, f"{MANIFEST} does not describe a docmail backup")
    missing = [key for key in (*keys, "files", "created_at") if key not in manifest]
    if missing:
        raise _damaged(scan.source, f"{MANIFEST} lacks {', '.join(missing)}")
    shapes = {"files": dict, "row_counts": dict, "tables": list, "alembic_revision": str}
    wrong = [key for key, kind in shapes.items() if not isinstance(manifest[key], kind)]
    if wrong:
        raise _damaged(scan.source, f"{MANIFEST} has a malformed {wrong[0]}")
    version = manifest["format_version"]
    if version != FORMAT_VERSION:
        raise ValidationError(
            f"the archive has backup format {version}; this docmail reads format "
            f"{FORMAT_VERSION}: restore it with docmail {manifest.get('docmail_version')}",
            field="format_version",
            value=version,
        )
    return dict(manifest)


def _check_files(scan: _Scan, manifest: dict[str, Any]) -> None:
    expected: dict[str, Any] = manifest["files"]
    missing = sorted(set(expected) - set(scan.files))
    if missing:
        raise _damaged(scan.source, f"{missing[0]} is missing ({len(missing)} member(s) missing)")
    extra = sorted(set(scan.files) - set(expected))
    if extra:
        raise _damaged(scan.source, f"{extra[0]} is not listed in the manifest")
    for name, found in scan.files.items():
        wanted = expected[name]
        if not isinstance(wanted, dict) or found != {
            "sha256": wanted.get("sha256"),
            "size": wanted.get("size"),
        }:
            raise _damaged(
                scan.source,
                f"{name} does not match the manifest (sha256 {found['sha256']}, "
                f"{found['size']} bytes)",
            )


def _check_layout(scan: _Scan, manifest: dict[str, Any]) -> None:
    """Tables in the manifest's order, the blobs right after their table, the manifest last."""
    tables: list[str] = list(manifest["tables"])
    if sorted(tables) != sorted(db.TABLES_BY_NAME):
        raise _damaged(scan.source, "its tables are not this docmail's tables")
    if [n for n in scan.order if n.startswith("tables/")] != [f"tables/{n}.jsonl" for n in tables]:
        raise _damaged(scan.source, "its tables are out of order")
    if scan.order[-1] != MANIFEST:
        raise _damaged(scan.source, f"{MANIFEST} is not its last member")
    blobs = [i for i, name in enumerate(scan.order) if name.startswith("blobs/")]
    start = scan.order.index("tables/blobs.jsonl") + 1
    if blobs != list(range(start, start + len(blobs))):
        raise _damaged(scan.source, "the attachments are not right after tables/blobs.jsonl")
    counts: dict[str, int] = manifest["row_counts"]
    for table in tables:
        if counts.get(table) != scan.lines[table]:
            raise _damaged(
                scan.source,
                f"table {table} has {scan.lines[table]} rows; the manifest says "
                f"{counts.get(table)}",
            )
    if not counts["blobs"] == manifest["blobs"] == len(blobs):
        raise _damaged(scan.source, "the number of attachments does not match the manifest")


def _check_secrets(runtime: Runtime, secrets: list[tuple[str, str]]) -> None:
    for table, token in secrets:
        try:
            runtime.secrets.decrypt(str(token))
        except ConfigurationError as exc:
            raise ValidationError(
                f"the secrets in the backup (table {table}) cannot be decrypted with this "
                "installation's keys; set DOCMAIL_SECRET_KEY to the keys of the installation "
                f"that made the backup (or copy its secret.key to {runtime.settings.key_file}) "
                "and try again; nothing was restored",
                field="DOCMAIL_SECRET_KEY",
            ) from exc


# ---------------------------------------------------------------- restoring


def restore_backup(
    runtime: Runtime, source: Path, on_table: TableCallback | None = None
) -> RestoreSummary:
    """Verify ``source``, then load it into the (empty, migrated) database in one transaction."""
    with db.snapshot(runtime.engine) as conn:  # refuse early, before reading the archive
        db.ensure_empty(conn)
        _check_revision(
            db.database_revision(conn), db.code_revision(runtime.engine), "the target database"
        )
    manifest = verify_archive(runtime, source)
    try:
        with runtime.engine.begin() as conn:
            db.ensure_empty(conn)
            rows, blobs = _load(conn, source, on_table or _ignore)
            db.reset_sequences(conn)
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())  # one line
        raise DocmailError(
            f"the restore failed and was rolled back, the database is unchanged: {reason}",
            field="database",
        ) from exc
    return RestoreSummary(
        rows=rows,
        blobs=blobs,
        revision=str(manifest["alembic_revision"]),
        created_at=str(manifest["created_at"]),
        docmail_version=str(manifest.get("docmail_version")),
    )


def _load(conn: Connection, source: Path, on_table: TableCallback) -> tuple[dict[str, int], int]:
    counts: dict[str, int] = {}
    pending: dict[str, dict[str, Any]] = {}  # blob metadata waiting for its bytes
    blobs = 0
    with _members(source) as members:
        for name, stream in members:
            if name == MANIFEST:
                continue
            if name.startswith("blobs/"):
                _insert_blob(conn, source, name, stream.read(), pending)
                blobs += 1
                continue
            if pending:
                raise _damaged(source, f"attachment {next(iter(pending))} has no content")
            table = db.TABLES_BY_NAME[name.removeprefix("tables/").removesuffix(".jsonl")]
            rows = (db.decode_row(table, _json_row(source, name, line)) for line in stream)
            if table is db.BLOBS:
                pending = {row["sha256"]: row for row in rows}
                counts[table.name] = len(pending)
            else:
                counts[table.name] = db.insert_rows(conn, table, rows)
            on_table(table.name, counts[table.name])
    if pending:
        raise _damaged(source, f"attachment {next(iter(pending))} has no content")
    return counts, blobs


def _json_row(source: Path, name: str, line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError as exc:
        raise _damaged(source, f"{name} has a line that is not JSON ({exc})") from exc


def _insert_blob(
    conn: Connection, source: Path, name: str, data: bytes, pending: dict[str, dict[str, Any]]
) -> None:
    sha256 = name.removeprefix("blobs/")
    row = pending.pop(sha256, None)
    # Checked again here: the file could have changed since the first pass.
    if row is None or hashlib.sha256(data).hexdigest() != sha256:
        raise _damaged(source, f"{name} does not match tables/blobs.jsonl")
    conn.execute(insert(db.BLOBS), {**row, "data": data})
