#!/bin/bash
# fp8dec round 1: where the Qwen3-Next fp8 decode kernels spend their time at batch 1, and the A/B of this branch's
# knobs in one process each (bench/fp8_probe.ts). No fixtures needed. Hard cap 90 s: every step has its own timeout.
set -uo pipefail
export FLA_WEBGPU=dawn
P="$BUN bench/fp8_probe.ts"
t0=$(date +%s)
el() { echo "[$(( $(date +%s) - t0 )) s] $*" >> "$OUT/timeline.txt"; }

# 1. every case, each launch alone (in-pass µs and timestamped kernel µs): new loads vs old, f16 vs asr decode
el probe-split
timeout 30 $P --split --reps 40 --out "$OUT/probe_split.md" --env '' --env 'FLA_MOE_LOADS=old' --env 'FLA_FP8_DECODE=asr' --env 'FLA_FP8_ROWS=2' > /dev/null 2> "$OUT/probe_split.err"
el "probe-split rc=$?"

# 2. the experts: launch shape sweep (same process)
timeout 15 $P --shapes moe --split --reps 40 --out "$OUT/probe_moe.md" --env '' --env 'FLA_MOE_LOADS=old' --env 'FLA_FP8_LANES=8' --env 'FLA_FP8_LANES=32' --env 'FLA_FP8_LANES=64' \
  --env 'FLA_FP8_WG=128' --env 'FLA_FP8_WG=512' --env 'FLA_FP8_WG=1024' --env 'FLA_MOE_UNROLL=4' --env 'FLA_FP8_XS=0' --env 'FLA_FP8_DECODE=asr FLA_FP8_LANES=32' \
  > /dev/null 2> "$OUT/probe_moe.err"
el "probe-moe rc=$?"

# 3. the dense fp8 GEMVs: launch shape sweep
timeout 18 $P --shapes 'in_proj,q|g|k|v,out_proj,o_proj' --reps 40 --out "$OUT/probe_proj.md" --env '' --env 'FLA_FP8_LANES=8' --env 'FLA_FP8_LANES=32' --env 'FLA_FP8_LANES=64' --env 'FLA_FP8_WG=128' \
  --env 'FLA_FP8_WG=512' --env 'FLA_FP8_UNROLL=4' --env 'FLA_FP8_XS=0' --env 'FLA_FP8_DECODE=asr' --env 'FLA_FP8_DECODE=asr FLA_FP8_LANES=32' \
  --env 'FLA_FP8_ROWS=2' --env 'FLA_FP8_ROWS=2 FLA_FP8_LANES=8' --env 'FLA_FP8_ROWS=2 FLA_FP8_LANES=32' --env 'FLA_FP8_ROWS=4' --env 'FLA_FP8_ROWS=2 FLA_FP8_DECODE=asr' \
  > /dev/null 2> "$OUT/probe_proj.err"
el "probe-proj rc=$?"

# 4. does the asr decode keep f32 subnormals here (the test fails if they are flushed)
FLA_REQUIRE_GPU=1 FLA_FP8_DECODE=asr timeout 8 $BUN test test/regular/kernels/moe_fp8.test.ts -t 'subnormal|N=1 256' > "$OUT/asr_test.txt" 2>&1
el "asr-test rc=$?"

# 5. the bench, default settings of this branch, with the per-kernel profile
left=$(( 86 - ($(date +%s) - t0) ))
timeout $left $BUN cli/main.ts bench --synthetic qwen3_next-80b-a3b --dtype fp8 -p 64 -n 32 -b 1 -r 2 --json > "$OUT/bench.json" 2> "$OUT/bench.err"
el "bench rc=$?"
