"""Spanish and Portuguese for sign-in limits and outbound connection pages, as (English, Spanish,
Portuguese) rows.

Kept apart from :mod:`docmail.web.catalog` so each area's sentences stay together.
"""

from __future__ import annotations

ROWS: tuple[tuple[str, str, str], ...] = ()
