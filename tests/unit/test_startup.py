"""What a long-running process does once it is set up."""

from __future__ import annotations

import gc

from docmail.bootstrap import settle_after_startup


def test_objects_alive_at_startup_are_no_longer_walked_by_garbage_collections() -> None:
    loaded_at_startup = [{"locale": "es_MX"} for _ in range(1000)]
    frozen_before = gc.get_freeze_count()
    settle_after_startup()
    try:
        assert gc.get_freeze_count() >= frozen_before + 1000
        tracked = gc.get_objects()
        assert not any(o is loaded_at_startup for o in tracked), "out of every generation"
        made_later = [{"document": 1}]
        assert any(o is made_later for o in gc.get_objects()), "later ones as usual"
    finally:
        gc.unfreeze()  # this test process is not a server
