"""``docmail tokens create|list|revoke`` run in-process with CliRunner on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from docmail.bootstrap import build_runtime
from docmail.cli.main import cli
from docmail.config import Settings
from docmail.errors import AuthenticationRequired
from docmail.services.runtime import Role, Runtime
from docmail.services.tokens import authenticate_token


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    for name in ("DOCMAIL_DATABASE_URL", "DOCMAIL_TOKEN", "DOCMAIL_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCMAIL_DATA_DIR", str(tmp_path / "data"))
    assert run("init", "--admin-password", "s3cret-pass").exit_code == 0
    rt = build_runtime(Settings.from_env())
    yield rt
    rt.engine.dispose()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_create_prints_a_working_token_on_its_last_line_and_list_shows_its_prefix(
    runtime: Runtime,
) -> None:
    created = run("tokens", "create", "--name", "erp", "--role", "viewer")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    actor = authenticate_token(runtime, token)
    assert (actor.role, actor.label) == (Role.VIEWER, "token:erp")

    listed = run("tokens", "list")
    assert listed.exit_code == 0, listed.output
    line = next(x for x in listed.stdout.splitlines() if " erp " in x)
    assert token[:11] in line and "viewer" in line and "cli" in line
    assert token not in listed.stdout
    assert "2 token(s)" in listed.stdout  # the one from init, and this one


def test_revoke_makes_the_token_fail_and_an_unknown_id_is_one_error_line(
    runtime: Runtime,
) -> None:
    token = run("tokens", "create", "--name", "erp").stdout.strip().splitlines()[-1]
    revoked = run("tokens", "revoke", "2")
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    with pytest.raises(AuthenticationRequired, match="revoked"):
        authenticate_token(runtime, token)
    line = next(x for x in run("tokens", "list").stdout.splitlines() if " erp " in x)
    today = runtime.clock().strftime("%Y-%m-%d")
    assert line.count(today) == 2  # created and revoked today; never used, no expiry

    missing = run("tokens", "revoke", "99")
    assert missing.exit_code == 2
    assert missing.stderr.strip() == "error: API token 99 not found (field: token_id)"


def test_a_sender_token_cannot_create_an_admin_token_and_a_bad_expiry_is_refused(
    runtime: Runtime,
) -> None:
    sender = run("tokens", "create", "--name", "s", "--role", "sender").stdout.split()[-1]
    higher = run("tokens", "create", "--name", "x", "--role", "admin", "--token", sender)
    assert higher.exit_code == 2 and "higher than your own" in higher.stderr
    late = run("tokens", "create", "--name", "x", "--expires", "2001-01-01")
    assert late.exit_code == 2 and "(field: expires_at)" in late.stderr
    nonsense = run("tokens", "create", "--name", "x", "--expires", "pronto")
    assert nonsense.exit_code == 2 and "(field: expires)" in nonsense.stderr
