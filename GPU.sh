#!/bin/bash
# gemvtune round 1: the decode-GEMV sweep (bench/gemv_probe.ts --sweep) over every decode GEMV shape of llama-1b,
# rwkv7-1.5b, gated_deltanet-1.3b at 1 and 8 rows, in one process; JSON lines written as it goes.
cd "$(dirname "$0")"
export FLA_WEBGPU=dawn
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw --format=csv > "$OUT/gpu.txt" 2>&1
timeout 84 "$BUN" bench/gemv_probe.ts --sweep --budget 70 --json "$OUT/sweep.jsonl" > "$OUT/sweep.md" 2> "$OUT/sweep.err"
echo "rc $?" >> "$OUT/sweep.err"
