"""Spanish and Portuguese for members, invitations and OAuth pages, as (English, Spanish,
Portuguese) rows.

Kept apart from :mod:`docmail.web.catalog` so each area's sentences stay together.
"""

from __future__ import annotations

ROWS: tuple[tuple[str, str, str], ...] = ()
