"""A batch is expanded chunk by chunk; the chunk that takes the last documents finishes it."""

from __future__ import annotations

from collections import Counter

from docmail.adapters.db import tables as t
from docmail.services.batches import expand_batch, expand_chunk, start_batch
from docmail.services.documents import create_document
from docmail.services.inputs import BatchIn, DocumentIn
from docmail.services.runtime import Runtime
from tests.support.outbox import company_with_account, states


def _batch_of(runtime: Runtime, count: int, mode: str = "per_document") -> int:
    actor, _ = company_with_account(runtime, 2525)
    ids = [
        create_document(
            runtime,
            actor,
            DocumentIn(type="invoice", number=f"B-{i}", party_code="P1", total="1", currency="MXN"),
        ).document.id
        for i in range(count)
    ]
    batch_id, _ = start_batch(runtime, actor, BatchIn(document_ids=ids, mode=mode))  # type: ignore[arg-type]
    return batch_id


def _progress(runtime: Runtime, batch_id: int) -> tuple[str, int, int]:
    with runtime.session() as session:
        batch = session.get_one(t.Batch, batch_id)
        return batch.state, batch.processed, batch.queued


def test_a_batch_smaller_than_a_chunk_is_queued_and_finished_in_one_call(runtime: Runtime) -> None:
    batch_id = _batch_of(runtime, 3)

    assert expand_chunk(runtime, batch_id, chunk=10) is False, "nothing left after it"

    assert _progress(runtime, batch_id) == ("done", 3, 3)
    assert states(runtime) == Counter({"queued": 3})


def test_a_larger_batch_takes_one_call_per_chunk_and_the_short_last_one_finishes_it(
    runtime: Runtime,
) -> None:
    batch_id = _batch_of(runtime, 5)

    assert expand_chunk(runtime, batch_id, chunk=2) is True
    assert _progress(runtime, batch_id) == ("expanding", 2, 2)
    assert expand_chunk(runtime, batch_id, chunk=2) is True
    assert expand_chunk(runtime, batch_id, chunk=2) is False

    assert _progress(runtime, batch_id) == ("done", 5, 5)
    assert states(runtime) == Counter({"queued": 5})


def test_when_the_last_chunk_is_full_one_more_call_finds_nothing_and_finishes(
    runtime: Runtime,
) -> None:
    batch_id = _batch_of(runtime, 4)

    assert expand_chunk(runtime, batch_id, chunk=2) is True
    assert expand_chunk(runtime, batch_id, chunk=2) is True
    assert _progress(runtime, batch_id) == ("expanding", 4, 4)
    assert expand_chunk(runtime, batch_id, chunk=2) is False

    assert _progress(runtime, batch_id) == ("done", 4, 4)
    assert states(runtime) == Counter({"queued": 4}), "nothing queued twice"


def test_expanding_a_whole_batch_reports_progress_until_done(runtime: Runtime) -> None:
    batch_id = _batch_of(runtime, 4, mode="per_party")
    seen: list[tuple[int, int]] = []

    expand_batch(runtime, batch_id, progress=lambda done, total: seen.append((done, total)))

    assert seen == [(4, 4)], "one chunk, and its progress said once"
    assert _progress(runtime, batch_id) == ("done", 4, 4), "all four documents queued"
    assert states(runtime) == Counter({"queued": 1}), "in one email for their party"


def test_a_batch_of_unknown_documents_is_finished_at_once_each_one_failed(
    runtime: Runtime,
) -> None:
    actor, _ = company_with_account(runtime, 2525)
    batch_id, _ = start_batch(runtime, actor, BatchIn(document_ids=[999_999]))

    assert expand_chunk(runtime, batch_id) is False

    with runtime.session() as session:
        batch = session.get_one(t.Batch, batch_id)
        assert (batch.state, batch.processed, batch.failed) == ("done", 1, 1)
