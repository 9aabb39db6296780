#!/usr/bin/env bash
# The Python side only, no root: create the venv in $VENV (default .venv) and install the
# testbed with its dev extras, again only when pyproject.toml changed (stamp file).
# Enough for `make unit`; scripts/setup.sh calls it after the system packages.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

say() { printf '\033[1m[venv]\033[0m %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  say "creating Python venv in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  say "installing the testbed and its Python dependencies"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
  "$VENV/bin/pip" install -q -e '.[dev]'
  rm -f "$VENV"/.installed-*; touch "$stamp"
fi
