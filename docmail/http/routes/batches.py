"""Batch send: start, follow progress, list problems, retry what failed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Request, Response

from docmail.http.auth import current_actor, runtime_of
from docmail.http.openapi import also_200
from docmail.http.params import IdPath
from docmail.services import batches
from docmail.services.inputs import BatchIn
from docmail.services.runtime import Actor

router = APIRouter()
Json = dict[str, Any]


def _result_json(result: batches.BatchResult) -> Json:
    return {
        "batch_id": result.batch_id,
        "mode": result.mode,
        "state": result.state,
        "total": result.total,
        "processed": result.processed,
        "queued": result.queued,
        "failed": result.failed,
        "emails": len({i.message_id for i in result.items if i.message_id is not None}),
        "replayed": result.replayed,
        "items": [
            {
                "document_ids": i.document_ids,
                "message_id": i.message_id,
                "error": i.error,
                "field": i.field,
            }
            for i in result.items
        ],
    }


def _status_json(status: batches.BatchStatus) -> Json:
    return {
        "batch_id": status.id,
        "mode": status.mode,
        "state": status.state,
        "total": status.total,
        "processed": status.processed,
        "queued": status.queued,
        "failed": status.failed,
        "delivery": status.delivery,
        "created_at": status.created_at.isoformat(),
        "finished_at": status.finished_at.isoformat() if status.finished_at else None,
        # Why expansion failed as a whole: backed off (still "ready"/"expanding") or "quarantined".
        "error": status.error,
    }


@router.post(
    "/documents/send-batch",
    status_code=202,
    responses=also_200("The idempotency key was used before: that batch's progress"),
)
def send_batch(
    body: BatchIn,
    request: Request,
    response: Response,
    idempotency_key: str | None = Header(default=None, max_length=200),
    actor: Actor = Depends(current_actor),
) -> Json:
    """Queue many documents. Up to 500 are expanded at once and answered item by item;
    larger batches are expanded by the workers: follow them with GET /batches/{id}."""
    runtime = runtime_of(request)
    if idempotency_key and not body.idempotency_key:
        body = body.model_copy(update={"idempotency_key": idempotency_key})
    small = len(body.document_ids) <= batches.INLINE_LIMIT
    batch_id, replayed = batches.start_batch(runtime, actor, body, inline=small)
    if replayed:
        response.status_code = 200
    elif small:
        batches.expand_batch(runtime, batch_id)
    result = batches.batch_result(runtime, actor, batch_id, replayed=replayed, with_items=small)
    return _result_json(result)


@router.get("/batches/{batch_id}")
def get_batch(batch_id: IdPath, request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return _status_json(batches.get_batch(runtime_of(request), actor, batch_id))


@router.get("/batches/{batch_id}/problems")
def batch_problems(
    batch_id: IdPath, request: Request, limit: int = 200, actor: Actor = Depends(current_actor)
) -> Json:
    problems = batches.batch_problems(
        runtime_of(request), actor, batch_id, min(max(limit, 1), 1000)
    )
    return {
        "items": [
            {
                "document_id": p.document_id,
                "message_id": p.message_id,
                "stage": p.stage,
                "error": p.error,
            }
            for p in problems
        ]
    }


@router.post("/batches/{batch_id}/retry-failed")
def retry_failed(batch_id: IdPath, request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return batches.retry_failed(runtime_of(request), actor, batch_id)
