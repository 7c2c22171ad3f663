#!/bin/bash
# On the GPU machine (after `source .gpu/setup.sh`): the prompt-state cache's multi-turn chat benchmark on the default
# model and two synthetic shapes, one JSON line each into $OUT/prefix_cache.jsonl (BENCHMARKS.md, issue 18).
# Usage: bash bench/prefix_cache_device.sh [shapes...]
set -uo pipefail
shapes=${*:-rwkv7-1.5b gated_deltanet-1.3b}
$BUN bench/prefix_cache.ts --json >> "$OUT/prefix_cache.jsonl" 2>> "$OUT/prefix_cache.err" || echo "prefix_cache default model failed" >> "$OUT/prefix_cache.err"
for s in $shapes; do
  echo "== $s" >&2
  $BUN bench/prefix_cache.ts --synthetic "$s" --json >> "$OUT/prefix_cache.jsonl" 2>> "$OUT/prefix_cache.err" || echo "prefix_cache $s failed" >> "$OUT/prefix_cache.err"
done
