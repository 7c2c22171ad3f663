#!/bin/bash
# fp8dec round 2: the bench A/B of the default (FLA_FP8_ROWS=2 at one row) against FLA_FP8_ROWS=1 (main's kernels),
# interleaved A B A B processes; before it, a short probe sweep (same process) of what is left. No fixtures needed.
set -uo pipefail
export FLA_WEBGPU=dawn
P="$BUN bench/fp8_probe.ts"
t0=$(date +%s)
el() { echo "[$(( $(date +%s) - t0 )) s] $*" >> "$OUT/timeline.txt"; }

el probe
timeout 16 $P --reps 60 --out "$OUT/probe.md" --shapes 'in_proj,q|g|k|v,out_proj,o_proj,moe' \
  --env 'FLA_FP8_ROWS=1' --env '' --env 'FLA_FP8_ROWS=2 FLA_FP8_UNROLL=4' --env 'FLA_FP8_ROWS=4' --env 'FLA_FP8_ROWS=1' --env '' \
  --env 'FLA_FP8_LANES=32' --env 'FLA_MOE_UNROLL=2' --env 'FLA_MOE_UNROLL=8' > /dev/null 2> "$OUT/probe.err"
el "probe rc=$?"

B="$BUN cli/main.ts bench --synthetic qwen3_next-80b-a3b --dtype fp8 -p 64 -n 32 -b 1 -r 2 --no-profile --json"
for i in 1 2; do
  timeout 17 $B > "$OUT/bench_A$i.json" 2> "$OUT/bench_A$i.err"; el "A$i rc=$?"
  FLA_FP8_ROWS=1 timeout 17 $B > "$OUT/bench_B$i.json" 2> "$OUT/bench_B$i.err"; el "B$i rc=$?"
done
