#!/bin/bash
# Acceptance checks too slow for every submission (npm test stays under 8 minutes on 2 cores): fla ppl over the whole
# of val.ids for kjv-rwkv7 and kjv-llama against their reference val_loss, the standalone binary (npm run build)
# run from an empty folder, and fla bench --synthetic rwkv7-0.1b on the GPU adapter. Run before a release, after changes to the build, and on the GPU machine:
#
#     bash scripts/acceptance.sh            # about 15-30 minutes on lavapipe with 2 cores
#
# Reference data is required (a missing fixture fails instead of skipping). Extra arguments go to bun test.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLA_REQUIRE_FIXTURES=1
exec node_modules/.bin/bun test --timeout 3600000 ./test/acceptance/ppl.accept.ts ./test/acceptance/binary.accept.ts ./test/acceptance/bench.accept.ts "$@"
