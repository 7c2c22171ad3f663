// fla bench measurements: prompt processing (pp), token generation (tg), time to first token, aggregate batched
// decode, long-context decode over a KV cache filled with random values, per-kernel GPU times from timestamp queries,
// and the adapter's measured bandwidth and compute ceilings.
import { kvCacheDtype } from '../../kernels/attention/sdpa.ts';
import { matmul, matmulOp } from '../../kernels/matmul/matmul.ts';
import copySrc from '../../kernels/util/copy.wgsl' with { type: 'text' };
import { GpuBackend } from '../backend/gpu.ts';
import { dispatch, grid } from '../gpu/launch.ts';
import { nativeStdoutToStderr } from '../gpu/device.ts';
import type { Engine } from '../runtime/engine.ts';
import { argmax } from '../runtime/sample.ts';

export { kvCacheDtype };

export interface Stat { mean: number; std: number; n: number }

export function stat(xs: number[]): Stat {
  const n = xs.length, mean = xs.reduce((a, b) => a + b, 0) / n;
  return { mean, std: n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0, n };
}

function ids(n: number, V: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % V);
}

/** Prompt tokens/s of a p-token prefill in a fresh slot, and the time to first token (prefill + first sample). */
export async function promptSpeed(e: Engine, p: number, seed: number): Promise<{ tps: number; ttftMs: number }> {
  const slot = e.acquire();
  try {
    const t0 = performance.now();
    const [logits] = await e.run([{ slot, tokens: ids(p, e.vocab, seed) }]);
    argmax(logits!);
    const ms = performance.now() - t0;
    return { tps: p / (ms / 1000), ttftMs: ms };
  } finally { e.release(slot); }
}

/**
 * Aggregate decode tokens/s of b sequences advancing together for n steps (after a short prompt each): greedy, the
 * tokens chosen on the device and each step submitted before the previous one's ids are back, as fla run -t 0
 * decodes (FLA_PIPELINE=0: one step at a time).
 */
export async function decodeSpeed(e: Engine, b: number, n: number, seed: number): Promise<number> {
  const slots = Array.from({ length: b }, () => e.acquire());
  try {
    const first = await e.runArgmax(slots.map((slot, i) => ({ slot, tokens: ids(8, e.vocab, seed + i) })));
    return await timedDecode(e, slots, first, n);
  } finally { slots.forEach(s => e.release(s)); }
}

/**
 * Tokens/s of n greedy decode steps of `slots` from their `first` choices, pipelined where the engine can run ahead:
 * as generate's decode, groups of 1, 2, 4, … Engine.stepsPerSubmit steps, up to two full groups in flight.
 */
async function timedDecode(e: Engine, slots: number[], first: { id: number }[], n: number): Promise<number> {
  const ahead = e.canRunAhead(false), group = e.stepsPerSubmit;
  const t0 = performance.now();
  const queue = [e.runArgmax(slots.map((slot, i) => ({ slot, tokens: [first[i]!.id] })))];
  let submitted = 1, size = 1;   // groups of 1, 2, 4, … as generate's decode
  while (queue.length) {
    for (let c; ahead && queue.length <= group && (c = Math.min(size, n - submitted)) > 0; submitted += c, size = Math.min(group, 2 * size))
      for (const p of e.runArgmaxFedSteps(slots, c)) { p.catch(() => {}); queue.push(p); }
    const r = await queue.shift()!;
    if (!ahead && submitted < n) { queue.push(e.runArgmax(slots.map((slot, i) => ({ slot, tokens: [r[i]!.id] })))); submitted++; }
  }
  return (slots.length * n) / ((performance.now() - t0) / 1000);
}

/** Per-kernel GPU time of one decode step of b sequences (after an 8-token prompt each that is not profiled). */
export async function decodeStepProfile(e: Engine, ceil: Ceilings | null, b = 1): Promise<KernelRow[]> {
  const slots = Array.from({ length: b }, () => e.acquire());
  try {
    const first = await e.runArgmax(slots.map((slot, i) => ({ slot, tokens: ids(8, e.vocab, 9 + i) })));
    return await kernelProfile(e, () => e.runArgmax(slots.map((slot, i) => ({ slot, tokens: [first[i]!.id] }))), ceil);
  } finally { slots.forEach(s => e.release(s)); }
}

export interface KernelRow { kernel: string; calls: number; ms: number; share: number; gbs: number | null; tflops: number | null; bwFrac: number | null; peakFrac: number | null }

/** Per-kernel GPU time of one run of `work`, with bytes/FLOPs against the ceilings. */
export async function kernelProfile(e: Engine, work: () => Promise<unknown>, ceil: Ceilings | null): Promise<KernelRow[]> {
  const o = e.model.backend;
  if (!(o instanceof GpuBackend) || !o.gpu.timestamps) return [];
  o.profile = new Map();
  try { await work(); } finally { /* keep the tally */ }
  const prof = o.profile;
  o.profile = null;
  const total = [...prof.values()].reduce((a, v) => a + v.ns, 0);
  return [...prof.entries()].sort((a, b) => b[1].ns - a[1].ns).map(([kernel, v]) => {
    const s = v.ns / 1e9;
    // timestamps are quantized: a kernel shorter than one tick reads as 0 ns, and then has no rate
    const gbs = v.bytes && s > 0 ? v.bytes / s / 1e9 : null, tflops = v.flops && s > 0 ? v.flops / s / 1e12 : null;
    return {
      kernel, calls: v.count, ms: v.ns / 1e6, share: v.ns / total, gbs, tflops,
      bwFrac: gbs !== null && ceil ? gbs / ceil.gbs : null, peakFrac: tflops !== null && ceil ? tflops / ceil.tflops : null,
    };
  });
}

export interface Ceilings {
  gbs: number; tflops: number;
  /** the f16 GEMM on subgroup matrices (tensor cores) at 4096³: f32-grade split and single product; null where the
   *  adapter has none; error: why it did not run */
  tc: { split: number; single: number } | { error: string } | null;
}

/**
 * Measured on the adapter: a large buffer copy (GB/s, read + write), a large f32-weight matmul (TFLOP/s), and
 * where the adapter has f16 subgroup matrices the tensor-core GEMM at 4096 × 4096 × 4096 (both variants).
 */
export async function ceilings(o: GpuBackend): Promise<Ceilings> {
  const gpu = o.gpu;
  const bytes = Math.min(1 << 30, Math.floor(gpu.maxBinding / 2 / 16) * 16);
  const a = gpu.buffer(bytes, 'copy src'), b = gpu.buffer(bytes, 'copy dst');
  const d = await dispatch(gpu, { label: 'copy', source: copySrc }, { src: { buffer: a }, dst: { buffer: b }, dims: { buffer: gpu.uniform(new Uint32Array([bytes / 16])) } }, grid(Math.ceil(bytes / 16 / 256)));
  const time = async (ds: () => Promise<void> | void, reps: number) => {
    await ds();
    await gpu.device.queue.onSubmittedWorkDone();
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) await ds();
    await gpu.device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / 1000 / reps;
  };
  const copy4 = () => { const enc = gpu.device.createCommandEncoder(); gpu.encode(enc, [d, d, d, d]); gpu.submit(enc); };
  // a GPU that was idle runs its first seconds of work at lower clocks (H200: the first bench after a machine
  // starts measured half the figures of the next): copy for 1 s, then until two rounds agree within 3 %, at most 3 s
  if (gpu.summary.type !== 'cpu') {
    const t0 = performance.now();
    for (let last = 0; performance.now() - t0 < 3000;) {
      const s = await time(copy4, 5);
      if (performance.now() - t0 > 1000 && Math.abs(s - last) < 0.03 * last) break;
      last = s;
    }
  }
  const copyS = await time(copy4, 5) / 4;
  a.destroy(); b.destroy();
  // matmul peak: 1024 rows × 4096 × 4096 f32 weights through the selected GEMM
  const N = gpu.summary.type === 'cpu' ? 128 : 2048, IN = gpu.summary.type === 'cpu' ? 512 : 4096, OUT = IN;
  o.allocState([], 1);
  o.beginStep({ ids: new Int32Array(N), cursors: [{ slot: 0, start: 0, len: N }], keep: new Int32Array(0) });
  const x = o.act('bench_x', IN), y = o.act('bench_y', OUT);
  const w = o.weight('bench_w', { shape: [OUT, IN], dtype: 'f32', synthetic: { seed: 7, scale: 0.01 } }, false);
  await o.settle();
  await matmul(o, x, w, null, 'none', y);
  const mm = o.dispatchesForBench();
  const mmS = await time(() => { const enc = gpu.device.createCommandEncoder(); gpu.encode(enc, [...mm, ...mm, ...mm, ...mm]); gpu.submit(enc); }, 3) / 4;
  return { gbs: (2 * bytes) / copyS / 1e9, tflops: (2 * N * IN * OUT) / mmS / 1e12, tc: await nativeStdoutToStderr(() => tensorCores(o, time)) };
}

/** TFLOP/s of the sgmat and sgmat_f16 matmul variants at 4096³ (f16 weights), or null where they cannot run. */
async function tensorCores(o: GpuBackend, time: (f: () => void, reps: number) => Promise<number>): Promise<Ceilings['tc']> {
  const S = 4096, gpu = o.gpu;
  const shape = { n: S, k: 0, b: 1, lens: [S], maxLen: S, cursors: [] };
  const can = (v: string) => matmulOp.variants[v]!.supports?.({ x: { rows: 'n' }, w: { dtype: 'f16' } } as any, { adapter: o.adapter, step: shape }) ?? true;
  if (!can('sgmat') || !can('sgmat_f16')) return null;
  try {
    o.beginStep({ ids: new Int32Array(S), cursors: [{ slot: 0, start: 0, len: S }], keep: new Int32Array(0) });
    const x = o.act('bench_x', S), y = o.act('bench_y', S);
    const h = new Float16Array(S * S);
    for (let i = 0; i < h.length; i++) h[i] = ((i * 2654435761) % 1000 - 500) * 2e-5;
    const w = o.weight('bench_w16', { shape: [S, S], dtype: 'f16', bits16: new Uint16Array(h.buffer) }, true);
    const args = { x, w, bias: null, y, act: 'none' as const, accumulate: false };
    const out: number[] = [];
    for (const v of ['sgmat', 'sgmat_f16']) {
      const ds = await o.build(matmulOp, args, v);
      out.push((2 * S * S * S) / (await time(() => { const enc = gpu.device.createCommandEncoder(); gpu.encode(enc, [...ds, ...ds, ...ds, ...ds]); gpu.submit(enc); }, 3) / 4) / 1e12);
    }
    return { split: out[0]!, single: out[1]! };
  } catch (e) {
    return { error: (e as Error).message.split('\n')[0]!.slice(0, 160) };
  } finally { o.dispatchesForBench(); }
}

/** The KV-cache states of a model (attention layers' `<l>.k` / `<l>.v`), with the bytes one slot's cache holds. */
export function kvStates(e: Engine): { key: string; bytes: number }[] {
  return e.model.arch.state(e.model.cfg, e.ctx).filter(s => /\.[kv]$/.test(s.key)).map(s => ({ key: s.key, bytes: 4 * s.cols }));
}

/**
 * Decode tokens/s of one sequence with `ctx` tokens already in its KV cache: random keys and values are written
 * straight into the cache (one buffer of them, shared by every layer) instead of a prefill, then n tokens decode.
 */
export async function longDecodeSpeed(e: Engine, ctx: number, n: number, seed: number, rerecord = false): Promise<number> {
  const o = e.model.backend, slot = e.acquire(), replay = process.env.FLA_NO_REPLAY;
  // rerecord: run the model for each step (no replay), so the dispatches' costs count this context's KV bytes
  // rather than those of the position the decode step was first recorded at (the per-kernel profile)
  if (rerecord) process.env.FLA_NO_REPLAY = '1';
  try {
    const states = kvStates(e);
    if (states.length) {
      const words = o.capacity(o.state(states[0]!.key)) * states[0]!.bytes / 4;
      const vals = new Float32Array(kvCacheDtype() === 'f32' ? words : 2 * words);
      let x = seed * 2654435761 >>> 0;
      for (let i = 0; i < vals.length; i++) { x = (x * 1664525 + 1013904223) >>> 0; vals[i] = (x / 2 ** 31 - 1) * 1.7; }   // uniform, variance ≈ 1
      const data = kvCacheDtype() === 'f32' ? vals : new Float32Array(words);
      if (kvCacheDtype() === 'f16') new Float16Array(data.buffer).set(vals);
      else if (kvCacheDtype() === 'bf16') { const u = new Uint16Array(data.buffer), f = new Uint32Array(vals.buffer); for (let i = 0; i < u.length; i++) u[i] = f[i]! >>> 16; }
      for (const s of states) o.write(o.state(s.key), data);
    }
    e.positions[slot] = ctx;
    return await timedDecode(e, [slot], await e.runArgmax([{ slot, tokens: [seed % e.vocab] }]), n);
  } finally {
    e.release(slot);
    if (rerecord) { if (replay === undefined) delete process.env.FLA_NO_REPLAY; else process.env.FLA_NO_REPLAY = replay; }
  }
}
