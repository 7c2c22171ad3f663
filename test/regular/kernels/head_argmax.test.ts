// The output head with argmax folded in (matmul_multi's `argmax`: kernel matmul_gemv_argmax, argmax's first pass in
// the head GEMV's epilogue, then argmax's final pass) against the unfused path — the same head GEMV without it, then
// the argmax op — on the GPU: bitwise the same logits and exactly the same ids and non-finite flags; the logits
// against the CPU reference; the ids exactly argmaxRef's of the GPU's own logits. Vocabularies straddling a
// workgroup's columns, over 1024 workgroups (the 1024-thread final pass), rows 'k' of 1..9 (register blocks of 1..8
// rows), with and without the norm prologue, bf16 / f32, fused / fused_wg / split; every row has a tie at its maximum
// (two equal W rows: the lower id must win) and one case a column that overflows to ±Inf/NaN (flagged).
import { describe, expect, test } from 'bun:test';
import { CpuBackend } from '../../../src/backend/cpu.ts';
import { matmulMulti } from '../../../kernels/matmul/matmul_gemv_multi.ts';
import { argmax } from '../../../kernels/sample/argmax.ts';
import { argmaxRef } from '../../../kernels/sample/argmax.ref.ts';
import { expectClose, prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { gpuBackend, hostWeight, runOn, simpleStep, type Packed } from './harness.ts';

type Variant = 'fused' | 'fused_wg' | 'split';
interface Case { R: number; IN: number; V: number; norm: boolean; dtype: 'bf16' | 'f32'; variant: Variant; inf?: boolean }
const name = (c: Case) => `R=${c.R} IN=${c.IN} V=${c.V}${c.norm ? ' +norm' : ''} ${c.dtype}${c.inf ? ' +inf' : ''} [${c.variant}]`;

async function withVariant<T>(v: Variant, f: () => Promise<T>): Promise<T> {
  const prev = process.env.FLA_KERNEL_MATMUL_MULTI;
  process.env.FLA_KERNEL_MATMUL_MULTI = v;
  try { return await f(); } finally { if (prev === undefined) delete process.env.FLA_KERNEL_MATMUL_MULTI; else process.env.FLA_KERNEL_MATMUL_MULTI = prev; }
}

async function runCase(c: Case): Promise<void> {
  const rng = prng(`head_argmax ${name(c)}`);
  const { R, IN, V } = c;
  const step = simpleStep(R + 3, Array.from({ length: R }, (_, j) => (j * 5 + 2) % (R + 3)));
  const x = randn(R * IN, rng, 2, 0.3), g = randn(IN, rng, 0.3, 1), w = randn(V * IN, rng, 1 / Math.sqrt(IN));
  // row r's tie: W rows t1 < t2 both along x_r (the norm's weight folded in), far above every other logit
  const ties: [number, number][] = [];
  for (let r = 0; r < R; r++) {
    // each row its own pair: a later row's pair must not overwrite an earlier row's W rows
    const used = new Set(ties.flat());
    let t1: number, t2: number;
    do { t1 = Math.floor(rng.next() * (V / 2)); t2 = t1 + 1 + Math.floor(rng.next() * (V / 2 - 1)); } while (used.has(t1) || used.has(t2) || (c.inf && (t1 === V - 2 || t2 === V - 2)));
    ties.push([t1, t2]);
    let n2 = 0;
    for (let i = 0; i < IN; i++) n2 += (x[r * IN + i]! * (c.norm ? g[i]! : 1)) ** 2;
    for (let i = 0; i < IN; i++) w[t1 * IN + i] = w[t2 * IN + i] = 8 * x[r * IN + i]! * (c.norm ? g[i]! : 1) / Math.sqrt(n2);
  }
  // +inf: row 0's logit j0 overflows to +Inf (W row j0 = 3e38 along row 0's signs: it wins), row 1 is all NaN (an
  // Inf in x; NaN counts as −∞, so id 0); both flagged
  const j0 = V - 2;
  if (c.inf) {
    for (let i = 0; i < IN; i++) w[j0 * IN + i] = 3e38 * Math.sign(x[i]! * (c.norm ? g[i]! : 1));
    x[IN + 3] = Infinity;
  }
  const run = (o: Parameters<typeof runOn>[0], kind: 'cpu' | 'gpu', fold: boolean) => runOn(o, kind, step, {}, async io => {
    const xt = io.o.act('x', IN, { rows: 'k' }), h = io.o.act('h', IN, { rows: 'k' }), y = io.o.act('logits', V, { rows: 'k' });
    const out = io.o.act('out', 2, { rows: 'k' }), ids = io.o.act('ids', 1, { rows: 'k' });
    io.put(xt, x); io.put(y); io.put(out); io.put(ids);
    const norm = c.norm ? { w: io.weight('g', hostWeight(g, [IN]), false), eps: 1e-5, h } : null;
    const parts = [{ w: io.weight('w', hostWeight(w, [V, IN], c.dtype)), y }];
    if (fold) await matmulMulti(io.o, xt, norm, parts, 'none', false, null, { out, ids });
    else { await matmulMulti(io.o, xt, norm, parts); await argmax(io.o, y, out, ids); }
    return { y, out, ids };
  });
  const [fused, plain] = await withVariant(c.variant, async () => [await run(gpuBackend(), 'gpu', true), await run(gpuBackend(), 'gpu', false)]);
  const ref = await run(new CpuBackend(), 'cpu', true);
  const bits = (p: Packed) => new Uint32Array(p.data.buffer, p.data.byteOffset, p.data.length);
  expect(Array.from(bits(fused.y!)), `${name(c)}: logits bitwise as without the fold`).toEqual(Array.from(bits(plain.y!)));
  expect(Array.from(fused.out!.data), `${name(c)}: (id, flag) as the argmax op's`).toEqual(Array.from(plain.out!.data));
  expect(Array.from(bits(fused.ids!)), `${name(c)}: ids as the argmax op's`).toEqual(Array.from(bits(plain.ids!)));
  const want = argmaxRef(fused.y!.data, R, V), got = bits(fused.ids!);
  for (let r = 0; r < R; r++) {
    expect([fused.out!.data[2 * r], fused.out!.data[2 * r + 1], got[r]], `${name(c)} row ${r}`).toEqual([want.ids[r], want.nonFinite[r], want.ids[r]]);
    const [t1, t2] = ties[r]!, special = c.inf && r < 2;
    if (!special) expect(fused.y!.data[r * V + t1], `${name(c)} row ${r}: the tie's logits`).toBe(fused.y!.data[r * V + t2]!);
    if (!special && fused.y!.data[r * V + j0]! !== Infinity) expect(got[r], `${name(c)} row ${r}: the lower of the tie`).toBe(t1);
    if (special) expect([got[r], fused.out!.data[2 * r + 1]], `${name(c)} row ${r}: +Inf / all-NaN row`).toEqual([r === 0 ? j0 : 0, 1]);
    else if (!c.inf) expect(fused.out!.data[2 * r + 1], `${name(c)} row ${r}: non-finite flag`).toBe(0);
  }
  const live = (d: Float32Array) => d.map((v, i) => (c.inf && (i % V === j0 || Math.floor(i / V) === 1) ? 0 : v));
  expectClose(live(fused.y!.data), live(ref.y!.data), { seed: rng, what: `${name(c)} logits` });
  if (!c.inf) expect(Array.from(fused.out!.data), `${name(c)}: (id, flag) as the CPU reference's`).toEqual(Array.from(ref.out!.data));
}

const SLOW = 600_000;   // ms: cold shader JIT on lavapipe

describe.skipIf(!HAS_GPU)('head argmax (matmul_gemv_argmax)', () => {
  test('fused: rows 1..9, vocabularies around a workgroup\'s columns and past 1024 workgroups, with and without the norm', async () => {
    await runCase({ R: 1, IN: 264, V: 40000, norm: true, dtype: 'bf16', variant: 'fused' });
    await runCase({ R: 1, IN: 130, V: 1000, norm: false, dtype: 'f32', variant: 'fused' });
    await runCase({ R: 3, IN: 264, V: 777, norm: true, dtype: 'bf16', variant: 'fused', inf: true });
    await runCase({ R: 9, IN: 264, V: 500, norm: true, dtype: 'bf16', variant: 'fused' });
  }, SLOW);

  test('fused_wg (workgroup-memory reductions) and split (the argmax op after the head)', async () => {
    await runCase({ R: 1, IN: 264, V: 1000, norm: true, dtype: 'bf16', variant: 'fused_wg', inf: true });
    await runCase({ R: 3, IN: 264, V: 777, norm: true, dtype: 'bf16', variant: 'fused_wg' });
    await runCase({ R: 1, IN: 264, V: 1000, norm: true, dtype: 'bf16', variant: 'split' });
  }, SLOW);
});
