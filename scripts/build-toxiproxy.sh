#!/usr/bin/env bash
# Builds Toxiproxy, the fault-injection TCP proxy that the far-edge tests put
# between the agent and the API server (latency, cut links; these kernels have
# no sch_netem), from its Go module at a pinned release. The binary is cached
# outside the repo beside the control plane, keyed by version:
#   ${EDGEBRIDGE_CACHE:-~/.cache/edgebridge}/toxiproxy-<version>/bin/toxiproxy-server
# v2.12.0 is served by the module proxy although its version list stops at v2.5.0.
set -euo pipefail

TOXIPROXY_VERSION="${TOXIPROXY_VERSION:-v2.12.0}"
CACHE="${EDGEBRIDGE_CACHE:-$HOME/.cache/edgebridge}"
OUT="$CACHE/toxiproxy-$TOXIPROXY_VERSION"
BIN="$OUT/bin"
MODULE=github.com/Shopify/toxiproxy/v2

if [[ -f "$OUT/.complete" && -x "$BIN/toxiproxy-server" ]]; then
  echo "toxiproxy $TOXIPROXY_VERSION cached in $BIN"
  exit 0
fi
rm -f "$OUT/.complete"

command -v go >/dev/null || { echo "build-toxiproxy: Go is not installed (apt-get install golang, or use the machine's Go)" >&2; exit 1; }

# go install names the binary after its package folder (cmd/server), so it is
# built into a scratch GOBIN and renamed.
scratch="$OUT/gobin"
rm -rf "$scratch"
mkdir -p "$scratch" "$BIN"
start=$(date +%s)
echo "building toxiproxy-server $TOXIPROXY_VERSION ..."
CGO_ENABLED=0 GOBIN="$scratch" go install -trimpath \
  -ldflags "-s -w -X $MODULE.Version=$TOXIPROXY_VERSION" "$MODULE/cmd/server@$TOXIPROXY_VERSION"
mv "$scratch/server" "$BIN/toxiproxy-server"
rm -rf "$scratch"
touch "$OUT/.complete"
echo "toxiproxy $TOXIPROXY_VERSION built in $(( $(date +%s) - start ))s into $BIN"
