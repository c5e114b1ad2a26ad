#!/usr/bin/env bash
# Installs the Kubernetes control plane the tests run against, from package registries
# only, into a cache outside the clone:
#   ${DEVENV_CACHE_DIR:-$HOME/.cache/devenv-scheduler}/kube-<version>/bin/
#     {kube-apiserver,etcd,kube-controller-manager,kube-scheduler,kwok}
# - kube-apiserver, kube-controller-manager, kube-scheduler: built once with `go build`
#   from the Go module proxy (one module, so the last two reuse most of the first's build);
# - kwok (sigs.k8s.io/kwok, the Kubernetes project's node simulator): `go install` at
#   KWOK_VERSION from the Go module proxy;
# - etcd: built from the Go module proxy at the version Kubernetes itself pins. Not
#   Debian's (3.4.23): the apiserver serves watch streams, which kwok's client asks for,
#   only from an etcd that answers progress requests (3.4.31, 3.5.13 or later).
# Idempotent: once both are in place a second run returns at once. A fresh machine needs
# several minutes (2 cores); later runs reuse the Go module and build caches too.
#
# KUBE_APISERVER_PATH / ETCD_PATH / KUBE_CONTROLLER_MANAGER_PATH / KUBE_SCHEDULER_PATH /
# KWOK_PATH skip that binary (test/support/kube.ts and controllers.ts read the same variables).
set -euo pipefail

KUBE_VERSION="1.34.4"
# The version k8s.io/kubernetes v$KUBE_VERSION requires in its go.mod.
ETCD_VERSION="3.6.4"
KWOK_VERSION="0.8.0"

CACHE_DIR="${DEVENV_CACHE_DIR:-$HOME/.cache/devenv-scheduler}"
KUBE_DIR="$CACHE_DIR/kube-$KUBE_VERSION"
BIN="$KUBE_DIR/bin"
SRC="$KUBE_DIR/src"

say() { echo "[setup-kube] $*"; }

have_apiserver() {
  [[ -n "${KUBE_APISERVER_PATH:-}" ]] && return 0
  [[ -x "$BIN/kube-apiserver" ]] && "$BIN/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes v$KUBE_VERSION"
}
have_kube_binary() { # name, override variable
  [[ -n "${!2:-}" ]] && return 0
  [[ -x "$BIN/$1" ]] && "$BIN/$1" --version 2>/dev/null | grep -qx "Kubernetes v$KUBE_VERSION"
}
have_kwok() {
  [[ -n "${KWOK_PATH:-}" ]] && return 0
  [[ -x "$BIN/kwok" ]] && "$BIN/kwok" --version 2>/dev/null | grep -q "v$KWOK_VERSION"
}
have_all() {
  have_apiserver && have_etcd && have_kube_binary kube-controller-manager KUBE_CONTROLLER_MANAGER_PATH &&
    have_kube_binary kube-scheduler KUBE_SCHEDULER_PATH && have_kwok
}
have_etcd() {
  [[ -n "${ETCD_PATH:-}" ]] && return 0
  [[ -x "$BIN/etcd" && ! -L "$BIN/etcd" ]] && "$BIN/etcd" --version 2>/dev/null | grep -qx "etcd Version: $ETCD_VERSION"
}

mkdir -p "$BIN"

if have_all; then
  say "kube-apiserver, kube-controller-manager, kube-scheduler v$KUBE_VERSION, kwok v$KWOK_VERSION and $("${ETCD_PATH:-$BIN/etcd}" --version | head -1) in $BIN"
  exit 0
fi

command -v go >/dev/null || { say "error: Go is needed to build kube-apiserver (go 1.24 or newer)"; exit 1; }
mkdir -p "$SRC"

# A module that requires k8s.io/kubernetes at the pinned version and, as the Kubernetes
# repository does with its staging directory, points every k8s.io/* staging module at
# its published v0.<minor>.<patch> release.
say "resolving k8s.io/kubernetes v$KUBE_VERSION from the Go module proxy"
UPSTREAM_MOD="$(cd "$SRC" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" \
  | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
[[ -f "$UPSTREAM_MOD" ]] || { say "error: could not download the go.mod of k8s.io/kubernetes v$KUBE_VERSION"; exit 1; }
STAGING_VERSION="v0.${KUBE_VERSION#1.}"
{
  echo "module devenv-scheduler/kube-tools"
  echo
  grep -E '^(go|godebug) ' "$UPSTREAM_MOD"
  echo
  echo "require ("
  echo "	k8s.io/kubernetes v$KUBE_VERSION"
  echo "	go.etcd.io/etcd/server/v3 v$ETCD_VERSION"
  echo ")"
  echo
  echo "replace ("
  sed -n 's|^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*$|\1|p' "$UPSTREAM_MOD" \
    | sort -u | while read -r module; do echo "	$module => $module $STAGING_VERSION"; done
  echo ")"
} > "$SRC/go.mod.new"
mv "$SRC/go.mod.new" "$SRC/go.mod"

# etcd's own main package lives in the repository root module, which is not meant to be
# depended on; etcdmain.Main is the same entry point.
cat > "$SRC/etcd.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF

# -mod=mod lets go fill in go.sum from the proxy (checked against the checksum database
# as configured on this machine). -p 2 keeps the build within a 2-core machine; the
# version is stamped the way the Kubernetes build does, so /version tells the truth.
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
VERSION_PKG="k8s.io/component-base/version"
KUBE_LDFLAGS="-s -w -X $VERSION_PKG.gitVersion=v$KUBE_VERSION -X $VERSION_PKG.gitMajor=${KUBE_VERSION%%.*}"
KUBE_LDFLAGS+=" -X $VERSION_PKG.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) -X $VERSION_PKG.gitTreeState=clean"
KUBE_LDFLAGS+=" -X k8s.io/client-go/pkg/version.gitVersion=v$KUBE_VERSION"

cd "$SRC"
if ! have_etcd; then
  say "building etcd v$ETCD_VERSION (go build; about a minute, most of it shared with kube-apiserver's build)"
  start=$SECONDS
  go build -p 2 -trimpath -ldflags='-s -w' -o "$BIN/etcd.tmp" .
  rm -f "$BIN/etcd"
  mv "$BIN/etcd.tmp" "$BIN/etcd"
  say "etcd built in $((SECONDS - start))s: $("$BIN/etcd" --version | head -1)"
fi
if ! have_apiserver; then
  say "building kube-apiserver v$KUBE_VERSION (go build; about 7 minutes on a fresh 2-core machine, seconds when the Go build cache is warm)"
  start=$SECONDS
  go build -p 2 -trimpath -ldflags="$KUBE_LDFLAGS" -o "$BIN/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
  say "kube-apiserver built in $((SECONDS - start))s: $("$BIN/kube-apiserver" --version)"
fi
for component in kube-controller-manager kube-scheduler; do
  override="$(echo "$component" | tr 'a-z-' 'A-Z_')_PATH"
  have_kube_binary "$component" "$override" && continue
  say "building $component v$KUBE_VERSION (go build; a few minutes, most of it shared with kube-apiserver's build)"
  start=$SECONDS
  go build -p 2 -trimpath -ldflags="$KUBE_LDFLAGS" -o "$BIN/$component.tmp" "k8s.io/kubernetes/cmd/$component"
  mv "$BIN/$component.tmp" "$BIN/$component"
  say "$component built in $((SECONDS - start))s"
done
if ! have_kwok; then
  say "building kwok v$KWOK_VERSION (go install from the Go module proxy; a few minutes)"
  start=$SECONDS
  # A module of its own, outside this one: -mod=mod does not apply to `go install pkg@version`.
  (cd / && GOFLAGS= GOBIN="$BIN" go install -trimpath -ldflags='-s -w' "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION")
  say "kwok built in $((SECONDS - start))s: $("$BIN/kwok" --version 2>&1 | head -1)"
fi
say "done: $BIN"
