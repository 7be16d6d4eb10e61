#!/usr/bin/env bash
# Quick start: installs what edgebridge needs on a Debian machine, builds it,
# puts an `edgebridge` command on PATH and runs it. Until the agent exists the
# command it runs is `edgebridge version`. Extra arguments are passed through.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ensure_apt_packages ca-certificates
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
exec "$bin_dir/edgebridge" version
