#!/bin/bash
# gemvtune round 2: the per-shape rules (gemvRule) against the previous geometry (FLA_GEMV_TUNED=0), per decode GEMV
# in one process (interleaved twice), then fla bench of the three models, previous and tuned in alternating processes
# (llama-1b also with FLA_GEMV_PART_RT=1: q|k|v's part at run time).
cd "$(dirname "$0")"
export FLA_WEBGPU=dawn
left() { echo $((86 - SECONDS)); }
timeout 30 "$BUN" bench/gemv_probe.ts --ab 2 --split --json "$OUT/ab.jsonl" > "$OUT/ab.md" 2> "$OUT/ab.err"; echo "probe rc $? at $SECONDS s" >> "$OUT/log.txt"
n=0
for run in "llama-1b 0 0" "llama-1b 1 0" "llama-1b 1 1" "gated_deltanet-1.3b 1 0" "gated_deltanet-1.3b 0 0" "rwkv7-1.5b 0 0" "rwkv7-1.5b 1 0" "llama-1b 1 1" "llama-1b 0 0" "llama-1b 1 0"; do
  n=$((n + 1))
  set -- $run
  [ "$(left)" -gt 10 ] || break
  FLA_GEMV_TUNED=$2 FLA_GEMV_PART_RT=$3 timeout "$(left)" "$BUN" cli/main.ts bench --synthetic "$1" -p 64 -n 64 -b 1,8 -r 2 --no-profile --json > "$OUT/bench${n}_$1_tuned$2_rt$3.json" 2> "$OUT/bench${n}_$1_tuned$2_rt$3.err"
  echo "$1 tuned=$2 part_rt=$3 rc $? at $SECONDS s" >> "$OUT/log.txt"
done
