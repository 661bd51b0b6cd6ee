# Sourced by the other scripts: create .venv with Python 3.11+ and install docmail
# into it through the committed lock (requirements/lock.txt, refreshed by
# scripts/lock.sh). DOCMAIL_EXTRAS picks the extras: none for the demo (only what
# running docmail needs), "test" for the test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "docmail needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
extras="${DOCMAIL_EXTRAS-}"
# The stamp holds the lock's and pyproject's digest and each set of extras installed
# with them; a changed lock or pyproject starts the list again.
digest="$(cat pyproject.toml requirements/lock.txt | sha256sum | cut -c1-16)"
stamp=".venv/.docmail-installed"
if [ -f "$stamp" ] && ! grep -q "^$digest " "$stamp"; then
  rm -f "$stamp"
fi
if [ ! -f "$stamp" ] || { [ -n "$extras" ] && ! grep -qxF "$digest $extras" "$stamp"; }; then
  # PIP_CONSTRAINT also reaches pip's isolated build environment, so the build
  # backend comes from the lock too.
  PIP_CONSTRAINT="$ROOT/requirements/lock.txt" .venv/bin/python -m pip install --quiet \
    -e ".${extras:+[$extras]}"
  echo "$digest $extras" >> "$stamp"
fi
