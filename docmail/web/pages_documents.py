"""Documents: the filtered list, one document with its attachments and delivery history."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response

from docmail.domain.documents import DocumentStatus
from docmail.services import accounts, doctypes, documents, messages
from docmail.services.runtime import Role
from docmail.web.queries import PAGE_SIZE, DocumentQuery, search_documents
from docmail.web.routing import Viewer, WebRoute, can, render, runtime_of

router = APIRouter(route_class=WebRoute, include_in_schema=False)
SENT_FILTERS = ("sent", "unsent", "failed")
INLINE_TYPES = ("application/pdf", "image/png", "image/jpeg", "text/plain")


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _query(request: Request) -> DocumentQuery:
    params = request.query_params
    page = params.get("page", "1")
    return DocumentQuery(
        type=params.get("type", ""),
        status=params.get("status", ""),
        party=params.get("party", "").strip(),
        number=params.get("number", "").strip(),
        date_from=_day(params.get("date_from", "")),
        date_to=_day(params.get("date_to", "")),
        sent=params.get("sent", "") if params.get("sent") in SENT_FILTERS else "",
        page=int(page) if page.isdigit() and int(page) > 0 else 1,
    )


def _page_link(request: Request, page: int) -> str:
    params = dict(request.query_params)
    params["page"] = str(page)
    return "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items() if v)


@router.get("/documents")
def document_list(request: Request, signed: Viewer) -> Response:
    runtime, actor = runtime_of(request), signed.actor
    query = _query(request)
    rows, total = search_documents(runtime, actor, query)
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return render(
        request,
        "documents.html",
        rows=rows,
        total=total,
        query=query,
        page=query.page,
        pages=pages,
        prev_link=_page_link(request, query.page - 1) if query.page > 1 else None,
        next_link=_page_link(request, query.page + 1) if query.page < pages else None,
        types=doctypes.list_types(runtime, actor),
        statuses=[s.value for s in DocumentStatus],
        sent_filters=SENT_FILTERS,
        accounts=accounts.list_accounts(runtime, actor) if can(signed, Role.SENDER) else [],
    )


@router.get("/documents/{document_id}")
def document_page(request: Request, signed: Viewer, document_id: int) -> Response:
    runtime, actor = runtime_of(request), signed.actor
    doc = documents.get_document(runtime, actor, document_id)
    history, _total = messages.list_messages(
        runtime, actor, messages.MessageFilter(document_id=document_id, limit=100)
    )
    preview = next((a for a in doc.attachments if a.content_type == "application/pdf"), None)
    return render(request, "document.html", doc=doc, history=history, preview=preview)


def content_disposition(kind: str, filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def file_response(data: bytes, content_type: str, filename: str, download: bool) -> Response:
    inline = content_type in INLINE_TYPES and not download
    headers = {
        "Content-Disposition": content_disposition("inline" if inline else "attachment", filename)
    }
    if content_type != "application/pdf":
        headers["Content-Security-Policy"] = "sandbox"
    return Response(data, media_type=content_type, headers=headers)


@router.get("/documents/{document_id}/attachments/{attachment_id}")
def document_attachment(
    request: Request,
    signed: Viewer,
    document_id: int,
    attachment_id: int,
    download: Annotated[bool, Query()] = False,
) -> Response:
    row, data = documents.attachment_content(
        runtime_of(request), signed.actor, document_id, attachment_id
    )
    return file_response(data, row.content_type, row.filename, download)
