#!/bin/bash
# fp8dec round 3: fla bench A/B of FLA_FP8_ROWS=2 FLA_FP8_UNROLL=4 (A: two outputs a lane group, 4 units of each in
# flight) against the default (B: main's kernels), interleaved A B A B processes; then the probe of the same pair
# (same process, twice each). No fixtures needed.
set -uo pipefail
export FLA_WEBGPU=dawn
t0=$(date +%s)
el() { echo "[$(( $(date +%s) - t0 )) s] $*" >> "$OUT/timeline.txt"; }
B="$BUN cli/main.ts bench --synthetic qwen3_next-80b-a3b --dtype fp8 -p 64 -n 32 -b 1 -r 2 --no-profile --json"
for i in 1 2; do
  FLA_FP8_ROWS=2 FLA_FP8_UNROLL=4 timeout 17 $B > "$OUT/bench_A$i.json" 2> "$OUT/bench_A$i.err"; el "A$i rc=$?"
  timeout 17 $B > "$OUT/bench_B$i.json" 2> "$OUT/bench_B$i.err"; el "B$i rc=$?"
done
left=$(( 86 - ($(date +%s) - t0) ))
timeout $left $BUN bench/fp8_probe.ts --reps 60 --out "$OUT/probe.md" --shapes 'in_proj,q|g|k|v,out_proj,o_proj' \
  --env '' --env 'FLA_FP8_ROWS=2 FLA_FP8_UNROLL=4' --env '' --env 'FLA_FP8_ROWS=2 FLA_FP8_UNROLL=4' > /dev/null 2> "$OUT/probe.err"
el "probe rc=$?"
