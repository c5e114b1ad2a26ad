#!/usr/bin/env bash
# Installs moto's standalone server (PyPI `moto[server]`), the AWS stand-in the tests point
# the AWS SDK at, into a virtualenv in the same cache as the Temporal binaries, so later
# runs (and CI on the same machine) reuse it. Idempotent: a second run checks the version
# stamp and returns at once. Tests find it at $MOTO_SERVER_PATH or $VENV/bin/moto_server.
set -euo pipefail

CACHE_DIR="${DEVENV_CACHE_DIR:-$HOME/.cache/devenv-scheduler}"
MOTO_VERSION="5.2.5"
VENV="$CACHE_DIR/moto-venv"
STAMP="$VENV/.devenv-versions"
WANTED="moto[server]==$MOTO_VERSION"

say() { echo "[setup-moto] $*"; }

mkdir -p "$CACHE_DIR"
if [[ -n "${MOTO_SERVER_PATH:-}" ]]; then
  say "using MOTO_SERVER_PATH=$MOTO_SERVER_PATH"
elif [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANTED" && -x "$VENV/bin/moto_server" ]]; then
  say "moto $MOTO_VERSION already in $VENV"
else
  say "installing $WANTED into $VENV (from PyPI; about 300 MB, once)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$WANTED"
  echo "$WANTED" > "$STAMP"
  say "installed: moto $("$VENV/bin/python" -c 'import moto; print(moto.__version__)') at $VENV/bin/moto_server"
fi
