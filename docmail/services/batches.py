"""Batch send: many documents at once, one email per document or one per party.

A batch is stored first (its documents as ``batch_items``), then expanded into
outbox messages chunk by chunk, one transaction per chunk: memory stays flat for
100,000 documents, progress is visible while it runs, and a crash loses nothing
(the chunk in flight rolls back whole and is done again). Small batches are
expanded at once by the request; large ones by the workers, which take turns.
Repeating a batch with the same idempotency key returns the first batch.

Failures stay with what failed: a document whose email cannot be composed, for
whatever reason, is that item's problem (its reason in the batch report) and the
rest of the chunk goes on; a chunk that fails as a whole backs its batch off
(``BATCH_RETRY_WAIT``, doubling) and after ``BATCH_ATTEMPTS`` quarantines it with
the reason, so it is not retried every round and blocks no one else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from docmail.adapters.db import batch_store
from docmail.adapters.db import outbox_store as store
from docmail.adapters.db import tables as t
from docmail.domain.outbox import MessageState
from docmail.errors import DocmailError, NotFound
from docmail.services import audit
from docmail.services.accounts import resolve_account
from docmail.services.compose import compose_in_session
from docmail.services.inputs import BatchIn, SendIn
from docmail.services.runtime import Actor, Role, Runtime
from docmail.services.sending import MessageDraft, build_message_draft

log = logging.getLogger("docmail.batches")
CHUNK_SIZE = 200
INLINE_LIMIT = 500  # batches up to this size are expanded inside the request
BATCH_LEASE = timedelta(minutes=2)
BATCH_STARTED = "batch.started"
BATCH_ATTEMPTS = 5  # chunks failed as a whole before the batch is quarantined
BATCH_RETRY_WAIT = timedelta(seconds=10)  # after the first such failure; doubles each time

Progress = Callable[[int, int], None]


@dataclass
class BatchItemResult:
    document_ids: list[int]
    message_id: int | None = None
    error: str | None = None
    field: str | None = None


@dataclass
class BatchResult:
    batch_id: int
    mode: str
    state: str
    total: int
    processed: int
    queued: int
    failed: int
    replayed: bool = False
    items: list[BatchItemResult] = field(default_factory=list)


@dataclass(frozen=True)
class BatchStatus:
    """Progress of a batch: how far expansion got, and how delivery is going."""

    id: int
    mode: str
    state: str
    total: int
    processed: int
    queued: int
    failed: int
    delivery: dict[str, int]
    created_at: datetime
    finished_at: datetime | None
    error: str | None = None  # why expansion failed as a whole (quarantined or backed off)


def _get_batch(session: Session, actor: Actor, batch_id: int) -> t.Batch:
    batch = session.get(t.Batch, batch_id)
    if batch is None or batch.company_id != actor.company_id:
        raise NotFound(f"batch {batch_id} not found", field="batch_id", value=batch_id)
    return batch


def _existing_batch(session: Session, actor: Actor, key: str | None) -> t.Batch | None:
    if not key:
        return None
    return session.scalar(
        select(t.Batch).where(
            t.Batch.company_id == actor.company_id, t.Batch.idempotency_key == key
        )
    )


def _store_items(runtime: Runtime, actor: Actor, batch: t.Batch, ids: list[int]) -> None:
    """Record the batch's documents, chunk by chunk; unknown ids are failed at once."""
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        with runtime.session() as session:
            parties = dict(
                session.execute(
                    select(t.Document.id, t.Document.party_id).where(
                        t.Document.company_id == actor.company_id, t.Document.id.in_(chunk)
                    )
                ).all()
            )
            rows = [_item_row(batch, doc_id, parties.get(doc_id)) for doc_id in chunk]
            session.execute(insert(t.BatchItem), rows)
            missing = sum(1 for doc_id in chunk if doc_id not in parties)
            if missing:
                session.execute(
                    update(t.Batch)
                    .where(t.Batch.id == batch.id)
                    .values(processed=t.Batch.processed + missing, failed=t.Batch.failed + missing)
                )


def _item_row(batch: t.Batch, doc_id: int, party_id: int | None) -> dict[str, object]:
    group = party_id if batch.mode == "per_party" and party_id is not None else -doc_id
    row: dict[str, object] = {
        "batch_id": batch.id,
        "document_id": doc_id,
        "group_key": group,
        "done": party_id is None,
    }
    if party_id is None:
        row.update(error=f"document {doc_id} not found", error_field="document_ids")
    return row


def start_batch(
    runtime: Runtime, actor: Actor, data: BatchIn, *, inline: bool = False
) -> tuple[int, bool]:
    """Store a batch and its documents; return (batch id, replayed).

    ``inline``: the caller will expand it now, so workers leave it alone while the
    caller's lease lasts (and take it over if the caller dies).
    """
    actor.require(Role.SENDER)
    ids = list(dict.fromkeys(data.document_ids))
    try:
        with runtime.session() as session:
            earlier = _existing_batch(session, actor, data.idempotency_key)
            if earlier is not None:
                return earlier.id, True
            if data.account_id is not None:  # 404 for another company's, 403 for a colleague's
                resolve_account(session, actor, data.account_id)
            batch = t.Batch(
                company_id=actor.company_id,
                mode=data.mode,
                account_id=data.account_id,
                idempotency_key=data.idempotency_key,
                state="receiving",
                total=len(ids),
                created_at=runtime.clock(),
            )
            if inline:
                batch.locked_by = "inline"
                batch.locked_until = runtime.clock() + BATCH_LEASE
            session.add(batch)
            session.flush()
            # Also who started it: the batch's emails carry that actor as created_by.
            detail = {"documents": len(ids), "mode": data.mode}
            audit.record(session, actor, BATCH_STARTED, f"batch:{batch.id}", detail)
    except IntegrityError:
        with runtime.session() as session:
            earlier = _existing_batch(session, actor, data.idempotency_key)
            if earlier is None:
                raise
            return earlier.id, True
    _store_items(runtime, actor, batch, ids)
    with runtime.session() as session:
        session.execute(update(t.Batch).where(t.Batch.id == batch.id).values(state="ready"))
    runtime.wakeup()
    return batch.id, False


def _pending_groups(session: Session, batch_id: int, limit: int) -> list[list[t.BatchItem]]:
    keys = session.scalars(
        select(t.BatchItem.group_key)
        .where(t.BatchItem.batch_id == batch_id, t.BatchItem.done.is_(False))
        .group_by(t.BatchItem.group_key)
        .order_by(func.min(t.BatchItem.id))
        .limit(limit)
    ).all()
    if not keys:
        return []
    items = session.scalars(
        select(t.BatchItem)
        .where(
            t.BatchItem.batch_id == batch_id,
            t.BatchItem.done.is_(False),
            t.BatchItem.group_key.in_(keys),
        )
        .order_by(t.BatchItem.group_key, t.BatchItem.id)
    ).all()
    return [list(g) for _, g in groupby(items, key=lambda i: i.group_key)]


def _load_documents(session: Session, ids: list[int]) -> dict[int, t.Document]:
    rows = session.scalars(
        select(t.Document)
        .where(t.Document.id.in_(ids))
        .options(
            selectinload(t.Document.attachments),
            selectinload(t.Document.party).selectinload(t.Party.contacts),
        )
    )
    return {d.id: d for d in rows}


@dataclass
class _GroupOutcome:
    items: list[t.BatchItem]
    message: MessageDraft | None = None
    error: str | None = None
    field: str | None = None


def _compose_group(
    runtime: Runtime,
    session: Session,
    actor: Actor,
    batch: t.Batch,
    items: list[t.BatchItem],
    docs: dict[int, t.Document],
) -> _GroupOutcome:
    """Build (not yet write) one email for a group of items, or say why it cannot be sent."""
    try:
        composed = compose_in_session(runtime, session, actor, [docs[i.document_id] for i in items])
        message = build_message_draft(
            runtime, session, actor, composed, SendIn(account_id=batch.account_id)
        )
    except DocmailError as exc:
        return _GroupOutcome(items, error=exc.message, field=exc.field)
    except SQLAlchemyError:
        raise  # the database's trouble, not this document's: the chunk fails as a whole
    except Exception as exc:  # a bad document must not stop the batch
        reason = f"the email could not be composed: {_describe(exc)}"
        log.warning("batch %s: documents %s not queued: %s", batch.id, _doc_ids(items), reason)
        return _GroupOutcome(items, error=reason)
    message.values["batch_id"] = batch.id
    return _GroupOutcome(items, message=message)


def _describe(exc: BaseException) -> str:
    """An exception's type and words, short enough for a report and a log line."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:497] + "..."


def _doc_ids(items: list[t.BatchItem]) -> str:
    return ",".join(str(i.document_id) for i in items)


def _started_by(session: Session, batch: t.Batch) -> str:
    """The label of who started the batch (from its audit event), else ``batch:<id>``.

    Batches have no creator column; workers expand them long after the request,
    so the audit event written with the batch is where the creator is kept.
    """
    label = session.scalar(
        select(t.AuditEvent.actor)
        .where(
            t.AuditEvent.company_id == batch.company_id,
            t.AuditEvent.action == BATCH_STARTED,
            t.AuditEvent.target == f"batch:{batch.id}",
        )
        .limit(1)
    )
    return label or f"batch:{batch.id}"


def _write_outcomes(session: Session, outcomes: list[_GroupOutcome]) -> None:
    """Insert every built message at once, then mark each item with its message or reason."""
    built = [o for o in outcomes if o.message is not None]
    ids = store.insert_messages(session, [o.message for o in built if o.message is not None])
    message_of = {id(o): message_id for o, message_id in zip(built, ids, strict=True)}
    rows = [
        {
            "id": item.id,
            "done": True,
            "message_id": message_of.get(id(o)),
            "error": o.error,
            "error_field": o.field,
        }
        for o in outcomes
        for item in o.items
    ]
    if rows:
        session.execute(update(t.BatchItem), rows)


def expand_chunk(runtime: Runtime, batch_id: int, chunk: int = CHUNK_SIZE) -> bool:
    """Expand the next chunk of a batch in one transaction; False once the batch is done.

    The chunk that takes the last pending groups also marks the batch done, in the
    same transaction: a batch that fits in one chunk is one transaction, not two.
    """
    with runtime.session() as session:
        batch = session.get_one(t.Batch, batch_id)
        limit = chunk if batch.mode == "per_document" else max(chunk // 10, 1)
        groups = _pending_groups(session, batch_id, limit)
        if groups:
            _expand_groups(runtime, session, batch, groups)
        finished = len(groups) < limit  # fewer than asked for: none are left
        if finished:
            batch.state, batch.finished_at = "done", runtime.clock()
            batch.locked_until = None
    if groups:
        runtime.wakeup()
    return not finished


def _expand_groups(
    runtime: Runtime, session: Session, batch: t.Batch, groups: list[list[t.BatchItem]]
) -> None:
    """Queue one email per group (or record why not) and count the outcomes on the batch."""
    actor = Actor(batch.company_id, Role.SENDER, label=_started_by(session, batch), system=True)
    docs = _load_documents(session, [i.document_id for g in groups for i in g])
    outcomes = [_compose_group(runtime, session, actor, batch, g, docs) for g in groups]
    _write_outcomes(session, outcomes)
    queued = sum(len(o.items) for o in outcomes if o.message is not None)
    failed = sum(len(o.items) for o in outcomes if o.message is None)
    batch.state = "expanding"
    batch.processed += queued + failed
    batch.queued += queued
    batch.failed += failed
    store.notify_queued(session)


def expand_batch(runtime: Runtime, batch_id: int, progress: Progress | None = None) -> None:
    """Expand a whole batch now (the request or the CLI does this for small batches).

    In chunks of up to INLINE_LIMIT documents: a batch the API expands inside its
    request is then one transaction.
    """
    more = True
    while more:
        more = expand_chunk(runtime, batch_id, INLINE_LIMIT)
        if progress is not None:
            with runtime.session() as session:
                batch = session.get_one(t.Batch, batch_id)
                progress(batch.processed, batch.total)


def expand_next_batch(runtime: Runtime, worker: str) -> bool:
    """Worker duty: take one waiting batch (with a lease) and expand one chunk of it.

    A chunk that fails as a whole is recorded on the batch (backed off, and
    quarantined after ``BATCH_ATTEMPTS``) and logged in one line, not raised:
    the worker's other duties go on.
    """
    batch_id = batch_store.claim_batch(runtime.engine, worker, BATCH_LEASE, runtime.clock())
    if batch_id is None:
        return False
    try:
        expand_chunk(runtime, batch_id)
    except Exception as exc:  # recorded on the batch, see above
        _batch_failed(runtime, batch_id, worker, exc)
    else:
        batch_store.release_batch(runtime.engine, batch_id, worker, runtime.clock())
    return True


def _batch_failed(runtime: Runtime, batch_id: int, worker: str, exc: Exception) -> None:
    # A busy or unreachable database is transient: wait, but do not count it.
    transient = isinstance(exc, OperationalError)
    reason = _describe(exc)
    attempts, quarantined = batch_store.fail_batch(
        runtime.engine,
        batch_id,
        worker,
        reason=reason,
        counts=not transient,
        first_wait=BATCH_RETRY_WAIT,
        max_attempts=BATCH_ATTEMPTS,
        now=runtime.clock(),
    )
    if quarantined:
        log.error("batch %s quarantined after %s failed attempts: %s", batch_id, attempts, reason)
    else:
        kind = "transient" if transient else f"attempt {attempts} of {BATCH_ATTEMPTS}"
        log.warning("batch %s failed (%s), backed off: %s", batch_id, kind, reason)


def send_batch(
    runtime: Runtime, actor: Actor, data: BatchIn, progress: Progress | None = None
) -> BatchResult:
    """Store and expand a batch now; return each email's outcome (CLI, small API batches)."""
    batch_id, replayed = start_batch(runtime, actor, data, inline=True)
    if not replayed:
        expand_batch(runtime, batch_id, progress)
    return batch_result(runtime, actor, batch_id, replayed=replayed)


def batch_result(
    runtime: Runtime,
    actor: Actor,
    batch_id: int,
    *,
    replayed: bool = False,
    with_items: bool = True,
) -> BatchResult:
    with runtime.read_session() as session:
        batch = _get_batch(session, actor, batch_id)
        result = BatchResult(
            batch.id,
            batch.mode,
            batch.state,
            batch.total,
            batch.processed,
            batch.queued,
            batch.failed,
            replayed,
        )
        if with_items:
            items = session.execute(  # plain rows: a 500-item answer needs no ORM objects
                select(
                    t.BatchItem.message_id,
                    t.BatchItem.group_key,
                    t.BatchItem.document_id,
                    t.BatchItem.error,
                    t.BatchItem.error_field,
                )
                .where(t.BatchItem.batch_id == batch_id)
                .order_by(t.BatchItem.id)
            )
            for message_id, group in groupby(items, key=lambda i: (i.message_id, i.group_key)):
                members = list(group)
                result.items.append(
                    BatchItemResult(
                        [m.document_id for m in members],
                        message_id[0],
                        members[0].error,
                        members[0].error_field,
                    )
                )
        return result


def get_batch(runtime: Runtime, actor: Actor, batch_id: int) -> BatchStatus:
    with runtime.session() as session:
        batch = _get_batch(session, actor, batch_id)
        delivery = dict(
            session.execute(
                select(t.Message.state, func.count())
                .where(t.Message.batch_id == batch_id)
                .group_by(t.Message.state)
            ).all()
        )
        return BatchStatus(
            batch.id,
            batch.mode,
            batch.state,
            batch.total,
            batch.processed,
            batch.queued,
            batch.failed,
            {s.value: delivery.get(s.value, 0) for s in MessageState},
            batch.created_at,
            batch.finished_at,
            batch.last_error,
        )


@dataclass(frozen=True)
class BatchProblem:
    document_id: int
    message_id: int | None
    stage: str  # "queue": no email could be made; "delivery": the email failed
    error: str


def batch_problems(
    runtime: Runtime, actor: Actor, batch_id: int, limit: int = 200
) -> list[BatchProblem]:
    with runtime.session() as session:
        _get_batch(session, actor, batch_id)
        not_queued = session.execute(
            select(t.BatchItem.document_id, t.BatchItem.error)
            .where(t.BatchItem.batch_id == batch_id, t.BatchItem.error.is_not(None))
            .order_by(t.BatchItem.id)
            .limit(limit)
        ).all()
        undelivered = session.execute(
            select(t.BatchItem.document_id, t.Message.id, t.Message.last_error)
            .join(t.Message, t.Message.id == t.BatchItem.message_id)
            .where(t.BatchItem.batch_id == batch_id, t.Message.state == MessageState.FAILED.value)
            .order_by(t.BatchItem.id)
            .limit(limit)
        ).all()
    problems = [BatchProblem(d, None, "queue", e or "") for d, e in not_queued]
    problems += [BatchProblem(d, m, "delivery", e or "") for d, m, e in undelivered]
    return problems[:limit]


def retry_failed(runtime: Runtime, actor: Actor, batch_id: int) -> dict[str, int]:
    """Requeue the batch's failed emails and try again the documents that made none."""
    actor.require(Role.SENDER)
    now = runtime.clock()
    with runtime.session() as session:
        batch = _get_batch(session, actor, batch_id)
        requeued = store.requeue(
            session,
            now,
            company_id=actor.company_id,
            batch_id=batch_id,
            states=[MessageState.FAILED.value],
        )
        again = session.execute(
            update(t.BatchItem)
            .where(
                t.BatchItem.batch_id == batch_id,
                t.BatchItem.error.is_not(None),
                t.BatchItem.error_field != "document_ids",
            )
            .values(done=False, error=None, error_field=None)
        ).rowcount  # type: ignore[attr-defined]
        if again:
            batch.processed -= again
            batch.failed -= again
            batch.state, batch.finished_at = "ready", None
        if batch.state == batch_store.QUARANTINED:  # asked to try again: a fresh budget
            batch.state, batch.finished_at = "ready", None
        if batch.state == "ready":
            batch.attempts, batch.next_attempt_at, batch.last_error = 0, None, None
    runtime.wakeup()
    return {"requeued": requeued, "retried_documents": again}
