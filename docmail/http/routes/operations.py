"""Operating the outbox: pause/resume, requeue, health and Prometheus metrics."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from pydantic import Field
from sqlalchemy.exc import SQLAlchemyError

from docmail import __version__
from docmail.adapters.db import tables as t
from docmail.errors import AuthenticationRequired, NotFound
from docmail.http.auth import current_actor, runtime_of
from docmail.http.openapi import JSON_OBJECT
from docmail.http.params import IdPath
from docmail.http.serializers import account_json
from docmail.services import operations
from docmail.services.inputs import DbId, Strict
from docmail.services.runtime import Actor, Runtime

router = APIRouter()
public = APIRouter()  # mounted without the /api/v1 prefix (metrics)
Json = dict[str, Any]


class PauseIn(Strict):
    reason: str = Field(default="", max_length=500)


class RequeueIn(Strict):
    message_ids: list[DbId] | None = Field(default=None, max_length=100_000)
    account_id: DbId | None = None
    batch_id: DbId | None = None
    state: str = "failed"


@router.get("/company")
def get_company(request: Request, actor: Actor = Depends(current_actor)) -> Json:
    with runtime_of(request).session() as session:
        company = session.get_one(t.Company, actor.company_id)
        return {
            "id": company.id,
            "name": company.name,
            "country": company.country,
            "default_language": company.default_language,
            "sending_paused": company.sending_paused,
            "pause_reason": company.pause_reason,
        }


@router.post("/company/pause")
def pause_company(body: PauseIn, request: Request, actor: Actor = Depends(current_actor)) -> Json:
    operations.pause_company(runtime_of(request), actor, body.reason)
    return get_company(request, actor)


@router.post("/company/resume")
def resume_company(request: Request, actor: Actor = Depends(current_actor)) -> Json:
    operations.resume_company(runtime_of(request), actor)
    return get_company(request, actor)


@router.post("/accounts/{account_id}/pause")
def pause_account(
    account_id: IdPath, body: PauseIn, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    account = operations.set_account_paused(
        runtime_of(request), actor, account_id, True, body.reason
    )
    return account_json(account)


@router.post("/accounts/{account_id}/resume")
def resume_account(
    account_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    return account_json(
        operations.set_account_paused(runtime_of(request), actor, account_id, False)
    )


@router.post("/messages/requeue")
def requeue(body: RequeueIn, request: Request, actor: Actor = Depends(current_actor)) -> Json:
    count = operations.requeue_messages(
        runtime_of(request),
        actor,
        message_ids=body.message_ids,
        account_id=body.account_id,
        batch_id=body.batch_id,
        state=body.state,
    )
    return {"requeued": count}


@router.get(
    "/health",
    tags=["operations"],
    responses={503: {"description": "The database does not answer", "content": JSON_OBJECT}},
)
def health(request: Request, response: Response) -> Json:
    """Liveness and readiness: the database answers; how the outbox and workers are doing."""
    try:
        state = operations.outbox_health(runtime_of(request))
    except SQLAlchemyError:
        response.status_code = 503
        return {"status": "unavailable", "database": "unreachable", "version": __version__}
    return {
        "status": "ok",
        "version": __version__,
        "database": "ok",
        "workers_alive": state.workers_alive,
        "queued": state.by_state["queued"] + state.by_state["retrying"],
        "oldest_queued_age_seconds": round(state.oldest_queued_age_seconds, 1),
    }


class _OutboxCollector:
    """Reads the outbox's numbers from the database at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Any:
        state = operations.outbox_health(self.runtime)
        messages = GaugeMetricFamily(
            "docmail_messages", "Outbox messages by state", labels=["state"]
        )
        for name, count in state.by_state.items():
            messages.add_metric([name], count)
        yield messages
        attempts = CounterMetricFamily(
            "docmail_delivery_attempts", "Delivery attempts by outcome", labels=["outcome"]
        )
        for outcome, count in state.attempts_by_outcome.items():
            attempts.add_metric([outcome], count)
        yield attempts
        yield CounterMetricFamily(
            "docmail_retries", "Attempts that ended in a retry", value=state.retry_attempts
        )
        yield GaugeMetricFamily(
            "docmail_oldest_queued_age_seconds",
            "Age of the oldest message waiting to be sent",
            value=state.oldest_queued_age_seconds,
        )
        yield GaugeMetricFamily(
            "docmail_workers_alive", "Workers seen in the last minute", value=state.workers_alive
        )
        yield GaugeMetricFamily(
            "docmail_accounts_paused", "Mail accounts paused", value=state.accounts_paused
        )


@public.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus metrics; enabled by DOCMAIL_METRICS_TOKEN, sent as a bearer token."""
    runtime = runtime_of(request)
    expected = runtime.settings.metrics_token
    if not expected:
        raise NotFound("metrics are off; set DOCMAIL_METRICS_TOKEN to turn them on")
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthenticationRequired("metrics need 'Authorization: Bearer <DOCMAIL_METRICS_TOKEN>'")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_OutboxCollector(runtime))
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")
