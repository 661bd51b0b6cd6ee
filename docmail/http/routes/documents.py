"""Documents, compose and send, batches."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError as PydanticValidationError
from starlette.datastructures import UploadFile

from docmail.errors import PayloadTooLarge, ValidationError
from docmail.http.auth import current_actor, runtime_of
from docmail.http.openapi import also_200, binary
from docmail.http.params import IdPath, Offset
from docmail.http.serializers import (
    composition_json,
    document_json,
    message_json,
)
from docmail.services import compose, documents, documents_bulk, messages, sending
from docmail.services.blobs import AttachmentData
from docmail.services.inputs import (
    DocumentIn,
    DocumentPatch,
    DocumentsBulkIn,
    SendIn,
    check_content_type,
    check_filename,
)
from docmail.services.runtime import Actor, Runtime

router = APIRouter()
Json = dict[str, Any]

_DOCUMENT_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": DocumentIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "document": {"type": "string", "description": "the document as JSON"},
                        "attachments": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        },
                    },
                    "required": ["document"],
                }
            },
        },
        "required": True,
    }
}


def _validate(model: type[DocumentIn], raw: bytes | str) -> DocumentIn:
    try:
        return model.model_validate_json(raw)
    except PydanticValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc


async def _read_uploads(runtime: Runtime, files: list[Any]) -> list[AttachmentData]:
    limit = runtime.settings.max_attachment_bytes
    result = []
    for index, upload in enumerate(files):
        if not isinstance(upload, UploadFile):
            raise ValidationError(f"attachments[{index}] must be a file", field="attachments")
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge(
                f"attachments[{index}] ({upload.filename}) is larger than {limit} bytes",
                field=f"attachments[{index}]",
            )
        name = check_filename(
            upload.filename or f"attachment-{index + 1}", f"attachments[{index}].filename"
        )
        content_type = check_content_type(
            upload.content_type or "application/octet-stream",
            f"attachments[{index}].content_type",
        )
        result.append(AttachmentData(name, content_type, data))
    return result


async def _document_and_files(
    request: Request, runtime: Runtime
) -> tuple[DocumentIn, list[AttachmentData]]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=20, max_fields=20) as form:
            raw = form.get("document")
            if not isinstance(raw, str):
                raise ValidationError(
                    "document: give the document as a JSON form field", field="document"
                )
            return _validate(DocumentIn, raw), await _read_uploads(
                runtime, form.getlist("attachments")
            )
    if "json" not in content_type:
        raise ValidationError(
            "send the document as application/json or multipart/form-data",
            field="content-type",
            value=content_type,
        )
    return _validate(DocumentIn, await request.body()), []


@router.post(
    "/documents",
    status_code=201,
    openapi_extra=_DOCUMENT_BODY,
    responses=also_200("A document with this type and number exists: it is returned as stored"),
)
async def create_document(
    request: Request, response: Response, actor: Actor = Depends(current_actor)
) -> Json:
    runtime = runtime_of(request)
    data, files = await _document_and_files(request, runtime)
    result = await run_in_threadpool(documents.create_document, runtime, actor, data, files)
    if not result.created:
        response.status_code = 200
    return {**document_json(result.document), "created": result.created}


@router.post(
    "/documents/bulk",
    status_code=201,
    responses=also_200("Every document of the request existed already: nothing was created"),
)
def create_documents_bulk(
    body: DocumentsBulkIn,
    request: Request,
    response: Response,
    actor: Actor = Depends(current_actor),
) -> Json:
    """Store up to 1,000 documents in one transaction; existing numbers are returned as stored."""
    results = documents_bulk.create_documents(runtime_of(request), actor, body.documents)
    created = sum(1 for r in results if r.created)
    if not created:
        response.status_code = 200
    return {
        "created": created,
        "items": [
            {"index": r.index, "id": r.id, "number": r.number, "created": r.created}
            for r in results
        ],
    }


@router.get("/documents")
def list_documents(
    request: Request,
    type: str | None = None,
    status: str | None = None,
    party_code: str | None = None,
    number: str | None = None,
    sent: str | None = None,
    limit: int = 50,
    offset: Offset = 0,
    actor: Actor = Depends(current_actor),
) -> Json:
    if sent not in (None, "sent", "unsent", "failed"):
        raise ValidationError(f"sent {sent!r} must be sent, unsent or failed", field="sent")
    flt = documents.DocumentFilter(
        type, status, party_code, number, sent, min(max(limit, 1), 500), max(offset, 0)
    )
    rows, total = documents.list_documents(runtime_of(request), actor, flt)
    return {"items": [document_json(d) for d in rows], "total": total}


@router.get("/documents/{document_id}")
def get_document(
    document_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    return document_json(documents.get_document(runtime_of(request), actor, document_id))


@router.patch("/documents/{document_id}")
def update_document(
    document_id: IdPath,
    body: DocumentPatch,
    request: Request,
    actor: Actor = Depends(current_actor),
) -> Json:
    return document_json(documents.update_document(runtime_of(request), actor, document_id, body))


@router.post("/documents/{document_id}/attachments", status_code=201)
async def add_attachments(
    document_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    runtime = runtime_of(request)
    async with request.form(max_files=20, max_fields=5) as form:
        files = await _read_uploads(runtime, form.getlist("attachments"))
    if not files:
        raise ValidationError("attachments: upload at least one file", field="attachments")
    doc = await run_in_threadpool(documents.add_attachments, runtime, actor, document_id, files)
    return document_json(doc)


@router.get(
    "/documents/{document_id}/attachments/{attachment_id}",
    response_class=Response,
    responses=binary("*/*", "The attachment, with its own content type"),
)
def download_attachment(
    document_id: IdPath,
    attachment_id: IdPath,
    request: Request,
    actor: Actor = Depends(current_actor),
) -> Response:
    attachment, data = documents.attachment_content(
        runtime_of(request), actor, document_id, attachment_id
    )
    disposition = f"attachment; filename*=UTF-8''{_quote(attachment.filename)}"
    return Response(
        data, media_type=attachment.content_type, headers={"Content-Disposition": disposition}
    )


def _quote(name: str) -> str:
    return quote(name, safe="")


@router.get("/documents/{document_id}/compose")
def compose_document(
    document_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    return composition_json(compose.compose(runtime_of(request), actor, document_id))


@router.post(
    "/documents/{document_id}/send",
    status_code=202,
    responses=also_200("The Idempotency-Key was used before: the email queued then"),
)
def send_document(
    document_id: IdPath,
    request: Request,
    response: Response,
    body: SendIn | None = None,
    idempotency_key: str | None = Header(default=None, max_length=200),
    actor: Actor = Depends(current_actor),
) -> Json:
    outcome = sending.send_document(
        runtime_of(request), actor, document_id, body or SendIn(), idempotency_key
    )
    return queued_json(outcome, response)


def queued_json(outcome: sending.SendOutcome, response: Response) -> Json:
    """202 for a newly queued email; 200 when an Idempotency-Key replayed an earlier one."""
    if outcome.replayed:
        response.status_code = 200
    return {**message_json(outcome.message), "replayed": outcome.replayed}


@router.get("/documents/{document_id}/messages")
def document_messages(
    document_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    runtime = runtime_of(request)
    documents.get_document(runtime, actor, document_id)
    rows, total = messages.list_messages(
        runtime, actor, messages.MessageFilter(document_id=document_id, limit=500)
    )
    return {"items": [message_json(m) for m in rows], "total": total}
