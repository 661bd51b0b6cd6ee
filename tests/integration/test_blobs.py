"""The content-addressed blob store on SQLite and PostgreSQL (PostgreSQL reads bytea as binary)."""

from __future__ import annotations

import hashlib

import pytest

from docmail.errors import ValidationError
from docmail.services.blobs import get_blob, get_blobs, put_blobs
from docmail.services.runtime import Runtime

PDF = bytes(range(256)) * 240  # every byte value, ~60 KB
XML = "<cfdi:Comprobante Total='1160.00'>ñ</cfdi:Comprobante>".encode()


def test_contents_come_back_byte_for_byte_and_are_stored_once(runtime: Runtime) -> None:
    with runtime.session() as session:
        digests = put_blobs(session, [PDF, XML, PDF])
    assert digests == [hashlib.sha256(d).hexdigest() for d in (PDF, XML, PDF)]

    with runtime.session() as session:
        assert get_blobs(session, digests) == {digests[0]: PDF, digests[1]: XML}
        assert get_blob(session, digests[1]) == XML
        assert get_blobs(session, []) == {}


def test_a_missing_content_is_an_error_that_names_it(runtime: Runtime) -> None:
    with runtime.session() as session:
        (stored,) = put_blobs(session, [XML])
    missing = "0" * 64

    with runtime.session() as session:
        with pytest.raises(ValidationError, match=f"attachment content {missing} is missing"):
            get_blobs(session, [stored, missing])
        with pytest.raises(ValidationError, match=missing):
            get_blob(session, missing)
