"""One JSON error shape for every failure: ``{"error": ..., "field": ...}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from docmail.adapters.db.engine import is_storage_full
from docmail.errors import DocmailError

log = logging.getLogger("docmail.http")


class ErrorDetail(BaseModel):
    field: str
    error: str


class ErrorBody(BaseModel):
    """The one error shape; ``details`` lists every invalid field of a 422."""

    error: str
    field: str | None
    details: list[ErrorDetail] | None = None
    line: int | None = None  # template errors: the line of the first problem
    problems: list[dict[str, Any]] | None = None  # template errors: every problem


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Declared on every API operation so the OpenAPI documents what clients can get back.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("The body cannot be read (e.g. malformed multipart)"),
    401: _error("Missing or unknown API token"),
    403: _error("The token's role does not allow this"),
    404: _error("The object does not exist for this company"),
    409: _error("The object's current state does not allow this"),
    413: _error("The body or an attachment is larger than the limit"),
    422: _error("Invalid input; `field` names the field and the message its value"),
}


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _error_field(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        return "body"  # FastAPI puts the character position where a field would be
    return _field_path(tuple(error.get("loc", ())))


def _describe(error: dict[str, Any]) -> str:
    field = _error_field(error)
    if error.get("type") == "json_invalid":
        loc = tuple(error.get("loc", ()))
        where = f" (error at character {loc[-1]})" if len(loc) > 1 else ""
        return f"body is not valid JSON{where}: {error.get('msg', '')}"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    value = error.get("input")
    shown = repr(value) if isinstance(value, str | int | float | bool) else None
    if error.get("type") == "missing":
        return f"{field} is required"
    if shown is not None and len(shown) < 200:
        return f"{field} {shown}: {message}"
    return f"{field}: {message}"


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first = errors[0] if errors else {}
    body = {
        "error": _describe(first) if first else "invalid request",
        "field": _error_field(first) if first else None,
        "details": [{"field": _error_field(e), "error": _describe(e)} for e in errors[:20]],
    }
    return JSONResponse(body, status_code=422)


async def _docmail_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DocmailError)
    if exc.status_code >= 500:
        log.error("request %s failed: %s", request.url.path, exc.message)
    return JSONResponse(exc.to_dict(), status_code=exc.status_code)


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        {"error": str(exc.detail), "field": getattr(exc, "field", None)},
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s", request.url.path)
    return JSONResponse(
        {"error": "internal error; the server log has the details", "field": None}, status_code=500
    )


async def _database_handler(request: Request, exc: Exception) -> JSONResponse:
    """A full disk is 507 with what failed; the transaction was rolled back, nothing was saved."""
    if not is_storage_full(exc):
        return await _unexpected_handler(request, exc)
    reason = getattr(exc, "orig", exc)  # not the statement and its parameters
    log.error("request %s failed: the database's disk is full (%s)", request.url.path, reason)
    message = (
        "the server's disk is full: the database could not store this request (database or "
        "disk is full), so nothing was saved; free disk space on the server and try again"
    )
    return JSONResponse({"error": message, "field": None}, status_code=507)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(DocmailError, _docmail_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(OperationalError, _database_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
