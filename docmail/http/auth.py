"""API authentication: ``Authorization: Bearer <token>``, one token per company."""

from __future__ import annotations

from fastapi import Request

from docmail.errors import AuthenticationRequired
from docmail.services.runtime import Actor, Runtime
from docmail.services.tokens import authenticate_token


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def current_actor(request: Request) -> Actor:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationRequired(
            "missing API token; send 'Authorization: Bearer <token>'", field="authorization"
        )
    return authenticate_token(runtime_of(request), token.strip())
