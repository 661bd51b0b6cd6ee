"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from docmail import __version__
from docmail.http.errors import ERROR_RESPONSES, install_error_handlers
from docmail.http.limits import BodySizeLimit
from docmail.http.routes import automation as automation_routes
from docmail.http.routes import (
    batches,
    documents,
    members,
    messages,
    oauth,
    operations,
    settings,
    tokens,
)
from docmail.http.routes import einvoices as einvoice_routes
from docmail.services.runtime import Runtime
from docmail.web import install_web

API_PREFIX = "/api/v1"


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="docmail",
        version=__version__,
        description="Email business documents to the people they concern.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    app.include_router(oauth.router, responses=ERROR_RESPONSES)  # first: accounts/needs-attention
    for router in (
        settings.router,
        batches.router,
        documents.router,
        messages.router,
        operations.router,
        automation_routes.router,
        members.router,
        tokens.router,
    ):
        app.include_router(router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    app.include_router(einvoice_routes.router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    app.include_router(operations.public)

    install_web(app)  # the pages for people (docmail.web); "/" below is only a fallback

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    app.add_middleware(BodySizeLimit, max_bytes=runtime.settings.max_request_bytes)
    return app
