// The standard golden suite for a fixture checkpoint (../shared/fixtures/<name>): logits of every reference
// sequence, greedy decode against gen.tokens/gen.scores, prefill-then-decode equal to one pass, on each backend.
import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SGMAT_MIN_ROWS } from '../../kernels/matmul/matmul_sgmat.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { fixture } from './fixtures.ts';
import { gpu } from './gpu.ts';
import { BACKENDS, argmaxRows, engine, greedyBatch, reference, relErr, type BackendKind } from './model.ts';

/**
 * Allowed max|Δ|/max|ref| of each fixture's logits: about 2× the largest error measured over goldenError's three
 * checks on the CPU backend and on lavapipe (printed by bun test/helpers/measure_golden.ts; measured 2026-12-01 at
 * 575ccfa plus the head/logits change). A GPU whose kernels round differently (other variants, f16 or subgroup
 * paths) may need its own measurement: a failure on such a card is a measurement to make, not a bound to raise.
 */
export const TOLERANCE: Record<string, number> = {
  'abc-tiny':             4.5e-6,  // measured: CPU backend 1.03e-06, lavapipe 2.25e-06
  'delta_net-tiny':       3.2e-6,  // measured: CPU backend 1.34e-06, lavapipe 1.60e-06
  'gated_deltanet-tiny':  3.5e-6,  // measured: CPU backend 1.72e-06, lavapipe 8.78e-07
  'gla-tiny':             8.1e-6,  // measured: CPU backend 2.37e-06, lavapipe 4.04e-06
  'linear_attn-tiny':     4.2e-6,  // measured: CPU backend 1.54e-06, lavapipe 2.08e-06
  'llama-tiny':           1.7e-6,  // measured: CPU backend 8.03e-07, lavapipe 6.93e-07
  'qwen2-tiny':           8.8e-7,  // measured: CPU backend 4.23e-07, lavapipe 4.40e-07 (vocab 96 regeneration, 2026-12-02)
  'qwen3-tiny':           9.2e-7,  // measured: CPU backend 3.97e-07, lavapipe 4.57e-07
  'qwen3_next-tiny':      1.2e-6,  // measured: CPU backend 5.57e-07, lavapipe 5.31e-07
  'qwen3_moe-tiny':       8.6e-6,  // measured: CPU backend 4.31e-06, lavapipe 3.53e-06 (vocab 96 regeneration, 2026-12-02)
  'rwkv7-tiny':           2.3e-6,  // measured: CPU backend 1.13e-06, lavapipe 1.09e-06
  'transformer-tiny':     1.4e-6,  // measured: CPU backend 6.21e-07, lavapipe 6.70e-07
};

/**
 * Hardware GPUs whose transcendental functions round differently from the CPU and lavapipe (exp/log/softplus in the
 * gates): measured there with test/helpers/measure_golden.ts, about 2× that. Fixtures not listed use TOLERANCE.
 */
export const HW_TOLERANCE: Record<string, number> = {
  'gated_deltanet-tiny':  1.4e-5,  // measured: NVIDIA H200 6.75e-06 (dawn.node, 2026-12-01; 6.99e-06 recurrent-only, 7.07e-06 with the old GEMV; H100 6.6e-06 in 2026-11)
  'qwen2-tiny':           9.4e-7,  // measured: NVIDIA H200 4.69e-07 (dawn.node, 2026-12-02, the vocab 96 fixture)
  'qwen3_moe-tiny':       9.7e-6,  // measured: NVIDIA H200 4.87e-06 (dawn.node, 2026-12-02, the vocab 96 fixture)
};

/** The tolerance of fixture `name` on backend `kind` (the shared GPU of the tests: software or hardware). */
export function toleranceFor(name: string, kind: BackendKind): number | undefined {
  const hw = kind === 'gpu' && gpu !== null && gpu.summary.type !== 'cpu';
  return (hw ? HW_TOLERANCE[name] : undefined) ?? TOLERANCE[name];
}

/** Per sequence i of the fixture: relErr of the logits of one uncached pass over input_ids.i against logits.i. */
export async function logitsErrors(dir: string, kind: BackendKind): Promise<{ len: number; err: number }[]> {
  const ref = reference(dir);
  const e = engine(dir, kind);
  const out: { len: number; err: number }[] = [];
  for (let i = 0; i < 6; i++) {
    const slot = e.acquire();
    const ids = ref.ints(`input_ids.${i}`);
    const [got] = await e.run([{ slot, tokens: ids, keepAll: true }]);
    e.release(slot);
    out.push({ len: ids.length, err: relErr(got!, ref.floats(`logits.${i}`)) });
  }
  return out;
}

/** Cached, teacher-forced decode after gen.prompt: relErr of each step's logits against gen.scores, and the argmax tokens. */
export async function decodeErrors(dir: string, kind: BackendKind): Promise<{ errs: number[]; got: number[]; want: number[] }> {
  const ref = reference(dir);
  const e = engine(dir, kind);
  const want = ref.ints('gen.tokens'), scores = ref.floats('gen.scores');
  const slot = e.acquire();
  let [logits] = await e.run([{ slot, tokens: ref.ints('gen.prompt') }]);
  const got: number[] = [], errs: number[] = [];
  for (let t = 0; t < want.length; t++) {
    errs.push(relErr(logits!, scores.subarray(t * e.vocab, (t + 1) * e.vocab)));
    got.push(argmaxRows(logits!, e.vocab)[0]!);
    [logits] = await e.run([{ slot, tokens: [want[t]!] }]);   // teacher-forced: a near-tie cannot derail the rest
  }
  e.release(slot);
  return { errs, got, want };
}

/** Prefill 70, decode 5, prefill the rest of input_ids.5 (130 tokens): relErr of all rows against logits.5. */
export async function splitError(dir: string, kind: BackendKind): Promise<number> {
  const ref = reference(dir);
  const ids = ref.ints('input_ids.5');
  const e = engine(dir, kind);
  const slot = e.acquire();
  const rows = [(await e.run([{ slot, tokens: ids.slice(0, 70), keepAll: true }]))[0]!];
  for (let t = 70; t < 75; t++) rows.push((await e.run([{ slot, tokens: [ids[t]!] }]))[0]!);
  rows.push((await e.run([{ slot, tokens: ids.slice(75), keepAll: true }]))[0]!);
  e.release(slot);
  const got = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let o = 0;
  for (const r of rows) { got.set(r, o); o += r.length; }
  return relErr(got, ref.floats('logits.5'));
}

/** The largest of the three measures above: what TOLERANCE is set from (test/helpers/measure_golden.ts prints it). */
export async function goldenError(dir: string, kind: BackendKind): Promise<number> {
  const l = await logitsErrors(dir, kind), d = await decodeErrors(dir, kind), s = await splitError(dir, kind);
  return Math.max(...l.map(x => x.err), ...d.errs, s);
}

export function goldenSuite(name: string): void {
  const dir = fixture(name);
  if (TOLERANCE[name] === undefined) throw new Error(`golden.ts: no tolerance for fixture ${name}; measure it (bun test/helpers/measure_golden.ts ${name}) and add it to TOLERANCE`);
  describe.skipIf(!dir)(`${name} golden`, () => {
    for (const kind of BACKENDS) {
      const tol = toleranceFor(name, kind)!;
      test(`${kind}: logits of every reference sequence within ${tol}`, async () => {
        for (const { len, err } of await logitsErrors(dir!, kind)) expect(err, `sequence of ${len} tokens`).toBeLessThan(tol);
      });

      test(`${kind}: cached greedy decode equals gen.tokens and gen.scores`, async () => {
        const margin = JSON.parse(readFileSync(join(dir!, 'reference.json'), 'utf8')).min_greedy_margin as number;
        const { errs, got, want } = await decodeErrors(dir!, kind);
        errs.forEach((err, t) => expect(err, `decode step ${t}`).toBeLessThan(tol));
        if (margin > 1e-3) expect(got).toEqual(want);
        else expect(got.filter((g, i) => g !== want[i]).length).toBeLessThanOrEqual(1);
      });

      test(`${kind}: prefill 70, decode 5, prefill the rest equals one pass over 130 tokens`, async () => {
        expect(await splitError(dir!, kind)).toBeLessThan(tol);
      });
    }
  });
}

/** Packed batches equal one-by-one runs; batched greedy decode equals one-by-one; budget splits are exact (test/varlen). */
/**
 * Six reference sequences packed in one step: relErr of each one's logits against the same sequence run alone —
 * except, where the GPU runs GEMMs of ≥ SGMAT_MIN_ROWS rows on tensor cores, a sequence shorter than that alone takes
 * the f32 GEMV and packed the tensor-core GEMM (two f32-grade arithmetics): it is measured against the reference logits
 * (`vsRef`, held to the fixture's golden tolerance).
 */
export async function packedErrors(dir: string, kind: BackendKind): Promise<{ len: number; err: number; vsRef: boolean }[]> {
  const ref = reference(dir);
  const e = engine(dir, kind, 8, 4096);
  const be = e.model.backend, tc = be instanceof GpuBackend && be.gpu.subgroupMatrix && be.f16Weights;
  const order = [5, 0, 3, 1, 4, 2], seqs = order.map(i => ref.ints(`input_ids.${i}`));
  const alone: Float32Array[] = [];
  for (const s of seqs) {
    const slot = e.acquire();
    alone.push((await e.run([{ slot, tokens: s, keepAll: true }]))[0]!);
    e.release(slot);
  }
  const slots = seqs.map(() => e.acquire());
  const packed = await e.run(seqs.map((s, i) => ({ slot: slots[i]!, tokens: s, keepAll: true })));
  slots.forEach(s => e.release(s));
  return seqs.map((s, i) => tc && s.length < SGMAT_MIN_ROWS
    ? { len: s.length, err: relErr(packed[i]!, ref.floats(`logits.${order[i]}`)), vsRef: true }
    : { len: s.length, err: relErr(packed[i]!, alone[i]!), vsRef: false });
}

export function varlenSuite(name: string): void {
  const dir = fixture(name);
  describe.skipIf(!dir)(`${name} varlen`, () => {
    for (const kind of BACKENDS) {
      test(`${kind}: six sequences packed in one step equal each run alone (1e-5)`, async () => {
        const tol = toleranceFor(name, kind)!;
        for (const { len, err, vsRef } of await packedErrors(dir!, kind)) expect(err, `sequence of ${len} tokens${vsRef ? ' (packed vs the reference)' : ''}`).toBeLessThan(vsRef ? tol : 1e-5);
      });

      test(`${kind}: batched greedy decode equals one-by-one, sequences finishing at different steps`, async () => {
        const ref = reference(dir!);
        const e = engine(dir!, kind, 8, 4096);
        const prompts = [ref.ints('input_ids.1'), ref.ints('gen.prompt'), ref.ints('input_ids.0'), ref.ints('input_ids.2').slice(0, 20)];
        const steps = [12, 5, 9, 1];
        const single: number[][] = [];
        for (let i = 0; i < prompts.length; i++) single.push((await greedyBatch(e, [prompts[i]!], [steps[i]!]))[0]!);
        expect(await greedyBatch(e, prompts, steps)).toEqual(single);
      });

      test(`${kind}: a step larger than the budget is split and still equals one pass`, async () => {
        const ref = reference(dir!);
        const whole = engine(dir!, kind, 2, 4096), split = engine(dir!, kind, 2, 64);
        const ids = ref.ints('input_ids.5');
        const a = (await whole.run([{ slot: whole.acquire(), tokens: ids, keepAll: true }]))[0]!;
        const b = (await split.run([{ slot: split.acquire(), tokens: ids, keepAll: true }]))[0]!;
        expect(relErr(b, a)).toBeLessThan(1e-5);
      });
    }
  });
}
