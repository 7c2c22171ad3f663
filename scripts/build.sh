#!/bin/bash
# Builds dist/fla: one executable with the runtime, WebGPU (Dawn), every kernel and the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit-dirty"
mkdir -p dist
node_modules/.bin/bun build --compile cli/main.ts --define "FLA_COMMIT=\"$commit\"" --outfile dist/fla >&2
echo "dist/fla: $(stat -c %s dist/fla) bytes, commit $commit" >&2
