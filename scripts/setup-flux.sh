#!/usr/bin/env bash
# Installs Flux's source-controller and kustomize-controller, which test/flux.test.ts runs
# against the test control plane, built once from the Go module proxy into a cache outside
# the clone:
#   ${DEVENV_CACHE_DIR:-$HOME/.cache/devenv-scheduler}/<controller>-<version>/bin/<controller>
# The versions are the Flux release of the vendored CRDs (test/fixtures/crds/README.md):
# kustomize-controller at the CRD's tag, source-controller as released with it.
# Idempotent: a second run finds both binaries and returns at once. On a fresh machine the
# two builds take about 13 minutes of CPU (source-controller, with its cloud and signing
# SDKs, about 9 of them); later builds reuse the Go module and build caches.
#
# `go install module@version` refuses these modules (their go.mod has replace directives),
# so each is built from a writable copy of its source as the proxy serves it. Each
# repository's api/ is a module of its own, left out of the controller's module zip: the
# copy uses that module's release at the same tag instead of the `./api` replace.
#
# SOURCE_CONTROLLER_PATH / KUSTOMIZE_CONTROLLER_PATH skip that build (test/support/flux.ts
# reads the same variables).
set -euo pipefail

SOURCE_CONTROLLER_VERSION="1.9.3"
KUSTOMIZE_CONTROLLER_VERSION="1.9.4"
# The module zips' hashes as the Go checksum database has them: a download that differs is
# refused even where GOSUMDB or GONOSUMDB are set otherwise on the machine.
SOURCE_CONTROLLER_SUM="h1:Zj1gfvK/2MFIm/K3vh5fSHoJBoggLKMuLWf5ZEmaF0w="
KUSTOMIZE_CONTROLLER_SUM="h1:VBnBMhnemqnE5Zca2AoG2gC4472MoiTmk9rdqvLoMcY="

CACHE_DIR="${DEVENV_CACHE_DIR:-$HOME/.cache/devenv-scheduler}"

say() { echo "[setup-flux] $*"; }

build_controller() { # name, version, expected module hash, override variable
  local name="$1" version="$2" sum="$3" override="$4"
  local bin="$CACHE_DIR/$name-$version/bin"
  if [[ -n "${!override:-}" ]]; then
    say "using $override=${!override}"
    return 0
  fi
  if [[ -x "$bin/$name" ]]; then
    say "$name v$version already in $bin"
    return 0
  fi
  command -v go > /dev/null || { say "error: Go is needed to build $name (go 1.26 or newer)"; return 1; }
  mkdir -p "$bin"

  say "building $name v$version (from the Go module proxy; several minutes on a fresh 2-core machine, once)"
  local start=$SECONDS tmp dir
  tmp="$(mktemp -d "$bin/.build.XXXXXX")"
  # shellcheck disable=SC2064 # expand now: $tmp is local and gone when the trap runs
  trap "rm -rf '$tmp'" EXIT
  local info dir got
  info="$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "github.com/fluxcd/$name@v$version")"
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p' <<< "$info")"
  got="$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",*$/\1/p' <<< "$info")"
  [[ -f "$dir/go.mod" ]] || { say "error: could not download github.com/fluxcd/$name v$version"; return 1; }
  [[ "$got" == "$sum" ]] || { say "error: github.com/fluxcd/$name v$version has hash ${got:-none}, expected $sum; not built"; return 1; }
  cp -R "$dir" "$tmp/src"
  chmod -R u+w "$tmp/src"
  (
    cd "$tmp/src"
    go mod edit -dropreplace "github.com/fluxcd/$name/api"
    # -mod=mod resolves the api module from the proxy (checked against the checksum
    # database as configured on this machine); cgo off, as Flux's release builds are.
    GOFLAGS="${GOFLAGS:-} -mod=mod" GOTOOLCHAIN="${GOTOOLCHAIN:-local}" CGO_ENABLED=0 \
      go build -p 2 -trimpath -ldflags="-s -w" -o "$tmp/$name" .
  )
  mv "$tmp/$name" "$bin/$name"
  rm -rf "$tmp"
  trap - EXIT
  say "$name v$version built in $((SECONDS - start))s"
}

build_controller source-controller "$SOURCE_CONTROLLER_VERSION" "$SOURCE_CONTROLLER_SUM" SOURCE_CONTROLLER_PATH
build_controller kustomize-controller "$KUSTOMIZE_CONTROLLER_VERSION" "$KUSTOMIZE_CONTROLLER_SUM" KUSTOMIZE_CONTROLLER_PATH
