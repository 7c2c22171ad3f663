// Attention kernels on the GPU machine (issues 15, 16), outside a model:
// 1. prefill: each prefill variant (flash, flash_sgmat where the adapter has subgroup matrices, single) at
//    llama-1b's pp512 shape and at D 128, µs per layer and its max|Δ|/max|want| against the f32 CPU reference.
// 2. decode: one token of llama-1b's attention (H 32, KV 8, D 64; --shape=H,KV,D) over CTX cached keys (default 32 768), split-K
//    (split + combine) for each KV-cache dtype and a sweep of split plans (FLA_SDPA_SPLITS, the plan fields of
//    splitPlanOverride): µs per layer and GB/s of K/V read, over L layers' distinct caches (past the L2), each
//    output checked against the CPU reference;
// 3. --cross: decode with `direct` (one pass, no combine; FLA_SDPA_DIRECT_HEADS 2 and the default; at one head a
//    workgroup the plans of --cross-plans='[JSON tweaks]') against `split` + combine (and split without SG_MERGE),
//    µs per layer over caches of 128 … 32 K tokens (--cross-max=N), head dims 64 and 128, H 32 KV 8, batch 1 and 8
//    (--cross-b=1,8), each variant checked against the CPU reference at 512 tokens: the capacity up to which select
//    should pick direct (FLA_SDPA_DIRECT_MAX_CTX).
//   FLA_WEBGPU=dawn bun scripts/bench_attn.ts [--ctx=N] [--p=N (prefill tokens, default 512; > 212)] [--quick] [--focus (decode: the plans near the defaults)] [--decode-only] [--prefill-only] [--dt=f32,f16,bf16] [--shape=H,KV,D] [--plans='[JSON tweaks]'] [--splits=default,128] [--cross [--cross-only] [--cross-max=N] [--cross-b=1,8]]
import { sdpaOp, kvCols, splitPlan, splitPlanOverride, splitsOf, type SplitTweak } from '../kernels/attention/sdpa.ts';
import { sdpaRef, bf16Bits, type KvDtype } from '../kernels/attention/sdpa.ref.ts';
import { GpuBackend } from '../src/backend/gpu.ts';
import type { Tensor } from '../src/backend/backend.ts';
import { Gpu } from '../src/gpu/device.ts';
import { appendFileSync } from 'node:fs';

// each line also appended to $ATTN_LOG when set (kept if the run is cut short)
const log = (line: string) => { console.log(line); if (process.env.ATTN_LOG) appendFileSync(process.env.ATTN_LOG, line + '\n'); };
const arg = (k: string) => process.argv.find(a => a.startsWith(`--${k}=`))?.slice(k.length + 3);
const has = (k: string) => process.argv.includes(`--${k}`);
const CTX = Number(arg('ctx') ?? 32768), quick = has('quick');
const gpu = await Gpu.create();
const o = new GpuBackend(gpu);
log(`${gpu.summary.name} (${gpu.summary.backend}, ${gpu.summary.binding}); subgroups ${o.adapter.subgroups} (${o.adapter.subgroupSize}), subgroup matrices ${gpu.subgroupMatrix.length}`);

let seed = 7;
const rnd = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296 * 2 - 1; };
const rand = (n: number) => { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = rnd() * 1.7; return a; };
/** f32 values → the state words of a `dt` cache */
function words(vals: Float32Array, dt: KvDtype): Float32Array {
  if (dt === 'f32') return vals;
  const w = new Float32Array(vals.length / 2);
  if (dt === 'f16') new Float16Array(w.buffer).set(vals);
  else { const u = new Uint16Array(w.buffer); for (let i = 0; i < vals.length; i++) u[i] = bf16Bits(vals[i]!); }
  return w;
}
const relErr = (g: Float32Array, w: Float32Array) => {
  let d = 0, m = 0;
  for (let i = 0; i < w.length; i++) { const a = Math.abs(g[i]! - w[i]!); if (!(a <= d)) d = a !== a ? Infinity : a; m = Math.max(m, Math.abs(w[i]!)); }
  return d / m;
};
async function readT(t: Tensor, n: number): Promise<Float32Array> { return (await o.read(t)).slice(0, n); }
/** ms per replay of `ds` (≥ 20 ms of replays) */
async function time(ds: unknown[]): Promise<number> {
  const run = async (reps: number) => {
    const enc = gpu.device.createCommandEncoder();
    for (let i = 0; i < reps; i++) gpu.encode(enc, ds as never);
    gpu.submit(enc);
    const t0 = performance.now();
    await gpu.device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  await run(1);
  const one = Math.max(0.005, await run(2) / 2), reps = Math.max(3, Math.min(400, Math.ceil(20 / one)));
  return await run(reps) / reps;
}
const step1 = (pos: number) => ({ ids: new Int32Array(1), cursors: [{ slot: 0, start: 0, len: 1, pos }], keep: new Int32Array(1) });

// 1. prefill: P tokens from an empty cache (the cache holds their keys, as after kv_store)
if (!has('decode-only') && !has('cross-only')) {
  const P = Number(arg('p') ?? 512);
  // llama-1b's shape and D 128 timed; H 8 (two sequences) checked against the CPU reference
  for (const [H, KV, D] of [[32, 8, 64], [32, 8, 128], [8, 2, 64], [8, 2, 128]] as const) {
    const ctx = P + 64, cols = kvCols(ctx, KV * D, 'f32');
    o.allocState([{ key: 'k', cols }, { key: 'v', cols }], 1);
    const kv0 = rand(ctx * KV * D), kv1 = rand(ctx * KV * D);
    o.write(o.state('k'), kv0); o.write(o.state('v'), kv1);
    // two sequences in the error check (D 64, H 8): 300 tokens after a 13-token prefix, then 212 from the start
    const cursors = H === 8 ? [{ slot: 0, start: 0, len: P - 212, pos: 13 }, { slot: 0, start: P - 212, len: 212, pos: 0 }] : [{ slot: 0, start: 0, len: P, pos: 0 }];
    const layout = { ids: new Int32Array(P), cursors, keep: new Int32Array(1) };
    o.beginStep(layout);
    const qv = rand(P * H * D), q = o.act('q', H * D), out = o.act('out', H * D);
    const full = new Float32Array(o.capacity(q) * H * D); full.set(qv); o.write(q, full);
    const a = { H, KV, D, ctx, kv: 'f32' as const, q, k: o.state('k'), v: o.state('v'), out };
    const check = H === 8;
    let want: Float32Array | null = null;
    if (check) { want = new Float32Array(P * H * D); sdpaRef(qv, kv0, kv1, want, cursors, { H, KV, D, ctx, window: 0, scale: 1 / Math.sqrt(D), kv: 'f32' }); }
    // flash's tile knobs too (timed shapes only): env settings read when its launches are built
    const runs: [string, Record<string, string>][] = [['flash', {}], ['flash_sgmat', {}], ['single', {}]];
    if (H !== 8 && !quick) for (const e of <Record<string, string>[]>[{ FLA_SDPA_TX: '16' }, { FLA_SDPA_TX: '4' }, { FLA_SDPA_BR: '16' }, { FLA_SDPA_BR: '64' }, { FLA_SDPA_BR: '16', FLA_SDPA_TX: '16' }]) runs.push(['flash', e]);
    for (const [v, env] of runs) {
      const name = `${v}${Object.keys(env).length ? ' ' + Object.entries(env).map(([k, x]) => `${k}=${x}`).join(' ') : ''}`;
      Object.assign(process.env, env);
      try {
        o.beginStep(layout);
        const ds = await o.build(sdpaOp, a, v);
        const enc = gpu.device.createCommandEncoder(); gpu.encode(enc, ds as never); gpu.submit(enc);
        const got = await readT(out, P * H * D);
        const ms = H === 8 ? NaN : await time(ds);
        const flop = 4 * D * H * (P * (P + 1) / 2);
        log(`prefill ${name} H ${H} KV ${KV} D ${D} ${P} tokens: ${isNaN(ms) ? '–' : `${(ms * 1000).toFixed(1)} µs = ${(flop / ms / 1e9).toFixed(2)} TFLOP/s`}${want ? `; max|Δ|/max|want| ${relErr(got, want).toExponential(2)}` : ''}`);
      } catch (e) {
        log(`prefill ${name} H ${H} D ${D}: ${(e as Error).message.split('\n')[0]!.slice(0, 200)}`);
      } finally { for (const k of Object.keys(env)) delete process.env[k]; }
    }
  }
}
// 2. decode over CTX keys
if (!has('prefill-only') && !has('cross-only')) {
  const [H, KV, D] = (arg('shape') ?? '32,8,64').split(',').map(Number) as [number, number, number];
  const L = quick ? 2 : 3, pos = CTX - 1;
  const kv0 = rand(CTX * KV * D), kv1 = rand(CTX * KV * D);
  for (const dt of (arg('dt') ?? 'f32,f16,bf16').split(',') as KvDtype[]) {
    const cols = kvCols(CTX, KV * D, dt);
    o.allocState(Array.from({ length: L }, (_, l) => [{ key: `${l}.k`, cols }, { key: `${l}.v`, cols }]).flat(), 1);
    const w0 = words(kv0, dt), w1 = words(kv1, dt);
    for (let l = 0; l < L; l++) { o.write(o.state(`${l}.k`), l % 2 ? w1 : w0); o.write(o.state(`${l}.v`), l % 2 ? w0 : w1); }
    o.beginStep(step1(pos));
    const qv = rand(H * D), q = o.act('q', H * D), out = o.act('out', H * D);
    o.write(q, qv);
    const args = (l: number) => ({ H, KV, D, ctx: CTX, kv: dt, q, k: o.state(`${l}.k`), v: o.state(`${l}.v`), out });
    const bytes = 2 * CTX * KV * D * (dt === 'f32' ? 4 : 2);
    const want = new Float32Array(H * D);
    sdpaRef(qv, w0, w1, want, [{ slot: 0, start: 0, len: 1, pos }], { H, KV, D, ctx: CTX, window: 0, scale: 1 / Math.sqrt(D), kv: dt });
    const ctx1 = { adapter: o.adapter, step: { n: 1, k: 1, b: 1, lens: [1], maxLen: 1, cursors: step1(pos).cursors } } as unknown as Parameters<typeof splitsOf>[1];
    // plans × split counts (null: the defaults); the 16-bit caches sweep fewer
    // --focus: the defaults beside the plans near them (f32: G = H/KV is the plan before the query-head slots, QS 1 the
    // head groups across workgroups, KP the key-parallel kernel; 16-bit: one or two query heads a lane, key-parallel)
    const focus: (SplitTweak | null)[] = dt === 'f32'
      ? [null, { G: H / KV }, { KU: 1 }, { KU: 1, PF: true }, { TPK: 4 }, { TPK: 4, KU: 2 }, { TPK: 4, KU: 1, PF: true }, { QS: 1 }, { QS: 1, KHF: true }, { QS: 2 }, { G: 2 }, { WG: 128 }, { WG: 512 }, { PF: true }, { KP: true }, { KP: true, WG: 256 }, { KP: true, WG: 64 }, { KP: true, KU: 16 }, { KP: true, KU: 4 }]
      : [null, { G: 1 }, { G: 1, KW: 1, WG: 256 }, { G: 2, KW: 1 }, { KP: true }, { KP: true, KU: 16 }];
    const plans: (SplitTweak | null)[] = arg('plans') ? JSON.parse(arg('plans')!) : has('focus') ? focus : quick ? [null, { PF: true }] : dt === 'f32'
      ? [null, { PF: true }, { KU: 4 }, { KU: 1, PF: true }, { TPK: 16 }, { TPK: 16, PF: true }, { TPK: 4 }, { WG: 256 }, { WG: 256, PF: true }, { WG: 64 }]
      : [null, { PF: true }, { KU: 2, PF: true }];
    const splitCounts = arg('splits') ? arg('splits')!.split(',').map(x => (x === 'default' ? null : Number(x))) : quick || has('focus') ? [null] : [null, 128, 256];
    const sweep: [string, SplitTweak | null, number | null][] = [];
    for (const t of plans) for (const S of splitCounts) sweep.push([t ? JSON.stringify(t) : 'default', t, S]);
    for (const [name, t, S] of sweep) {
      if (S !== null) process.env.FLA_SDPA_SPLITS = String(S); else delete process.env.FLA_SDPA_SPLITS;
      splitPlanOverride(t);
      try {
        const p = splitPlan(o.adapter, args(0), true);
        const ds0 = await o.build(sdpaOp, args(0), 'split');
        const got = await (async () => { o.beginStep(step1(pos)); const enc = gpu.device.createCommandEncoder(); gpu.encode(enc, ds0 as never); gpu.submit(enc); return readT(out, H * D); })();
        let err = '';
        err = ` vs CPU ${relErr(got, want).toExponential(2)}`;
        const ds: unknown[] = [], dsSplit: unknown[] = [];
        for (let l = 0; l < L; l++) { const d = await o.build(sdpaOp, args(l), 'split'); ds.push(...d); dsSplit.push(d[0]); }
        const ms = await time(ds) / L, msSplit = await time(dsSplit) / L;
        const Sx = splitsOf(args(0), ctx1, p);
        log(`decode ${dt} H ${H} KV ${KV} D ${D} ctx ${CTX} ${name} (S ${Sx}, WG ${p.WG} TPK ${p.TPK} UPL ${p.UPL} KU ${p.KU} PF ${p.PF} G ${p.G} QS ${p.QS} HG ${p.HG} KW ${p.KW} SGM ${p.SG_MERGE} KB ${p.KB}): split+combine ${(ms * 1000).toFixed(1)} µs = ${(bytes / ms / 1e6).toFixed(0)} GB/s; split ${(msSplit * 1000).toFixed(1)} µs = ${(bytes / msSplit / 1e6).toFixed(0)} GB/s;${err}`);
      } catch (e) {
        log(`decode ${dt} ${name}: ${(e as Error).message.split('\n').slice(0, 2).join(' | ').slice(0, 300)}`);
      } finally { splitPlanOverride(null); delete process.env.FLA_SDPA_SPLITS; }
    }
  }
}

// 3. direct against split + combine across contexts
if (has('cross') || has('cross-only')) {
  const H = 32, KV = 8, cmax = Number(arg('cross-max') ?? 32768);
  const Bs = (arg('cross-b') ?? '1,8').split(',').map(Number);
  // [name, variant, FLA_SDPA_DIRECT_HEADS, plan tweak]
  const variants: [string, string, string | null, SplitTweak | null][] = [['split', 'split', null, null], ['split SGM0', 'split', null, { SGM: false }],
    ['direct', 'direct', null, null], ['direct GH2', 'direct', '2', null]];
  for (const tw of JSON.parse(arg('cross-plans') ?? '[{"WG":128},{"WG":256},{"WG":256,"KU":1},{"WG":512,"KU":1},{"TPK":4,"WG":256},{"SGM":false}]') as SplitTweak[])
    variants.push([`direct GH1 ${JSON.stringify(tw)}`, 'direct', '1', tw]);
  for (const D of [64, 128]) for (const B of Bs) {
    const layout = (pos: number) => ({ ids: new Int32Array(B), cursors: Array.from({ length: B }, (_, s) => ({ slot: s, start: s, len: 1, pos: pos - (s % 3) })), keep: new Int32Array(B) });
    for (let ctx = 128; ctx <= cmax; ctx *= 2) {
      if (B * ctx * KV * D * 4 > 1.5e9) break;
      const cols = kvCols(ctx, KV * D, 'f32'), layerBytes = 2 * 4 * B * ctx * KV * D;
      const L = Math.max(2, Math.min(16, Math.ceil(256e6 / layerBytes)));
      o.allocState(Array.from({ length: L }, (_, l) => [{ key: `${l}.k`, cols }, { key: `${l}.v`, cols }]).flat(), B);
      const check = ctx === 512;   // the CPU reference at one context (random caches; the others stay zero)
      const kv0 = check ? rand(B * ctx * KV * D) : null, kv1 = check ? rand(B * ctx * KV * D) : null;
      if (check) for (let l = 0; l < L; l++) { o.write(o.state(`${l}.k`), kv0!); o.write(o.state(`${l}.v`), kv1!); }
      const lay = layout(ctx - 1);
      o.beginStep(lay);
      const qv = rand(B * H * D), q = o.act('q', H * D), out = o.act('out', H * D);
      const full = new Float32Array(o.capacity(q) * H * D); full.set(qv); o.write(q, full);
      let want: Float32Array | null = null;
      if (check) { want = new Float32Array(B * H * D); sdpaRef(qv, kv0!, kv1!, want, lay.cursors, { H, KV, D, ctx, window: 0, scale: 1 / Math.sqrt(D), kv: 'f32' }); }
      const args = (l: number) => ({ H, KV, D, ctx, kv: 'f32' as const, q, k: o.state(`${l}.k`), v: o.state(`${l}.v`), out });
      const row: string[] = [];
      for (const [name, v, gh, tw] of variants) {
        if (gh !== null && H / KV % Number(gh)) continue;
        if (gh !== null) process.env.FLA_SDPA_DIRECT_HEADS = gh; else delete process.env.FLA_SDPA_DIRECT_HEADS;
        splitPlanOverride(tw);
        try {
          o.beginStep(lay);
          const ds: unknown[] = [];
          for (let l = 0; l < L; l++) ds.push(...await o.build(sdpaOp, args(l), v));
          let err = '';
          if (want) {
            const d0 = await o.build(sdpaOp, args(0), v);
            const enc = gpu.device.createCommandEncoder(); gpu.encode(enc, d0 as never); gpu.submit(enc);
            err = ` (vs CPU ${relErr(await readT(out, B * H * D), want).toExponential(1)})`;
          }
          const ms = await time(ds) / L;
          row.push(`${name} ${(ms * 1000).toFixed(1)}${err}`);
        } catch (e) {
          row.push(`${name} ERR ${(e as Error).message.split('\n')[0]!.slice(0, 120)}`);
        } finally { delete process.env.FLA_SDPA_DIRECT_HEADS; splitPlanOverride(null); }
      }
      log(`cross D ${D} b ${B} ctx ${ctx} (L ${L}) µs/layer: ${row.join('; ')}`);
    }
  }
}

process.exit(0);
