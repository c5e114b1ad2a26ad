#!/usr/bin/env bash
# Chromium for the one browser test (/docs), from Debian's packages: playwright-core
# drives it through executablePath and downloads nothing. CHROMIUM_PATH overrides.
set -euo pipefail
say() { echo "[setup-chromium] $*"; }

if [[ -n "${CHROMIUM_PATH:-}" ]]; then
  say "using CHROMIUM_PATH=$CHROMIUM_PATH"
elif command -v chromium >/dev/null 2>&1; then
  say "$(chromium --version 2>/dev/null || echo chromium) already installed"
else
  say "installing Debian's chromium (about 100 MB, once per machine)"
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || say "apt-get update failed; trying the install with the current package lists"
  $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
  say "installed: $(chromium --version)"
fi
