#!/usr/bin/env bash
# Quick start: installs what edgebridge needs on a Debian machine, builds it,
# puts an `edgebridge` command on PATH and runs the agent standalone (embedded
# registry, no cluster needed) with a demo Discovery of simulated devices.
# With arguments, runs `edgebridge <arguments>` instead.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ensure_apt_packages ca-certificates mosquitto-clients
ensure_node
ensure_node_modules
log "building"
(cd "$REPO_ROOT" && npm run --silent build)

# A wrapper so that `edgebridge` runs on the supported Node whatever node is on PATH.
bin_dir=/usr/local/bin
[[ -w $bin_dir ]] || bin_dir="$HOME/.local/bin"
mkdir -p "$bin_dir"
cat > "$bin_dir/edgebridge" <<WRAPPER
#!/bin/sh
exec "$(command -v node)" "$REPO_ROOT/dist/src/cli/main.js" "\$@"
WRAPPER
chmod +x "$bin_dir/edgebridge"
log "installed $bin_dir/edgebridge"

if (( $# > 0 )); then exec "$bin_dir/edgebridge" "$@"; fi

state_dir="${EDGEBRIDGE_STATE_DIR:-/var/lib/edgebridge}"
config="$state_dir/edgebridge.yaml"
mkdir -p "$state_dir"
if [[ ! -f $config ]]; then
  sed "s|@STATE_DIR@|$state_dir|g" "$REPO_ROOT/manifests/samples/standalone.yaml" > "$config"
  cp "$REPO_ROOT/manifests/samples/simulated-devices.yaml" "$state_dir/simulated-devices.yaml"
  log "wrote a demo configuration to $config"
fi
broker_config="$state_dir/broker.yaml"
if [[ ! -f $broker_config ]]; then
  sed "s|@STATE_DIR@|$state_dir|g" "$REPO_ROOT/manifests/samples/standalone-broker.yaml" > "$broker_config"
  (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$state_dir/demo-broker-password")
  log "wrote the node broker's access rules to $broker_config (user demo, password in $state_dir/demo-broker-password)"
fi
log "agent running; in another shell: edgebridge devices --standalone --state-dir $state_dir"
log "device data: mosquitto_sub -h 127.0.0.1 -u demo -P \"\$(cat $state_dir/demo-broker-password)\" -t 'edgebridge/v1/default/+/#' -v"
uplink=()
if [[ -n ${EDGEBRIDGE_UPLINK_CONFIG:-} ]]; then
  uplink=(--uplink-config "$EDGEBRIDGE_UPLINK_CONFIG")
  log "uplink configured by $EDGEBRIDGE_UPLINK_CONFIG"
fi
exec "$bin_dir/edgebridge" agent --standalone --config "$config" --state-dir "$state_dir" \
  --http-port "${EDGEBRIDGE_HTTP_PORT:-8181}" \
  --broker-config "$broker_config" --broker-port "${EDGEBRIDGE_BROKER_PORT:-1883}" "${uplink[@]}"
