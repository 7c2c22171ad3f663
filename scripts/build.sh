#!/bin/bash
# Builds dist/fla: one executable with the runtime, both WebGPU bindings (bun-webgpu's .so and dawn.node, an
# N-API addon, each extracted to $TMPDIR when loaded), every kernel and the default model. Only this platform's
# dawn.node is embedded: FLA_DAWN_TARGET folds src/gpu/binding.ts's other require() branches away.
set -euo pipefail
cd "$(dirname "$0")/.."
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit-dirty"
mkdir -p dist
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) dawn=linux-x64 ;; Linux-aarch64) dawn=linux-arm64 ;; Darwin-*) dawn=darwin-universal ;;
  MINGW*-x86_64|MSYS*-x86_64) dawn=win32-x64 ;; *) dawn=none ;;
esac
node_modules/.bin/bun build --compile cli/main.ts --define "FLA_COMMIT=\"$commit\"" \
  --define "process.env.FLA_DAWN_TARGET=\"$dawn\"" --outfile dist/fla >&2
echo "dist/fla: $(stat -c %s dist/fla) bytes, commit $commit" >&2
