#!/usr/bin/env bash
# Builds the Kubernetes control plane that the tests run against (kube-apiserver,
# kube-controller-manager, kube-scheduler, etcd, and kubectl for the tests that
# query as a user would) from the Kubernetes Go modules at
# a pinned release. Binaries are cached outside the repo, keyed by version:
#   ${EDGEBRIDGE_CACHE:-~/.cache/edgebridge}/k8s-<version>/bin/
# k8s.io/kubernetes requires its staging modules at v0.0.0 (they are replaced by
# local paths in its own repo), so a small wrapper module requires it and replaces
# each k8s.io/<staging> v0.0.0 with the matching published v0.X.Y.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
CACHE="${EDGEBRIDGE_CACHE:-$HOME/.cache/edgebridge}"
OUT="$CACHE/k8s-$K8S_VERSION"
BIN="$OUT/bin"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd)

if [[ -f "$OUT/.complete" ]]; then
  for b in "${BINARIES[@]}"; do [[ -x "$BIN/$b" ]] || { rm -f "$OUT/.complete"; break; }; done
fi
if [[ -f "$OUT/.complete" ]]; then
  echo "control plane $K8S_VERSION cached in $BIN"
  exit 0
fi

command -v go >/dev/null || { echo "build-control-plane: Go is not installed (apt-get install golang, or use the machine's Go)" >&2; exit 1; }

staging_version="v0.${K8S_VERSION#v1.}"
work="$OUT/module"
mkdir -p "$work" "$BIN"
cd "$work"

# Read k8s.io/kubernetes' own go.mod to learn which staging modules it pins at v0.0.0.
gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
[[ -f "$gomod" ]] || { echo "build-control-plane: could not download k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
mapfile -t staging < <(grep -E '^[[:space:]]*k8s\.io/[A-Za-z0-9._/-]+ v0\.0\.0([[:space:]]|$)' "$gomod" | awk '{print $1}' | sort -u)
(( ${#staging[@]} > 10 )) || { echo "build-control-plane: found only ${#staging[@]} staging modules in $gomod" >&2; exit 1; }

{
  echo "module edgebridge.local/controlplane"
  echo
  echo "go $(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  for m in "${staging[@]}"; do echo "	$m => $m $staging_version"; done
  echo ")"
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package controlplane

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
# tidy resolves etcd at the version k8s.io/kubernetes itself requires.
go mod tidy

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

export CGO_ENABLED=0
start=$(date +%s)
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  echo "building $cmd $K8S_VERSION ..."
  go build -mod=mod -trimpath -ldflags "$ldflags" -o "$BIN/$cmd" "k8s.io/kubernetes/cmd/$cmd"
done
echo "building etcd ..."
go build -mod=mod -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
touch "$OUT/.complete"
echo "control plane $K8S_VERSION built in $(( $(date +%s) - start ))s into $BIN"
