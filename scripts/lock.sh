#!/usr/bin/env bash
# Refresh requirements/lock.txt, the committed versions of every dependency: the
# core, every extra (postgres, ses, test, bench) and the build backend. The demo,
# the tests and CI install through it (scripts/_venv.sh), so a fresh machine gets
# the versions the suite was green with.
#   scripts/lock.sh                         add what pyproject.toml gained, keep the rest
#   scripts/lock.sh --upgrade               move everything to the newest allowed versions
#   scripts/lock.sh --upgrade-package babel move one package
# Then run scripts/test.sh before committing the new lock.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
tool="$(mktemp -d)"
trap 'rm -rf "$tool"' EXIT
python3 -m venv "$tool/venv"
"$tool/venv/bin/python" -m pip install --quiet 'uv>=0.5'
"$tool/venv/bin/uv" pip compile pyproject.toml requirements/build.in \
  --all-extras --universal --python-version 3.11 \
  --no-header --annotation-style line \
  -o requirements/lock.txt "$@"
echo "requirements/lock.txt refreshed; now run scripts/test.sh"
