#!/bin/bash
# Installs what a fresh Debian 12 machine lacks to run fla: Mesa 25's lavapipe Vulkan driver from
# bookworm-backports (Debian 12's own Mesa makes Dawn fall back to a null adapter that computes nothing),
# then the npm dependencies (Bun itself comes from npm). Idempotent; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*" >&2; }

mesa_ok() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [[ "$v" =~ ^([0-9]+) ]] && (( BASH_REMATCH[1] >= 25 ))
}

if [ "${FLA_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null && grep -q 'VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null && ! mesa_ok; then
  if [ "$(id -u)" != 0 ]; then
    say "not root: cannot install Mesa 25 (lavapipe); fla will run on the CPU backend unless a GPU driver exists"
  else
    say "adding bookworm-backports and installing Mesa 25 (lavapipe Vulkan driver) ..."
    # never edits an existing source: adds a file of its own, and only when no source has the suite
    added=$(bash scripts/apt_backports.sh /etc/apt)
    say "bookworm-backports: $added"
    if apt-get update -qq >&2; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >&2 || true
    elif [[ "$added" == added\ * ]]; then
      # the mirror has no backports: take our file out again so apt keeps working as before
      rm -f "${added#added }"
      say "warning: apt-get update failed with bookworm-backports; removed ${added#added }"
    fi
    mesa_ok || say "warning: Mesa 25 did not install; fla runs on the CPU backend (GPU tests need lavapipe)"
  fi
fi

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies ..."
  # not `npm ci`: bun-webgpu 0.1.7 names optional platform packages (darwin, win32) that were never published
  # at that version, which npm ci reports as a lock file out of sync; npm install follows the lock file all the same
  npm install --no-audit --no-fund >&2
fi
