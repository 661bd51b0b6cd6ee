"""Content-addressed attachment storage: the same bytes are stored once, keyed by sha256."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.errors import PayloadTooLarge, ValidationError


@dataclass(frozen=True)
class AttachmentData:
    filename: str
    content_type: str
    data: bytes


def decode_base64(content: str, field: str, max_bytes: int) -> bytes:
    # Check the encoded length first so a huge payload is refused before it is decoded.
    if len(content) > (max_bytes * 4) // 3 + 4:
        raise PayloadTooLarge(
            f"{field} is larger than the limit of {max_bytes} bytes",
            field=field,
            value=len(content),
        )
    try:
        data = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError(f"{field} is not valid base64: {exc}", field=field) from exc
    check_size(data, field, max_bytes)
    return data


def check_size(data: bytes, field: str, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"{field} is {len(data)} bytes; the limit is {max_bytes} bytes",
            field=field,
            value=len(data),
        )
    if not data:
        raise ValidationError(f"{field} is empty", field=field)


def put_blob(session: Session, data: bytes) -> str:
    """Store bytes once; concurrent writers of the same content do not conflict."""
    digest = hashlib.sha256(data).hexdigest()
    dialect = session.get_bind().dialect.name
    values = {"sha256": digest, "size": len(data), "data": data, "created_at": t.utcnow()}
    if dialect == "postgresql":
        session.execute(postgresql.insert(t.Blob).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        session.execute(sqlite.insert(t.Blob).values(values).on_conflict_do_nothing())
    elif session.get(t.Blob, digest) is None:
        session.add(t.Blob(**values))
    return digest


def get_blob(session: Session, digest: str) -> bytes:
    blob = session.get(t.Blob, digest)
    if blob is None:
        raise ValidationError(f"attachment content {digest} is missing", field="attachment")
    return blob.data
