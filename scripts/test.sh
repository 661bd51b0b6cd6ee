#!/usr/bin/env bash
# Set up docmail and run every check: lint, types, and the whole test suite
# (unit, integration against real SQLite/PostgreSQL/SMTP, acceptance).
DOCMAIL_EXTRAS="${DOCMAIL_EXTRAS-test}"
source "$(dirname "$0")/_venv.sh"
echo "== ruff"; .venv/bin/ruff check docmail tests bench
echo "== mypy"; .venv/bin/mypy docmail
echo "== pytest"; exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
