#!/bin/bash
# attn2 round 1: (a) the crossover of single-pass `direct` decode attention against split + combine (bench_attn
# --cross: ctx 128..32K, D 64/128, H 32 KV 8, batch 1 and 8, same process); (b) llama-1b tg64 with direct (default
# of this branch) against FLA_KERNEL_SDPA=split (the old path), interleaved processes; (c) the f32 split-plan sweep
# at 32 K. No fixtures needed. Hard cap 90 s: every step has its own timeout; logs are appended as they go.
set -uo pipefail
export FLA_WEBGPU=dawn
t0=$(date +%s)
el() { echo "[$(( $(date +%s) - t0 )) s] $*" >> "$OUT/timeline.txt"; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,utilization.gpu --format=csv > "$OUT/smi.txt" 2>&1

el cross
ATTN_LOG="$OUT/cross.log" timeout 32 $BUN scripts/bench_attn.ts --cross-only > /dev/null 2> "$OUT/cross.err"
el "cross rc=$?"

B="$BUN cli/main.ts bench --synthetic llama-1b -p 512 -n 64 -b 1,8 -r 2 --no-profile --json"
el benchA-direct
timeout 13 $B > "$OUT/benchA_direct.json" 2> "$OUT/benchA_direct.err"; el "A rc=$?"
el benchB-split
FLA_KERNEL_SDPA=split timeout 13 $B > "$OUT/benchB_split.json" 2> "$OUT/benchB_split.err"; el "B rc=$?"

el sweep32k
left=$(( 86 - ($(date +%s) - t0) ))
if [ $left -gt 5 ]; then
  ATTN_LOG="$OUT/decode32k.log" timeout $left $BUN scripts/bench_attn.ts --decode-only --dt=f32 > /dev/null 2> "$OUT/decode32k.err"
  el "sweep rc=$?"
fi
