#!/bin/bash
# attn2 round 2: (a) direct's plans (bigger workgroups, the subgroup merge) against split + combine at 128..4096
# tokens (bench_attn --cross, same process); (b) llama-1b tg64 with direct forced up to 1024 tokens (A) against
# split + combine (B), interleaved A B A B; (c) the f32 split at 32 K: PF and SG_MERGE on/off, more workgroups;
# (d) one KV head, same bytes (layout probe); (e) llama-1b at 32 K context, end to end. No fixtures needed. Hard cap 90 s: every step has its own timeout.
set -uo pipefail
export FLA_WEBGPU=dawn
t0=$(date +%s)
el() { echo "[$(( $(date +%s) - t0 )) s] $*" >> "$OUT/timeline.txt"; }
left() { echo $(( 87 - ($(date +%s) - t0) )); }

el cross
ATTN_LOG="$OUT/cross.log" timeout 24 $BUN scripts/bench_attn.ts --cross-only --cross-max=4096 > /dev/null 2> "$OUT/cross.err"
el "cross rc=$?"

B="$BUN cli/main.ts bench --synthetic llama-1b -p 512 -n 64 -b 1,8 -r 2 --no-profile --json"
for i in 1 2; do
  el "A$i direct"; FLA_SDPA_DIRECT_MAX_CTX=1024 timeout 11 $B > "$OUT/bench${i}A_direct.json" 2> "$OUT/bench${i}A_direct.err"; el "A$i rc=$?"
  el "B$i split"; FLA_SDPA_DIRECT_MAX_CTX=0 timeout 11 $B > "$OUT/bench${i}B_split.json" 2> "$OUT/bench${i}B_split.err"; el "B$i rc=$?"
done

el sweep32k
ATTN_LOG="$OUT/decode32k.log" timeout 9 $BUN scripts/bench_attn.ts --decode-only --dt=f32 --splits=default,128 \
  --plans='[null,{"PF":false},{"SGM":false},{"PF":false,"SGM":false},{"KHF":true},{"WG":128},{"WG":256},{"KHF":true,"WG":128}]' > /dev/null 2> "$OUT/decode32k.err"
el "sweep rc=$?"
# the same bytes with one KV head (rows of 256 contiguous bytes instead of 256 of every 2 KiB): is the cache's
# head-interleaved layout what holds the split near 1.3 TB/s?
ATTN_LOG="$OUT/decode_kv1.log" timeout 7 $BUN scripts/bench_attn.ts --decode-only --dt=f32 --shape=4,1,64 --ctx=262144 --splits=default \
  --plans='[null,{"WG":256}]' > /dev/null 2> "$OUT/decode_kv1.err"
el "kv1 rc=$?"

l=$(left)
if [ $l -gt 6 ]; then
  el bench32k; timeout $l $BUN cli/main.ts bench --synthetic llama-1b --ctx 32768 -p 512 -n 64 -b 1 -r 2 --no-profile --json > "$OUT/bench32k.json" 2> "$OUT/bench32k.err"; el "32k rc=$?"
fi
