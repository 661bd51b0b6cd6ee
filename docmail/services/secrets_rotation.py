"""Re-encrypting every stored secret with the newest key (``docmail secrets rotate``).

Put the new key first in ``DOCMAIL_SECRET_KEY`` ("new,old"), run the rotation, and
afterwards the old key may be dropped. Each table is rotated in one transaction:
either every secret in it was re-encrypted or none was.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Table, select, update

from docmail.adapters.db import tables as t
from docmail.services.runtime import Runtime


@dataclass(frozen=True)
class SecretColumns:
    table: Table
    key: str
    columns: tuple[str, ...]


def _table(model: type[t.Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


# Every column that holds a SecretBox token. Add new ones here.
SECRET_COLUMNS = (
    SecretColumns(_table(t.MailAccount), "id", ("password_encrypted",)),
    SecretColumns(_table(t.OAuthClient), "id", ("client_secret_encrypted",)),
    SecretColumns(
        _table(t.OAuthToken), "account_id", ("access_token_encrypted", "refresh_token_encrypted")
    ),
    SecretColumns(_table(t.OAuthState), "id", ("code_verifier_encrypted",)),
)


def rotate_secrets(runtime: Runtime) -> dict[str, int]:
    """Re-encrypt every stored secret with the first key; return secrets rotated per table."""
    return {spec.table.name: _rotate_table(runtime, spec) for spec in SECRET_COLUMNS}


def _rotate_table(runtime: Runtime, spec: SecretColumns) -> int:
    key: Column[int] = spec.table.c[spec.key]
    count = 0
    with runtime.engine.begin() as conn:
        columns = [spec.table.c[name] for name in spec.columns]
        for row in conn.execute(select(key, *columns).with_for_update()).all():
            values = {
                name: runtime.secrets.rotate(value)
                for name, value in zip(spec.columns, row[1:], strict=True)
                if value
            }
            if values:
                conn.execute(update(spec.table).where(key == row[0]).values(**values))
                count += len(values)
    return count
