"""The send dialog: pre-filled from compose, edited by the user, confirmed, then queued.

The idempotency key is made when the dialog opens and travels in a hidden field,
so a double click (or a retried request) queues one email, never two.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from pydantic import ValidationError as PydanticError

from docmail.errors import DocmailError, ValidationError
from docmail.services import accounts, compose, documents, oauth, sending
from docmail.services.htmltext import text_to_html
from docmail.services.inputs import SendIn
from docmail.web import oauth_pages
from docmail.web.routing import Sender, SenderPost, WebRoute, render, runtime_of

router = APIRouter(route_class=WebRoute, include_in_schema=False)
_SPLIT = re.compile(r"[;,\n]+")


@dataclass
class Draft:
    """What the dialog shows: the composition's values, or the user's edits of them."""

    to: list[str]
    cc: list[str]
    subject: str
    body_text: str
    original_text: str
    account_id: int | None
    keep: list[int] | None
    key: str
    errors: dict[str, str] = field(default_factory=dict)
    error: str = ""


def _fresh_draft(composition: compose.Composition) -> Draft:
    return Draft(
        to=[m.formatted() for m in composition.to],
        cc=[m.formatted() for m in composition.cc],
        subject=composition.subject,
        body_text=composition.body_text,
        original_text=composition.body_text,
        account_id=composition.account.id if composition.account else None,
        keep=None,
        key=uuid.uuid4().hex,
    )


def _dialog(
    request: Request, signed: Sender, document_id: int, draft: Draft, status: int = 200
) -> Response:
    runtime = runtime_of(request)
    composition = compose.compose(runtime, signed.actor, document_id)
    account_rows = accounts.usable_accounts(runtime, signed.actor)
    html = composition.body_html
    if draft.body_text != draft.original_text:
        html = text_to_html(draft.body_text)
    return render(
        request,
        "_send_dialog.html",
        status,
        document_id=document_id,
        composition=composition,
        draft=draft,
        preview_html=html,
        accounts=account_rows,
        unconnected=_unconnected(account_rows, draft.account_id),
    )


def _unconnected(rows: list[Any], account_id: int | None) -> Any:
    """The chosen Gmail/Microsoft account when it cannot send until someone signs in."""
    for row in rows:
        if row.id == account_id:
            status = oauth.oauth_status(row)
            return row if status and status["status"] != "connected" else None
    return None


@router.get("/accounts/{account_id}/connect")
def connect_page(request: Request, signed: Sender, account_id: int, back: str = "") -> Response:
    """A page with one button: sign in to the mailbox, then come back to ``back``."""
    row = accounts.get_account(runtime_of(request), signed.actor, account_id)
    return render(
        request, "connect.html", account=row, back=oauth.check_return_to(back or None) or "/"
    )


@router.post("/accounts/{account_id}/connect")
def connect(
    request: Request, signed: SenderPost, account_id: int, back: Annotated[str, Form()] = "/"
) -> Response:
    """Go to the provider's consent page (admins, or the mailbox's owner)."""
    return oauth_pages.begin(request, signed, account_id, back or "/")


@router.get("/documents/{document_id}/send")
def open_dialog(request: Request, signed: Sender, document_id: int) -> Response:
    composition = compose.compose(runtime_of(request), signed.actor, document_id)
    return _dialog(request, signed, document_id, _fresh_draft(composition))


@router.post("/documents/{document_id}/send/preview")
def preview(
    request: Request,
    signed: SenderPost,
    document_id: int,
    body_text: Annotated[str, Form()] = "",
    original_text: Annotated[str, Form()] = "",
) -> Response:
    runtime = runtime_of(request)
    if body_text == original_text:
        html = compose.compose(runtime, signed.actor, document_id).body_html
    else:
        documents.get_document(runtime, signed.actor, document_id)  # another company's: 404
        html = text_to_html(body_text)
    return render(request, "_preview.html", html=html)


def _addresses(chips: list[str], typed: str) -> list[str]:
    extra = [part.strip() for part in _SPLIT.split(typed) if part.strip()]
    return [a for a in chips if a.strip()] + extra


def _draft_from_form(
    to: list[str], to_new: str, cc: list[str], cc_new: str, form: dict[str, str], keep: list[int]
) -> Draft:
    account = form.get("account_id", "")
    everything = [int(i) for i in form.get("attachments_all", "").split(",") if i.isdigit()]
    return Draft(
        to=_addresses(to, to_new),
        cc=_addresses(cc, cc_new),
        subject=form.get("subject", ""),
        body_text=form.get("body_text", ""),
        original_text=form.get("original_text", ""),
        account_id=int(account) if account.isdigit() else None,
        keep=None if sorted(keep) == sorted(everything) else keep,
        key=form.get("idem_key", "") or uuid.uuid4().hex,
    )


def _edits(draft: Draft) -> SendIn:
    try:
        return SendIn(
            to=draft.to,
            cc=draft.cc,
            subject=draft.subject,
            body_text=None if draft.body_text == draft.original_text else draft.body_text,
            account_id=draft.account_id,
            attachment_ids=draft.keep,
        )
    except PydanticError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "form"
        raise ValidationError(f"{name}: {first['msg']}", field=name) from None


@router.post("/documents/{document_id}/send")
def send(
    request: Request,
    signed: SenderPost,
    document_id: int,
    to: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults
    to_new: Annotated[str, Form()] = "",
    cc: Annotated[list[str], Form()] = [],  # noqa: B006
    cc_new: Annotated[str, Form()] = "",
    subject: Annotated[str, Form()] = "",
    body_text: Annotated[str, Form()] = "",
    original_text: Annotated[str, Form()] = "",
    account_id: Annotated[str, Form()] = "",
    attachment_ids: Annotated[list[int], Form()] = [],  # noqa: B006
    attachments_all: Annotated[str, Form()] = "",
    idem_key: Annotated[str, Form()] = "",
) -> Response:
    form = {
        "subject": subject,
        "body_text": body_text,
        "original_text": original_text,
        "account_id": account_id,
        "attachments_all": attachments_all,
        "idem_key": idem_key,
    }
    draft = _draft_from_form(to, to_new, cc, cc_new, form, attachment_ids)
    try:
        outcome = sending.send_document(
            runtime_of(request), signed.actor, document_id, _edits(draft), draft.key
        )
    except DocmailError as exc:
        if exc.status_code not in (409, 422):
            raise
        name = (exc.field or "form").split(".")[0].split("[")[0]
        draft.errors[name] = exc.message
        draft.error = exc.message
        return _dialog(request, signed, document_id, draft, exc.status_code)
    return render(request, "_send_result.html", message=outcome.message, replayed=outcome.replayed)
