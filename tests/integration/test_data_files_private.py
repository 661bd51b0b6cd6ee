"""The data directory and the SQLite files hold every company's data: only docmail reads them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from docmail.adapters.db.engine import make_engine
from docmail.bootstrap import build_runtime
from docmail.config import Settings
from docmail.services.companies import create_company
from tests.support.app import CREATED


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_its_wal_and_shm_files_and_the_data_directory_are_private(
    tmp_path: Path,
) -> None:
    os.umask(previous := os.umask(0o022))  # the usual umask, which made the files 0644 before
    try:
        data_dir = tmp_path / "new" / "data"
        settings = Settings(data_dir=data_dir, secret_keys=(Fernet.generate_key().decode(),))
        runtime = build_runtime(settings)
        CREATED.append(runtime)
        create_company(runtime, "ACME SA de CV")  # a write: WAL and SHM exist while open
        database = data_dir / "docmail.sqlite3"
        files = [database, data_dir / "docmail.sqlite3-wal", data_dir / "docmail.sqlite3-shm"]
        assert all(f.exists() for f in files)
        assert {f.name: oct(_mode(f)) for f in files} == {f.name: "0o600" for f in files}
        assert oct(_mode(data_dir)) == "0o700"
    finally:
        os.umask(previous)


def test_an_existing_world_readable_database_is_narrowed_when_opened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = data_dir / "docmail.sqlite3"
    database.touch(mode=0o644)
    database.chmod(0o644)
    settings = Settings(data_dir=data_dir, secret_keys=(Fernet.generate_key().decode(),))
    runtime = build_runtime(settings)
    CREATED.append(runtime)
    create_company(runtime, "ACME SA de CV")
    assert oct(_mode(database)) == "0o600"
    assert oct(_mode(data_dir / "docmail.sqlite3-wal")) == "0o600"


def test_an_in_memory_database_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for url in ("sqlite://", "sqlite:///:memory:"):
        make_engine(url).dispose()
    assert list(tmp_path.iterdir()) == []
