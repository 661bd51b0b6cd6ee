"""Batch send: many documents at once, one email per document or one per party.

Documents are processed in chunks, one transaction per chunk, so a batch of
100,000 documents uses constant memory and a failure in one chunk leaves the
chunks before it queued. Each email's idempotency key is derived from the
batch key and the document (or party), so repeating a batch queues nothing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import groupby

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from docmail.adapters.db import tables as t
from docmail.errors import DocmailError
from docmail.services.compose import compose_in_session
from docmail.services.inputs import BatchIn, SendIn
from docmail.services.runtime import Actor, Role, Runtime
from docmail.services.sending import build_message_row, find_by_key, fingerprint

CHUNK_SIZE = 200

Progress = Callable[[int, int], None]


@dataclass
class BatchItem:
    document_ids: list[int]
    message_id: int | None = None
    error: str | None = None
    field: str | None = None
    replayed: bool = False


@dataclass
class BatchResult:
    batch_id: int
    mode: str
    items: list[BatchItem] = field(default_factory=list)

    @property
    def queued(self) -> int:
        return sum(1 for i in self.items if i.message_id is not None)

    @property
    def failed(self) -> int:
        return sum(1 for i in self.items if i.error is not None)


def _chunks(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _load(session: Session, actor: Actor, ids: list[int]) -> dict[int, t.Document]:
    rows = session.scalars(
        select(t.Document)
        .where(t.Document.company_id == actor.company_id, t.Document.id.in_(ids))
        .options(
            selectinload(t.Document.attachments),
            selectinload(t.Document.party).selectinload(t.Party.contacts),
        )
    )
    return {d.id: d for d in rows}


def _groups(mode: str, ids: list[int], docs: dict[int, t.Document]) -> list[list[int]]:
    if mode == "per_document":
        return [[i] for i in ids]
    present = sorted((i for i in ids if i in docs), key=lambda i: (docs[i].party_id, i))
    grouped = [list(g) for _, g in groupby(present, key=lambda i: docs[i].party_id)]
    return grouped + [[i] for i in ids if i not in docs]


def _queue_group(
    runtime: Runtime,
    session: Session,
    actor: Actor,
    item: BatchItem,
    docs: dict[int, t.Document],
    base: SendIn,
    batch_id: int,
    key: str | None,
) -> None:
    missing = [i for i in item.document_ids if i not in docs]
    if missing:
        item.error, item.field = f"document {missing[0]} not found", "document_ids"
        return
    print_ = fingerprint("batch:" + ",".join(map(str, item.document_ids)), base)
    if key and (earlier := find_by_key(session, actor, key)) is not None:
        item.message_id, item.replayed = earlier.id, True
        return
    try:
        with session.begin_nested():
            composed = compose_in_session(
                runtime, session, actor, [docs[i] for i in item.document_ids]
            )
            message = build_message_row(runtime, session, actor, composed, base)
            message.batch_id, message.idempotency_key = batch_id, key
            message.request_fingerprint = print_
            session.add(message)
            session.flush()
            item.message_id = message.id
    except DocmailError as exc:
        item.error, item.field = exc.message, exc.field


def _item_key(batch_key: str | None, group: list[int]) -> str | None:
    if not batch_key:
        return None
    digest = hashlib.sha256(",".join(map(str, group)).encode()).hexdigest()[:24]
    return f"{batch_key[:170]}:{digest}"


def send_batch(
    runtime: Runtime, actor: Actor, data: BatchIn, progress: Progress | None = None
) -> BatchResult:
    """Queue one email per document (or per party); report each one's outcome."""
    actor.require(Role.SENDER)
    ids = list(dict.fromkeys(data.document_ids))
    with runtime.session() as session:
        batch = t.Batch(company_id=actor.company_id, mode=data.mode)
        session.add(batch)
        session.flush()
        result = BatchResult(batch.id, data.mode)
    base = SendIn(account_id=data.account_id)
    chunk = CHUNK_SIZE if data.mode == "per_document" else len(ids)
    done = 0
    for part in _chunks(ids, chunk):
        with runtime.session() as session:
            docs = _load(session, actor, part)
            for group in _groups(data.mode, part, docs):
                item = BatchItem(group)
                key = _item_key(data.idempotency_key, group)
                _queue_group(runtime, session, actor, item, docs, base, result.batch_id, key)
                result.items.append(item)
        done += len(part)
        runtime.wakeup()
        if progress:
            progress(done, len(ids))
    return result
