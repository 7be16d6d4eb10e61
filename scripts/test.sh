#!/usr/bin/env bash
# Sets up everything the tests need on a Debian machine (Debian packages, Node
# 24, npm dependencies, the Kubernetes control plane, Toxiproxy and helm built
# from their Go modules) and runs the checks and the whole test suite. Run as
# root: the tests create network namespaces and start avahi, mosquitto and umockdev.
# Extra arguments are test files to run instead of the whole suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ $(id -u) -eq 0 ]] || die "the tests need root (network namespaces, avahi, umockdev): run with sudo"

had_mosquitto=$(dpkg-query -W -f='${Status}' mosquitto 2>/dev/null || true)
ensure_apt_packages ca-certificates git openssl iproute2 dbus python3 python3-venv \
  mosquitto mosquitto-clients avahi-daemon avahi-utils \
  umockdev gir1.2-umockdev-1.0 python3-gi
# The tests start mosquitto themselves. The Debian package's service would
# hold port 1883, the agent's node broker port, so one installed just now is
# stopped and disabled where systemd runs.
if [[ $had_mosquitto != *'install ok installed'* && -d /run/systemd/system ]]; then
  systemctl disable --now mosquitto.service >/dev/null 2>&1 || true
  log "disabled the mosquitto service the package started (port 1883 is the agent's)"
fi
# Debian's Go (1.19 on bookworm) is only a bootstrap: a Go >= 1.21 fetches the
# toolchain that k8s.io/kubernetes asks for through the module proxy by itself.
command -v go >/dev/null || ensure_apt_packages golang-go
ensure_node
ensure_node_modules

log "control plane (cached after the first build)"
bash "$REPO_ROOT/scripts/build-control-plane.sh"
log "toxiproxy for the far-edge link tests (cached after the first build)"
bash "$REPO_ROOT/scripts/build-toxiproxy.sh"
log "helm, for the chart's tests (cached after the first build)"
bash "$REPO_ROOT/scripts/build-helm.sh"

cd "$REPO_ROOT"
log "typecheck, lint, build"
npm run --silent typecheck
npm run --silent lint
bash scripts/lint-dockerfile.sh
npm run --silent build

log "tests"
exec node test/run.ts "$@"
