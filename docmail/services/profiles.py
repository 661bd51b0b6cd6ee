"""Country profiles: how each country's e-documents are packaged in the email.

Called at the end of compose with the composition about to be shown or sent;
a profile may rename attachments, bundle them, or set the subject a regulator
prescribes. Without a profile for the company's country, nothing changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t

if TYPE_CHECKING:
    from docmail.services.compose import Composition


def apply_country_profile(
    session: Session, company: t.Company, docs: list[t.Document], composition: Composition
) -> None:
    """Adjust ``composition`` in place for ``company.country`` (no profile yet: unchanged)."""
    return None
