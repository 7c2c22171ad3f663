#!/bin/bash
# On the GPU machine (after `source .gpu/setup.sh`): fla bench on the synthetic shapes and the default model,
# markdown and JSON into $OUT. Usage: bash bench/device_run.sh [shapes...]
set -uo pipefail
shapes=${*:-rwkv7-0.1b rwkv7-1.5b gated_deltanet-1.3b llama-1b}
for s in $shapes; do
  echo "== $s" >&2
  $BUN cli/main.ts bench --synthetic "$s" -p 512 -n 128 -b 1,8,64 >> "$OUT/bench.md" 2>> "$OUT/bench.err" || echo "bench $s failed" >> "$OUT/bench.err"
  echo >> "$OUT/bench.md"
done
$BUN cli/main.ts bench -p 512 -n 128 -b 1,8,64 >> "$OUT/bench.md" 2>> "$OUT/bench.err"
