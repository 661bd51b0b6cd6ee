"""Path and query parameters shared by the API routes.

Ids are bounded to what a database row id can be: a larger number names no row, and
refusing it here gives a 422 naming the parameter instead of a failure in the query.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from docmail.services.inputs import MAX_ID

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Offset = Annotated[int, Query(le=MAX_ID)]  # negative offsets still count as 0
