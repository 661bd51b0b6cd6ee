"""The delivery log (messages, their exact source, attempts, resend) and the demo mail catcher."""

from __future__ import annotations

import email
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import cast

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from docmail.domain.outbox import FINAL_STATES, MessageState
from docmail.errors import NotFound
from docmail.services import messages
from docmail.services.partial_delivery import recipient_report
from docmail.web.pages_documents import file_response
from docmail.web.queries import (
    PAGE_SIZE,
    caught_messages,
    caught_raw,
    message_state,
    search_messages,
)
from docmail.web.routing import Admin, SenderPost, Viewer, WebRoute, render, runtime_of

router = APIRouter(route_class=WebRoute, include_in_schema=False)
STATES = tuple(s.value for s in MessageState)
HEADERS = ("From", "To", "Cc", "Subject", "Date", "Message-ID")


@dataclass(frozen=True)
class Parsed:
    """An RFC 5322 message taken apart for display."""

    headers: list[tuple[str, str]]
    html: str
    text: str
    attachments: list[tuple[str, str, int]]  # filename, content type, size


def parse_message(raw: bytes) -> tuple[EmailMessage, Parsed]:
    message = cast(EmailMessage, email.message_from_bytes(raw, policy=default_policy))
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    files = [
        (part.get_filename() or "attachment", part.get_content_type(), len(_payload(part)))
        for part in message.iter_attachments()
    ]
    return message, Parsed(
        headers=[(name, str(message[name])) for name in HEADERS if message[name] is not None],
        html=str(html_part.get_content()) if html_part is not None else "",
        text=str(text_part.get_content()) if text_part is not None else "",
        attachments=files,
    )


def _payload(part: EmailMessage) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def attachment_of(raw: bytes, index: int, download: bool) -> Response:
    message, _parsed = parse_message(raw)
    parts = list(message.iter_attachments())
    if not 0 <= index < len(parts):
        raise NotFound(f"attachment {index} not found", field="index", value=index)
    part = parts[index]
    filename = part.get_filename() or f"attachment-{index}"
    return file_response(_payload(part), part.get_content_type(), filename, download)


@router.get("/log")
def log_list(request: Request, signed: Viewer) -> Response:
    params = request.query_params
    state = params.get("state", "") if params.get("state") in STATES else ""
    text = params.get("q", "").strip()
    page_text = params.get("page", "1")
    page = int(page_text) if page_text.isdigit() and int(page_text) > 0 else 1
    rows, total = search_messages(runtime_of(request), signed.actor, state, text, page)
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return render(
        request,
        "log.html",
        rows=rows,
        total=total,
        state=state,
        q=text,
        page=page,
        pages=pages,
        states=STATES,
    )


@router.get("/log/{message_id}")
def message_page(request: Request, signed: Viewer, message_id: int) -> Response:
    runtime, actor = runtime_of(request), signed.actor
    message = messages.get_message(runtime, actor, message_id)
    _email, parsed = parse_message(messages.message_source(runtime, actor, message_id))
    attempts = messages.message_attempts(runtime, actor, message_id)
    recipients = recipient_report(message, attempts)
    return render(
        request,
        "message.html",
        message=message,
        parsed=parsed,
        attempts=attempts,
        recipients=recipients,
    )


@router.get("/log/{message_id}/status")
def message_status(request: Request, signed: Viewer, message_id: int) -> Response:
    row = message_state(runtime_of(request), signed.actor, message_id)
    final = MessageState(row.state) in FINAL_STATES
    return render(request, "_message_status.html", row=row, final=final)


@router.get("/log/{message_id}/source")
def message_source(request: Request, signed: Viewer, message_id: int) -> Response:
    raw = messages.message_source(runtime_of(request), signed.actor, message_id)
    return Response(
        raw, media_type="text/plain; charset=utf-8", headers={"Content-Security-Policy": "sandbox"}
    )


@router.get("/log/{message_id}/attachments/{index}")
def message_attachment(
    request: Request, signed: Viewer, message_id: int, index: int, download: bool = False
) -> Response:
    raw = messages.message_source(runtime_of(request), signed.actor, message_id)
    return attachment_of(raw, index, download)


@router.post("/log/{message_id}/resend")
def resend(request: Request, signed: SenderPost, message_id: int) -> Response:
    copy = messages.resend_message(runtime_of(request), signed.actor, message_id)
    return RedirectResponse(f"/log/{copy.id}", status_code=303)


@router.get("/catcher")
def catcher_inbox(request: Request, signed: Admin) -> Response:
    return render(
        request, "catcher.html", rows=caught_messages(runtime_of(request), signed.actor.company_id)
    )


@router.get("/catcher/{caught_id}")
def caught_page(request: Request, signed: Admin, caught_id: int) -> Response:
    _email, parsed = parse_message(
        caught_raw(runtime_of(request), signed.actor.company_id, caught_id)
    )
    return render(request, "caught.html", caught_id=caught_id, parsed=parsed)


@router.get("/catcher/{caught_id}/attachments/{index}")
def caught_attachment(
    request: Request, signed: Admin, caught_id: int, index: int, download: bool = False
) -> Response:
    return attachment_of(
        caught_raw(runtime_of(request), signed.actor.company_id, caught_id), index, download
    )
