#!/usr/bin/env bash
# Long-context decode through split-K attention (issue 15, "Long contexts"): llama-1b with 32 768 tokens in its KV
# cache, f32 then f16 cache (each run prints the per-kernel table of a decode step at that context: sdpa_split's
# time and bandwidth), then the split count swept with FLA_SDPA_SPLITS (default at this shape: 64, 512 workgroups).
# Results on stdout; run on the GPU machine: bash scripts/bench_sdpa_long.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./fla bench --synthetic llama-1b -p 512 -n 64 -b 1 --ctx 32768 -r 2
FLA_KV_CACHE=f16 ./fla bench --synthetic llama-1b -p 512 -n 64 -b 1 --ctx 32768 -r 2
for s in 32 128 256; do
  echo "FLA_SDPA_SPLITS=$s"
  FLA_SDPA_SPLITS=$s ./fla bench --synthetic llama-1b -p 64 -n 64 -b 1 --ctx 32768 -r 1
done
