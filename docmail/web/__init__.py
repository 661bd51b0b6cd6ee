"""The web application: server-rendered pages (Jinja2 + HTMX) for people at the counter."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")


def install_web(app: FastAPI) -> None:
    """Add the pages and their static files to the API application."""
    from docmail.web import (
        batch,
        members_pages,
        oauth_pages,
        pages_auth,
        pages_documents,
        pages_log,
        send_dialog,
        settings_content,
        settings_pages,
        settings_tokens,
    )

    for module in (
        members_pages,
        oauth_pages,
        pages_auth,
        pages_documents,
        send_dialog,
        batch,
        pages_log,
        settings_pages,
        settings_content,
        settings_tokens,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
