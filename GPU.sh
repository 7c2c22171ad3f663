#!/bin/bash
# attn2 round 3 (verification of the defaults now on the branch): (a) direct (now 4 lanes a key, 256 threads) against
# split + combine up to 8 K tokens (bench_attn --cross, same process); (b) llama-1b tg64 default (direct) against
# FLA_SDPA_DIRECT_MAX_CTX=0 (split + combine), interleaved A B A B; (c) the f32 split at 32 K: KH_FAST grid order,
# and one KV head of the same bytes (layout probe); (d) llama-1b at 32 K context, end to end. No fixtures needed.
set -uo pipefail
export FLA_WEBGPU=dawn
t0=$(date +%s)
el() { echo "[$(( $(date +%s) - t0 )) s] $*" >> "$OUT/timeline.txt"; }
left() { echo $(( 87 - ($(date +%s) - t0) )); }

el cross
ATTN_LOG="$OUT/cross.log" timeout 18 $BUN scripts/bench_attn.ts --cross-only --cross-max=8192 --cross-plans='[{"WG":512,"KU":1}]' > /dev/null 2> "$OUT/cross.err"
el "cross rc=$?"

B="$BUN cli/main.ts bench --synthetic llama-1b -p 512 -n 64 -b 1,8 -r 2 --no-profile --json"
for i in 1 2; do
  el "A$i direct"; timeout 11 $B > "$OUT/bench${i}A_direct.json" 2> "$OUT/bench${i}A_direct.err"; el "A$i rc=$?"
  el "B$i split"; FLA_SDPA_DIRECT_MAX_CTX=0 timeout 11 $B > "$OUT/bench${i}B_split.json" 2> "$OUT/bench${i}B_split.err"; el "B$i rc=$?"
done

el sweep32k
ATTN_LOG="$OUT/decode32k.log" timeout 6 $BUN scripts/bench_attn.ts --decode-only --dt=f32 --splits=default \
  --plans='[null,{"KHF":true},{"SGM":true},{"KHF":true,"PF":false}]' > /dev/null 2> "$OUT/decode32k.err"
el "sweep rc=$?"
ATTN_LOG="$OUT/decode_kv1.log" timeout 6 $BUN scripts/bench_attn.ts --decode-only --dt=f32 --shape=4,1,64 --ctx=262144 --splits=default \
  --plans='[null]' > /dev/null 2> "$OUT/decode_kv1.err"
el "kv1 rc=$?"

l=$(left)
if [ $l -gt 6 ]; then
  el bench32k; timeout $l $BUN cli/main.ts bench --synthetic llama-1b --ctx 32768 -p 512 -n 64 -b 1 -r 2 --no-profile --json > "$OUT/bench32k.json" 2> "$OUT/bench32k.err"; el "32k rc=$?"
fi
