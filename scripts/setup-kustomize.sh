#!/usr/bin/env bash
# Installs kustomize, which renders k8s/ for test/manifests.test.ts (and for you:
# `kustomize build k8s/`), built once from the Go module proxy (scripts/go-tool.sh).
# KUSTOMIZE_PATH skips the build (test/manifests.test.ts reads the same variable).
set -euo pipefail
source "$(dirname "$0")/go-tool.sh"

KUSTOMIZE_VERSION="5.8.1"
go_tool kustomize "$KUSTOMIZE_VERSION" KUSTOMIZE_PATH sigs.k8s.io/kustomize/kustomize/v5 \
  "-X sigs.k8s.io/kustomize/api/provenance.version=v$KUSTOMIZE_VERSION" "about a minute on a fresh 2-core machine" \
  -- version
