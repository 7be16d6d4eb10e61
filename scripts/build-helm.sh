#!/usr/bin/env bash
# Builds helm (for `helm lint` / `helm template` of manifests/helm/edgebridge in
# the tests) from its Go module at a pinned release. The binary is cached outside
# the repo beside the control plane, keyed by version:
#   ${EDGEBRIDGE_CACHE:-~/.cache/edgebridge}/helm-<version>/bin/helm
# helm's go.mod has no replace directives, so `go install module@version` builds
# it with exactly the dependencies its release pins.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v4.3.2}"
CACHE="${EDGEBRIDGE_CACHE:-$HOME/.cache/edgebridge}"
OUT="$CACHE/helm-$HELM_VERSION"
BIN="$OUT/bin"

if [[ -f "$OUT/.complete" && -x "$BIN/helm" ]]; then
  echo "helm $HELM_VERSION cached in $BIN"
  exit 0
fi
rm -f "$OUT/.complete"

command -v go >/dev/null || { echo "build-helm: Go is not installed (apt-get install golang, or use the machine's Go)" >&2; exit 1; }

mkdir -p "$BIN"
# `helm version` reports what the Makefile of the release would stamp.
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean"

export CGO_ENABLED=0
start=$(date +%s)
echo "building helm $HELM_VERSION ..."
# GOFLAGS from the environment (e.g. -mod=mod) do not apply to module@version installs.
GOFLAGS= GOBIN="$BIN" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
"$BIN/helm" version --short >/dev/null
touch "$OUT/.complete"
echo "helm $HELM_VERSION built in $(( $(date +%s) - start ))s into $BIN"
