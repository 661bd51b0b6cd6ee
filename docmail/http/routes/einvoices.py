"""E-invoice import and cancellation notices."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from docmail.errors import PayloadTooLarge, ValidationError
from docmail.http.auth import current_actor, runtime_of
from docmail.http.openapi import also_200
from docmail.http.params import IdPath
from docmail.http.routes.documents import queued_json
from docmail.http.serializers import composition_json, document_json
from docmail.services import einvoices
from docmail.services.inputs import SendIn
from docmail.services.runtime import Actor

router = APIRouter(tags=["e-invoices"])
Json = dict[str, Any]

_IMPORT_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "the XML"},
                        "pdf": {"type": "string", "format": "binary", "description": "the PDF"},
                        "party_language": {"type": "string", "enum": ["es", "pt", "en"]},
                    },
                    "required": ["file"],
                }
            }
        },
        "required": True,
    }
}


async def _read(form: Any, name: str, limit: int, required: bool) -> bytes | None:
    upload = form.get(name)
    if upload is None and not required:
        return None
    if not isinstance(upload, UploadFile):
        raise ValidationError(f"{name}: upload the file as a multipart file field", field=name)
    data: bytes = await upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"{name} is larger than the limit of {limit} bytes", field=name)
    return data


@router.post(
    "/einvoices/import",
    status_code=201,
    openapi_extra=_IMPORT_BODY,
    responses=also_200("This e-invoice was imported before: the stored document"),
)
async def import_einvoice(
    request: Request, response: Response, actor: Actor = Depends(current_actor)
) -> Json:
    """Import a CFDI, NF-e/CT-e or DIAN XML as a stamped document (idempotent by number)."""
    runtime = runtime_of(request)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ValidationError("send the e-invoice as multipart/form-data", field="content-type")
    limit = runtime.settings.max_attachment_bytes
    async with request.form(max_files=2, max_fields=3) as form:
        xml = await _read(form, "file", limit, required=True)
        pdf = await _read(form, "pdf", limit, required=False)
        language = form.get("party_language")
    if language is not None and not isinstance(language, str):
        raise ValidationError("party_language must be es, pt or en", field="party_language")
    assert xml is not None
    result = await run_in_threadpool(
        einvoices.import_einvoice, runtime, actor, xml, pdf, language or None
    )
    if not result.created:
        response.status_code = 200
    return {**document_json(result.document), **einvoices.import_summary(result)}


@router.get("/documents/{document_id}/announce-cancellation")
def preview_cancellation(
    document_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    """The pre-filled cancellation notice of a cancelled document."""
    return composition_json(einvoices.compose_cancellation(runtime_of(request), actor, document_id))


@router.post(
    "/documents/{document_id}/announce-cancellation",
    status_code=202,
    responses=also_200("The Idempotency-Key was used before: the notice queued then"),
)
def announce_cancellation(
    document_id: IdPath,
    request: Request,
    response: Response,
    body: SendIn | None = None,
    idempotency_key: str | None = Header(default=None, max_length=200),
    actor: Actor = Depends(current_actor),
) -> Json:
    """Queue the notice that a cancelled document is void, to the document's recipients."""
    outcome = einvoices.announce_cancellation(
        runtime_of(request), actor, document_id, body or SendIn(), idempotency_key
    )
    return queued_json(outcome, response)
