"""The delivery log: messages, their source, resend and cancel; the demo mail catcher."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import func, select

from docmail.adapters.db import tables as t
from docmail.errors import NotFound, ValidationError
from docmail.http.auth import current_actor, runtime_of
from docmail.http.openapi import binary
from docmail.http.params import IdPath, IdQuery, Offset
from docmail.http.serializers import message_json
from docmail.services import messages
from docmail.services.runtime import Actor, Role

router = APIRouter()
Json = dict[str, Any]
_STATES = ("queued", "sending", "retrying", "sent", "failed", "cancelled")


@router.get("/messages")
def list_messages(
    request: Request,
    state: str | None = None,
    document_id: IdQuery = None,
    batch_id: IdQuery = None,
    limit: int = 50,
    offset: Offset = 0,
    actor: Actor = Depends(current_actor),
) -> Json:
    if state is not None and state not in _STATES:
        raise ValidationError(
            f"state {state!r} must be one of {', '.join(_STATES)}", field="state", value=state
        )
    flt = messages.MessageFilter(
        state, document_id, batch_id, min(max(limit, 1), 500), max(offset, 0)
    )
    rows, total = messages.list_messages(runtime_of(request), actor, flt)
    return {"items": [message_json(m) for m in rows], "total": total}


@router.get("/messages/{message_id}")
def get_message(
    message_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    runtime = runtime_of(request)
    message = messages.get_message(runtime, actor, message_id)
    return message_json(message, messages.message_attempts(runtime, actor, message_id))


@router.get(
    "/messages/{message_id}/source",
    response_class=Response,
    responses=binary("message/rfc822", "The email exactly as sent (or as it will be sent)"),
)
def message_source(
    message_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    raw = messages.message_source(runtime_of(request), actor, message_id)
    return Response(
        raw,
        media_type="message/rfc822",
        headers={"Content-Disposition": f'attachment; filename="message-{message_id}.eml"'},
    )


@router.post("/messages/{message_id}/resend", status_code=202)
def resend(message_id: IdPath, request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return message_json(messages.resend_message(runtime_of(request), actor, message_id))


@router.post("/messages/{message_id}/cancel")
def cancel(message_id: IdPath, request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return message_json(messages.cancel_message(runtime_of(request), actor, message_id))


def _caught_json(row: t.CaughtMessage) -> Json:
    return {
        "id": row.id,
        "received_at": row.received_at.isoformat(),
        "mail_from": row.mail_from,
        "rcpt_to": list(row.rcpt_to),
        "subject": row.subject,
        "size": len(row.raw),
    }


@router.get("/catcher/messages")
def caught_messages(
    request: Request, limit: int = 50, offset: Offset = 0, actor: Actor = Depends(current_actor)
) -> Json:
    """Messages captured by the built-in demo mail catcher (``serve --demo``).

    Each company sees the ones its own outbox sent (matched by Message-ID); admins only.
    """
    actor.require(Role.ADMIN)
    runtime = runtime_of(request)
    own = t.CaughtMessage.company_id == actor.company_id
    with runtime.session() as session:
        total = session.scalar(select(func.count()).where(own)) or 0
        rows = session.scalars(
            select(t.CaughtMessage)
            .where(own)
            .order_by(t.CaughtMessage.id.desc())
            .limit(min(max(limit, 1), 500))
            .offset(max(offset, 0))
        )
        return {"items": [_caught_json(r) for r in rows], "total": total}


@router.get(
    "/catcher/messages/{caught_id}/raw",
    response_class=Response,
    responses=binary("message/rfc822", "The caught email as received"),
)
def caught_raw(
    caught_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    actor.require(Role.ADMIN)
    with runtime_of(request).session() as session:
        row = session.get(t.CaughtMessage, caught_id)
        if row is None or row.company_id != actor.company_id:
            raise NotFound(f"caught message {caught_id} not found", field="id", value=caught_id)
        return Response(
            row.raw,
            media_type="message/rfc822",
            headers={"Content-Disposition": f'attachment; filename="caught-{caught_id}.eml"'},
        )
