#!/usr/bin/env bash
# Installs helm, which renders charts/devenv-scheduler for test/helm.test.ts (and for you:
# `helm template charts/devenv-scheduler`), built once from the Go module proxy
# (scripts/go-tool.sh). HELM_PATH skips the build (test/helm.test.ts reads the same variable).
set -euo pipefail
source "$(dirname "$0")/go-tool.sh"

HELM_VERSION="4.3.1"
go_tool helm "$HELM_VERSION" HELM_PATH helm.sh/helm/v4/cmd/helm \
  "-X helm.sh/helm/v4/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
  "about 5 minutes of CPU time" \
  -- version --template '{{.Version}}'
