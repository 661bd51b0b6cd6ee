"""A feature used without its pip extra fails loudly, naming the command that installs it."""

from __future__ import annotations

import sys

import pytest

from docmail.adapters import ses
from docmail.adapters.db.engine import make_engine
from docmail.extras import FeatureNotInstalled, install_hint, installed, require


@pytest.fixture
def without_boto3_and_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes `import name` raise ImportError, as on a core install.
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.setitem(sys.modules, "psycopg", None)


def test_a_missing_extra_names_the_pip_command(without_boto3_and_psycopg: None) -> None:
    with pytest.raises(FeatureNotInstalled) as excinfo:
        require("ses", "account kind 'ses'", field="kind")
    assert excinfo.value.message == "account kind 'ses' needs `pip install 'docmail[ses]'`"
    assert excinfo.value.field == "kind"
    assert excinfo.value.status_code == 422
    assert not installed("ses")


def test_an_installed_extra_gives_its_module() -> None:
    assert require("postgres", "PostgreSQL").__name__ == "psycopg"
    assert installed("ses")
    assert install_hint("postgres") == "pip install 'docmail[postgres]'"


def test_an_ses_transport_without_boto3_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ses, "HAVE_BOTO3", False)
    monkeypatch.setitem(sys.modules, "boto3", None)
    settings = ses.SesSettings(region="us-east-1", access_key_id="AKIA", secret_access_key="s")
    with pytest.raises(FeatureNotInstalled, match=r"docmail\[ses\]"):
        ses.SesTransport(settings)


def test_a_postgresql_url_without_psycopg_names_the_extra(without_boto3_and_psycopg: None) -> None:
    with pytest.raises(FeatureNotInstalled) as excinfo:
        make_engine("postgresql://docmail@127.0.0.1/docmail")
    assert "pip install 'docmail[postgres]'" in excinfo.value.message
    assert excinfo.value.field == "DOCMAIL_DATABASE_URL"
