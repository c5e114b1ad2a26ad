#!/usr/bin/env bash
# Installs kustomize, which renders k8s/ for test/manifests.test.ts (and for you:
# `kustomize build k8s/`), from the Go module proxy into a cache outside the clone:
#   ${DEVENV_CACHE_DIR:-$HOME/.cache/devenv-scheduler}/kustomize-<version>/bin/kustomize
# Built once with `go install sigs.k8s.io/kustomize/kustomize/v5@v<version>`; idempotent:
# once the binary reports the pinned version a second run returns at once.
#
# KUSTOMIZE_PATH skips the build (test/manifests.test.ts reads the same variable).
set -euo pipefail

KUSTOMIZE_VERSION="5.8.1"

CACHE_DIR="${DEVENV_CACHE_DIR:-$HOME/.cache/devenv-scheduler}"
BIN="$CACHE_DIR/kustomize-$KUSTOMIZE_VERSION/bin"

say() { echo "[setup-kustomize] $*"; }

if [[ -n "${KUSTOMIZE_PATH:-}" ]]; then
  say "using KUSTOMIZE_PATH=$KUSTOMIZE_PATH"
  exit 0
fi
if [[ -x "$BIN/kustomize" ]] && "$BIN/kustomize" version 2>/dev/null | grep -q "v$KUSTOMIZE_VERSION"; then
  say "kustomize v$KUSTOMIZE_VERSION already in $BIN"
  exit 0
fi

command -v go >/dev/null || { say "error: Go is needed to build kustomize (go 1.24 or newer)"; exit 1; }
mkdir -p "$BIN"

# As in setup-kube.sh: -mod=mod lets go resolve from the proxy (checked against the
# checksum database as configured on this machine), -p 2 fits a 2-core machine, and the
# version is stamped the way kustomize's own release build does, so `kustomize version`
# tells the truth (a plain `go install` would print "(devel)").
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
say "building kustomize v$KUSTOMIZE_VERSION (go install from the Go module proxy; about a minute on a fresh 2-core machine)"
start=$SECONDS
TMP_BIN="$(mktemp -d "$BIN/.build.XXXXXX")"
trap 'rm -rf "$TMP_BIN"' EXIT
GOBIN="$TMP_BIN" go install -p 2 -trimpath \
  -ldflags="-s -w -X sigs.k8s.io/kustomize/api/provenance.version=v$KUSTOMIZE_VERSION" \
  "sigs.k8s.io/kustomize/kustomize/v5@v$KUSTOMIZE_VERSION"
mv "$TMP_BIN/kustomize" "$BIN/kustomize"
say "kustomize built in $((SECONDS - start))s: $("$BIN/kustomize" version)"
