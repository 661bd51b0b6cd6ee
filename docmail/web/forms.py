"""Reading posted forms and turning validation failures into per-field messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from pydantic import ValidationError as PydanticError
from starlette.datastructures import FormData

from docmail.errors import DocmailError


async def posted_form(request: Request) -> FormData:
    return await request.form()


Posted = Annotated[FormData, Depends(posted_form)]


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional(form: FormData, name: str) -> str | None:
    return text(form, name) or None


def checked(form: FormData, name: str) -> bool:
    return form.get(name) in ("on", "true", "1")


def words(value: str) -> list[str]:
    """'finance, einvoice' -> ['finance', 'einvoice']."""
    return [w.strip().lower() for w in value.replace(";", ",").split(",") if w.strip()]


def field_errors(exc: PydanticError | DocmailError) -> dict[str, str]:
    if isinstance(exc, DocmailError):
        return {(exc.field or "form").split(".")[0]: exc.message}
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "form"
        errors.setdefault(name, str(error["msg"]).removeprefix("Value error, "))
    return errors
