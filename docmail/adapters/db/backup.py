"""The database side of backups: a consistent read snapshot, rows as JSON, loading them back.

Rows travel as JSON objects whose values are converted by column type, so a dump
made on SQLite loads into PostgreSQL and the other way round: datetimes and dates
as ISO 8601, decimals as strings, binary columns as base64, JSON columns as they
are. Tables come in dependency order (``sorted_tables``) and rows in primary-key
order, so parents are always inserted before the rows that refer to them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from alembic.migration import MigrationContext
from sqlalchemy import (
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    LargeBinary,
    Numeric,
    Table,
    func,
    insert,
    inspect,
    literal,
    select,
)

from docmail.adapters.db import tables as t
from docmail.adapters.db.schema import head_revisions
from docmail.errors import Conflict, ValidationError

TABLES: list[Table] = list(t.Base.metadata.sorted_tables)
TABLES_BY_NAME = {table.name: table for table in TABLES}
BLOBS = TABLES_BY_NAME["blobs"]
INSERT_CHUNK = 500
BLOB_FETCH = 4  # blobs can be megabytes each: fetch a few at a time, never the whole table

Convert = Callable[[Any], Any]
Row = dict[str, Any]


# ---------------------------------------------------------------- snapshots and revisions


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction that sees the database as of its first statement.

    SQLite: ``BEGIN DEFERRED`` in WAL mode is a read snapshot that writers (the
    worker, the API) do not block or tear. PostgreSQL: ``REPEATABLE READ, READ ONLY``.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.info["sqlite_begin_mode"] = "DEFERRED"
        else:
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


def database_revision(conn: Connection) -> str:
    """The Alembic revision(s) the database is at, comma-separated."""
    return ",".join(sorted(MigrationContext.configure(conn).get_current_heads()))


def code_revision(engine: Engine) -> str:
    """The Alembic head revision(s) of this docmail's migrations, comma-separated."""
    return ",".join(head_revisions())


def check_tables_known(conn: Connection) -> None:
    """Refuse to back up a database with tables this docmail does not know (it would lose them)."""
    present = set(inspect(conn).get_table_names()) - {"alembic_version"}
    unknown = sorted(present - set(TABLES_BY_NAME))
    if unknown:
        raise ValidationError(
            f"the database has tables this docmail version does not know: {', '.join(unknown)}; "
            "back it up with the docmail version that created them",
            field="database",
        )


# ---------------------------------------------------------------- values by column type


def _codec(column: Column[Any]) -> tuple[Convert, Convert]:
    """(to JSON, from JSON) for one column's values; None passes through both."""
    kind = column.type
    if isinstance(kind, t.UTCDateTime | DateTime):
        return (lambda v: v.isoformat()), datetime.fromisoformat
    if isinstance(kind, Date):
        return (lambda v: v.isoformat()), date.fromisoformat
    if isinstance(kind, LargeBinary):
        return (lambda v: base64.b64encode(v).decode("ascii")), base64.b64decode
    if isinstance(kind, Numeric):
        return str, Decimal
    return _same, _same  # integers, strings, booleans, JSON values


def _same(value: Any) -> Any:
    return value


def _codecs(columns: Iterable[Column[Any]], which: int) -> dict[str, Convert]:
    return {column.name: _codec(column)[which] for column in columns}


# ---------------------------------------------------------------- dumping


def dump_rows(
    conn: Connection, table: Table, exclude: frozenset[str] = frozenset()
) -> Iterator[Row]:
    """Every row of ``table`` as a JSON-ready dict, in primary-key order, streamed."""
    columns = [c for c in table.columns if c.name not in exclude]
    encoders = _codecs(columns, 0)
    query = select(*columns).order_by(*table.primary_key.columns)
    for row in conn.execute(query.execution_options(yield_per=1000)).mappings():
        yield {
            name: None if value is None else encoders[name](value) for name, value in row.items()
        }


def dump_blob_data(conn: Connection) -> Iterator[tuple[str, bytes]]:
    """(sha256, bytes) of every stored attachment, a few at a time."""
    query = select(BLOBS.c.sha256, BLOBS.c.data).order_by(BLOBS.c.sha256)
    for sha256, data in conn.execute(query.execution_options(yield_per=BLOB_FETCH)):
        yield sha256, bytes(data)


# ---------------------------------------------------------------- loading


def table_has_rows(conn: Connection) -> list[str]:
    """Names of the tables that are not empty."""
    return [
        table.name
        for table in TABLES
        if conn.execute(select(literal(1)).select_from(table).limit(1)).first() is not None
    ]


def ensure_empty(conn: Connection) -> None:
    filled = table_has_rows(conn)
    if filled:
        raise Conflict(
            f"the target database is not empty (rows in {', '.join(filled[:5])}"
            f"{', ...' if len(filled) > 5 else ''}); restore only into a new, empty database: "
            "point DOCMAIL_DATABASE_URL (or DOCMAIL_DATA_DIR) at a fresh one",
            field="database",
        )


def decode_row(table: Table, row: Any) -> Row:
    """A JSON row back into column values; unknown columns are a damaged archive."""
    if not isinstance(row, dict):
        raise ValidationError(f"a row of table {table.name} is not a JSON object", field="archive")
    unknown = set(row) - set(table.columns.keys())
    if unknown:
        raise ValidationError(
            f"table {table.name} has no column(s) {', '.join(sorted(unknown))}; the archive was "
            "made by another docmail version",
            field="archive",
        )
    decoders = _codecs(table.columns, 1)
    try:
        return {name: None if v is None else decoders[name](v) for name, v in row.items()}
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"a row of table {table.name} has a value that cannot be read: {exc}", field="archive"
        ) from exc


def insert_rows(conn: Connection, table: Table, rows: Iterable[Row]) -> int:
    """Insert decoded rows in chunks; return how many."""
    chunk: list[Row] = []
    count = 0
    for row in rows:
        chunk.append(row)
        if len(chunk) >= INSERT_CHUNK:
            conn.execute(insert(table), chunk)
            count, chunk = count + len(chunk), []
    if chunk:
        conn.execute(insert(table), chunk)
        count += len(chunk)
    return count


def reset_sequences(conn: Connection) -> None:
    """PostgreSQL: move every id sequence past the restored ids (SQLite needs nothing)."""
    if conn.dialect.name != "postgresql":
        return
    for table in TABLES:
        column = table.autoincrement_column
        if column is None:
            continue
        sequence = func.pg_get_serial_sequence(table.name, column.name)
        conn.execute(select(func.setval(sequence, func.coalesce(func.max(column), 0) + 1, False)))
