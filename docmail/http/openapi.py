"""Response declarations the routes share, so the OpenAPI says what they really send."""

from __future__ import annotations

from typing import Any

JSON_OBJECT = {"application/json": {"schema": {"type": "object"}}}


def binary(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """A 200 whose body is raw bytes of ``media_type`` (``*/*``: the stored file's own type)."""
    schema = {"type": "string", "format": "binary"}
    return {200: {"description": description, "content": {media_type: {"schema": schema}}}}


def also_200(description: str) -> dict[int | str, dict[str, Any]]:
    """An operation that answers 201/202 normally and 200 when it returns what exists already."""
    return {200: {"description": description, "content": JSON_OBJECT}}
