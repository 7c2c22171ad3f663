// Summarise `fla bench --json` output (stdin) for the attention runs: the results, and per kernel table the sdpa rows
// and the top rows by GPU time.   $BUN scripts/attn_summary.ts < bench.json
export {};
const lines = (await new Response(Bun.stdin.stream()).text()).split('\n').filter(l => l.startsWith('{'));
for (const l of lines) {
  const j = JSON.parse(l);
  console.log(`${j.model} · ${j.dtype} · dispatches/token ${j.dispatches_per_token} · copy ${j.ceilings?.copy_gbs} GB/s`);
  for (const r of j.results) console.log(`  ${r.test}: ${r.mean} ± ${r.std ?? 0} ${r.unit}${r.roofline ? ` (${(100 * r.roofline.fraction).toFixed(1)} % of ${r.roofline.bound_tokens_per_s} t/s, ${r.roofline.kind})` : ''}`);
  for (const [name, rows] of Object.entries(j.kernels ?? {}) as [string, any[]][]) {
    console.log(`  kernels, ${name}:`);
    const top = rows.slice().sort((a, b) => b.ms - a.ms).filter((r, i) => i < 8 || /sdpa|rope|kv/.test(r.kernel));
    for (const r of top) console.log(`    ${r.kernel.padEnd(22)} ${String(r.calls).padStart(4)} calls ${r.ms.toFixed(3).padStart(9)} ms ${(100 * r.share).toFixed(1).padStart(5)} %  ${r.gbs === null ? '' : `${Math.round(r.gbs)} GB/s`}  ${r.tflops === null ? '' : `${r.tflops.toFixed(2)} TFLOP/s`}`);
  }
}
