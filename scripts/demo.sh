#!/usr/bin/env bash
# Set up docmail and start it on its embedded default: SQLite under ./docmail-data,
# demo data, and a built-in mail catcher on 127.0.0.1:2525. Ctrl-C stops it.
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/docmail serve --demo "$@"
