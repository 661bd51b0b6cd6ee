"""Batch send from the document list: preview the emails, confirm, follow delivery live.

All batch logic of the web application lives here, on top of services.batches
(send_batch, get_batch, batch_problems, retry_failed).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from itertools import groupby
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from docmail.adapters.db import tables as t
from docmail.errors import DocmailError, ValidationError
from docmail.services import accounts, batches
from docmail.services.compose import compose_in_session
from docmail.services.inputs import BatchIn
from docmail.services.runtime import Actor, Runtime
from docmail.web.routing import Sender, SenderPost, WebRoute, render, runtime_of

router = APIRouter(route_class=WebRoute, include_in_schema=False)
MODES = ("per_document", "per_party")
PREVIEW_LIMIT = 1000
IN_FLIGHT = ("queued", "sending", "retrying")


@dataclass(frozen=True)
class PreviewGroup:
    numbers: list[str]
    party: str
    to: list[str]
    cc: list[str]
    problem: str | None


def preview_groups(runtime: Runtime, actor: Actor, ids: list[int], mode: str) -> list[PreviewGroup]:
    """Compose every email of the batch without queueing anything (the session rolls back)."""
    groups: list[PreviewGroup] = []
    with runtime.sessions() as session:
        docs = session.scalars(
            select(t.Document)
            .where(t.Document.company_id == actor.company_id, t.Document.id.in_(ids))
            .options(
                selectinload(t.Document.attachments),
                selectinload(t.Document.party).selectinload(t.Party.contacts),
            )
            .order_by(t.Document.party_id, t.Document.id)
        ).all()
        key = (lambda d: d.party_id) if mode == "per_party" else (lambda d: d.id)
        for _key, members in groupby(docs, key=key):
            group = list(members)
            groups.append(_preview_one(runtime, session, actor, group))
        session.rollback()
    return groups


def _preview_one(
    runtime: Runtime, session: Session, actor: Actor, docs: list[t.Document]
) -> PreviewGroup:
    numbers, party = [d.number for d in docs], docs[0].party.name
    try:
        composed = compose_in_session(runtime, session, actor, docs)
    except DocmailError as exc:
        return PreviewGroup(numbers, party, [], [], exc.message)
    problem = composed.blocked_reason
    if not composed.to and problem is None:
        problem = "; ".join(composed.warnings) or "no recipient"
    return PreviewGroup(
        numbers,
        party,
        [m.formatted() for m in composed.to],
        [m.formatted() for m in composed.cc],
        problem,
    )


def _ids(ids: list[int]) -> list[int]:
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise ValidationError("select at least one document", field="ids")
    if len(unique) > PREVIEW_LIMIT:
        raise ValidationError(f"select at most {PREVIEW_LIMIT} documents", field="ids")
    return unique


@router.post("/batch/preview")
def batch_preview(
    request: Request,
    signed: SenderPost,
    ids: Annotated[list[int], Form()] = [],  # noqa: B006 - FastAPI copies defaults
    mode: Annotated[str, Form()] = "per_document",
    account_id: Annotated[str, Form()] = "",
) -> Response:
    runtime = runtime_of(request)
    chosen = _ids(ids)
    mode = mode if mode in MODES else "per_document"
    groups = preview_groups(runtime, signed.actor, chosen, mode)
    return render(
        request,
        "_batch_preview.html",
        groups=groups,
        ids=chosen,
        mode=mode,
        account_id=account_id if account_id.isdigit() else "",
        ok=sum(1 for g in groups if g.problem is None),
        key=uuid.uuid4().hex,
        accounts=accounts.usable_accounts(runtime, signed.actor),
    )


@router.post("/batch")
def batch_send(
    request: Request,
    signed: SenderPost,
    ids: Annotated[list[int], Form()] = [],  # noqa: B006
    mode: Annotated[str, Form()] = "per_document",
    account_id: Annotated[str, Form()] = "",
    idem_key: Annotated[str, Form()] = "",
) -> Response:
    data = BatchIn(
        document_ids=_ids(ids),
        mode="per_party" if mode == "per_party" else "per_document",
        account_id=int(account_id) if account_id.isdigit() else None,
        idempotency_key=idem_key or None,
    )
    # The workers expand the batch into emails (start_batch only stores it), so this
    # request answers at once and the progress bar shows expansion, then delivery.
    batch_id, _replayed = batches.start_batch(runtime_of(request), signed.actor, data)
    return _progress(request, signed, batch_id)


def _progress(request: Request, signed: Sender, batch_id: int) -> Response:
    runtime = runtime_of(request)
    status = batches.get_batch(runtime, signed.actor, batch_id)
    in_flight = sum(status.delivery.get(s, 0) for s in IN_FLIGHT)
    stopped = status.state == "quarantined"  # failed as a whole too often: see status.error
    finished = (status.state == "done" or stopped) and in_flight == 0
    delivered = status.delivery.get("sent", 0) + status.delivery.get("failed", 0)
    emails = sum(status.delivery.values())
    problems = batches.batch_problems(runtime, signed.actor, batch_id) if finished else []
    return render(
        request,
        "_batch_progress.html",
        batch=status,
        finished=finished,
        stopped=stopped,
        delivered=delivered,
        emails=emails,
        problems=problems,
    )


@router.get("/batches/{batch_id}/progress")
def batch_progress(request: Request, signed: Sender, batch_id: int) -> Response:
    return _progress(request, signed, batch_id)


@router.get("/batches/{batch_id}")
def batch_page(request: Request, signed: Sender, batch_id: int) -> Response:
    batches.get_batch(runtime_of(request), signed.actor, batch_id)
    return render(request, "batch.html", batch_id=batch_id)


@router.post("/batches/{batch_id}/retry")
def batch_retry(request: Request, signed: SenderPost, batch_id: int) -> Response:
    batches.retry_failed(runtime_of(request), signed.actor, batch_id)
    return _progress(request, signed, batch_id)
