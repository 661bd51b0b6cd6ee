#!/usr/bin/env bash
# Install the newest versions that pyproject.toml allows (ignoring the lock) into a
# throwaway venv and run the unit tests there. A failure here is drift: a new
# release of a dependency changes what docmail does (Babel's locale data once
# changed how Colombian pesos print). Users are safe until the lock moves, so run
# this before refreshing the lock (scripts/lock.sh --upgrade) and now and then
# (e.g. monthly) to see drift before users do. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --upgrade --upgrade-strategy eager ".[test]"
echo "== newest allowed versions of the libraries docmail's behaviour rests on"
"$tmp/venv/bin/python" -m pip list --format=freeze 2>/dev/null \
  | grep -iE '^(babel|jinja2|sqlalchemy|alembic|fastapi|pydantic|weasyprint|email-validator|cryptography|authlib)=' \
  || true
# Run from a copy of the tests so the installed wheel, not the source tree, is tested.
cp -r tests pyproject.toml "$tmp/"
cd "$tmp"
exec "$tmp/venv/bin/python" -m pytest -p no:cacheprovider -q tests/unit "$@"
