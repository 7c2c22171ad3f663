#!/usr/bin/env bash
# RWKV7 prefill, recurrent vs chunked wkv7 (kernels/rwkv7/wkv7_chunk.ts), on the GPU machine; results on stdout.
#   scripts/bench_wkv7.sh [prompt tokens=512]
# 1. the chunked kernels' tests on this GPU (there select picks 'chunk' by default above 64 tokens);
# 2. fla bench rwkv7-1.5b (per-kernel profile) with FLA_KERNEL_WKV7=recurrent (the old prefill: wkv7_lora 'split',
#    lora_up + wkv7_recurrent), the default ('chunk' for steps over 64 tokens: lora_up + wkv7_chunk_*; decode stays
#    wkv7_lora 'fused'), and the default at 4 / 16 state columns per workgroup (FLA_WKV7_CHUNK_BV; default 8).
set -euo pipefail
cd "$(dirname "$0")/.."
P=${1:-512}
node_modules/.bin/bun test --timeout 600000 test/regular/kernels/wkv7_chunk.test.ts test/regular/kernels/chunk_models.test.ts test/regular/models/rwkv7.test.ts test/varlen/rwkv7.test.ts 2>&1 | grep -E '^\((pass|fail)\)|^ *[0-9]+ (pass|fail)' || true
for run in "FLA_KERNEL_WKV7=recurrent" "FLA_WKV7_CHUNK_BV=8" "FLA_WKV7_CHUNK_BV=4" "FLA_WKV7_CHUNK_BV=16"; do
  echo "## $run: rwkv7-1.5b pp$P"
  env $run ./fla bench --synthetic rwkv7-1.5b -p "$P" -n 8 -b 1 2>/dev/null | grep -E '^\| (pp|tg|ttft)|^\| wkv7|^\| lora_up|^\| matmul|^kernels, prefill' || true
done
