#!/usr/bin/env bash
# Installs helm, which renders charts/devenv-scheduler for test/helm.test.ts (and for you:
# `helm template charts/devenv-scheduler`), from the Go module proxy into a cache outside
# the clone:
#   ${DEVENV_CACHE_DIR:-$HOME/.cache/devenv-scheduler}/helm-<version>/bin/helm
# Built once with `go install helm.sh/helm/v4/cmd/helm@v<version>`; idempotent: once the
# binary reports the pinned version a second run returns at once.
#
# HELM_PATH skips the build (test/helm.test.ts reads the same variable).
set -euo pipefail

HELM_VERSION="4.3.1"

CACHE_DIR="${DEVENV_CACHE_DIR:-$HOME/.cache/devenv-scheduler}"
BIN="$CACHE_DIR/helm-$HELM_VERSION/bin"

say() { echo "[setup-helm] $*"; }

if [[ -n "${HELM_PATH:-}" ]]; then
  say "using HELM_PATH=$HELM_PATH"
  exit 0
fi
if [[ -x "$BIN/helm" ]] && "$BIN/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "v$HELM_VERSION"; then
  say "helm v$HELM_VERSION already in $BIN"
  exit 0
fi

command -v go >/dev/null || { say "error: Go is needed to build helm (go 1.26 or newer)"; exit 1; }
mkdir -p "$BIN"

# As in setup-kustomize.sh: -mod=mod lets go resolve from the proxy (checked against the
# checksum database as configured on this machine), -p 2 fits a 2-core machine, and the
# version is stamped (and cgo left off) the way helm's own Makefile builds a tagged
# release, so `helm version` tells the truth (a plain `go install` would print "v4.3").
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
say "building helm v$HELM_VERSION (go install from the Go module proxy; about 5 minutes of CPU time, once)"
start=$SECONDS
TMP_BIN="$(mktemp -d "$BIN/.build.XXXXXX")"
trap 'rm -rf "$TMP_BIN"' EXIT
GOBIN="$TMP_BIN" go install -p 2 -trimpath \
  -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
  "helm.sh/helm/v4/cmd/helm@v$HELM_VERSION"
mv "$TMP_BIN/helm" "$BIN/helm"
say "helm built in $((SECONDS - start))s: $("$BIN/helm" version --short)"
