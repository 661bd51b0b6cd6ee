# ruff: noqa: E501 - translated sentences are kept whole on one line
"""Spanish and Portuguese for members, invitations and OAuth pages, as (English, Spanish,
Portuguese) rows.

Kept apart from :mod:`docmail.web.catalog` so each area's sentences stay together.
"""

from __future__ import annotations

ROWS: tuple[tuple[str, str, str], ...] = (
    (
        "The server or its security changed, so the stored password was forgotten: type it again.",
        "Cambió el servidor o su seguridad, así que se olvidó la contraseña guardada: escríbala de nuevo.",
        "O servidor ou sua segurança mudou, então a senha guardada foi esquecida: digite-a de novo.",
    ),
)
