"""Durable automation triggers, written in the same transaction as the document's change.

A document created, or moved to a new state, may concern an auto-send rule or a
named run. Instead of evaluating that after the commit in the request thread
(where a crash or an error lost the automatic email), the change writes an
``AutomationEvent`` row with the document; workers consume them
(``docmail.worker.events``). A document of a type no rule concerns, outside any
run, writes no event: the common case of a bulk import stays one INSERT per table.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.services.runtime import Actor


def concerned_types(session: Session, company_id: int, doc_types: Iterable[str]) -> set[str]:
    """The document types among ``doc_types`` that an auto-send rule of the company names."""
    wanted = set(doc_types)
    if not wanted:
        return set()
    rows = session.scalars(
        select(t.AutomationRule.doc_type)
        .where(t.AutomationRule.company_id == company_id, t.AutomationRule.doc_type.in_(wanted))
        .distinct()
    )
    return set(rows)


def record_event(
    session: Session,
    actor: Actor,
    document_id: int,
    doc_type: str,
    event: str,
    run: str | None = None,
    *,
    concerned: set[str] | None = None,
) -> bool:
    """Add the event for a document's change to ``session``; False when nothing could care.

    ``concerned``: the result of :func:`concerned_types` when the caller records many
    events at once (one query instead of one per document).
    """
    if concerned is None:
        concerned = concerned_types(session, actor.company_id, [doc_type])
    if not run and doc_type not in concerned:
        return False
    session.add(
        t.AutomationEvent(
            company_id=actor.company_id,
            document_id=document_id,
            event=event,
            run=run,
            created_by=actor.label,
        )
    )
    return True
