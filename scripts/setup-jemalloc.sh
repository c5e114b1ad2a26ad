#!/usr/bin/env bash
# jemalloc, which the image preloads for the worker (see the Dockerfile), so that the
# benchmarks run the worker with the same allocator. Debian's libjemalloc2, unpacked (no
# root needed) into ${DEVENV_CACHE_DIR:-$HOME/.cache/devenv-scheduler}/jemalloc/.
# Only `npm run bench` uses it: if it cannot be had, this warns and the tests go on.
set -euo pipefail
say() { echo "[setup-jemalloc] $*"; }

CACHE_DIR="${DEVENV_CACHE_DIR:-$HOME/.cache/devenv-scheduler}"
TARGET="$CACHE_DIR/jemalloc/libjemalloc.so.2"

if [[ -f "$TARGET" ]]; then
  say "$TARGET already in place"
  exit 0
fi
mkdir -p "$(dirname "$TARGET")"
installed="$(ls /usr/lib/*-linux-gnu/libjemalloc.so.2 2>/dev/null | head -1 || true)"
if [[ -n "$installed" ]]; then
  ln -sfn "$installed" "$TARGET"
  say "using $installed"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
download() { (cd "$work" && apt-get download libjemalloc2 >/dev/null 2>&1); }
if ! download; then
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  if ! download; then
    say "WARNING: could not download Debian's libjemalloc2; npm run bench needs it for the worker (the tests do not)"
    exit 0
  fi
fi
dpkg-deb -x "$work"/libjemalloc2_*.deb "$work/root"
cp "$(ls "$work"/root/usr/lib/*-linux-gnu/libjemalloc.so.2)" "$TARGET"
say "unpacked $(basename "$work"/libjemalloc2_*.deb) into $TARGET"
