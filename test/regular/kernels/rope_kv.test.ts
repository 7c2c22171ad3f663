// rope_kv (kernels/attention/rope_kv): the fused q/k/v bias + per-head q/k RMSNorm + RoPE + KV-cache append, on the
// GPU against its CPU reference (the unfused references one after the other) and against the unfused GPU ops
// (rms_norm per head, rope ×2, kv_store ×2, with the biases added beforehand). Head dims 64 and 128 (and 80, 256:
// several elements per thread, and the 256-thread workgroup), GQA ratios 1, 2 and 4, partial rotary, norm plain and
// zero-centred, biases, f32 / bf16 / f16 caches; steps packing several sequences at different positions (prefill
// chunks and decode tokens together, positions 0, 63, 64, 127 around the 64-row edges), three cache slots.
import { describe, expect, test } from 'bun:test';
import { invFreq, ropeTable } from '../../../kernels/attention/rope.ref.ts';
import { rope } from '../../../kernels/attention/rope.ts';
import { ropeKv, ropeKvAux } from '../../../kernels/attention/rope_kv.ts';
import { kvStore, type KvDtype } from '../../../kernels/attention/sdpa.ts';
import { rmsNorm } from '../../../kernels/norm/rms_norm.ts';
import { CpuBackend } from '../../../src/backend/cpu.ts';
import { expectClose, prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { pack16, stepOf, values } from './attention_steps.ts';
import { gpuBackend, hostWeight, runOn, type Body, type Packed } from './harness.ts';

const SLOTS = 3;
type Seq = { slot: number; len: number; pos: number };
interface Case { H: number; KV: number; D: number; R?: number; norm?: 'plain' | 'plusOne'; bias?: boolean; kv?: KvDtype; seqs: Seq[] }
const name = (c: Case) => `H=${c.H} KV=${c.KV} D=${c.D} R=${c.R ?? c.D}${c.norm ? ` norm ${c.norm}` : ''}${c.bias ? ' +bias' : ''} kv ${c.kv ?? 'f32'} seqs ${c.seqs.map(s => `${s.pos}+${s.len}@${s.slot}`).join(',')}`;


async function runCase(c: Case): Promise<void> {
  const what = `rope_kv ${name(c)}`, rng = prng(what);
  const { H, KV, D } = c, R = c.R ?? D, KVD = KV * D, dt = c.kv ?? 'f32';
  const step = stepOf(c.seqs), N = step.ids.length, ctx = Math.max(...c.seqs.map(s => s.pos + s.len)) + 3, P = ctx;
  const q = randn(N * H * D, rng), k = randn(N * KVD, rng), v = randn(N * KVD, rng);
  const qn = c.norm ? randn(D, rng, 0.3, c.norm === 'plain' ? 1 : 0) : null, kn = c.norm ? randn(D, rng, 0.3, c.norm === 'plain' ? 1 : 0) : null;
  const qb = c.bias ? randn(H * D, rng, 0.5) : null, kb = c.bias ? randn(KVD, rng, 0.5) : null, vb = c.bias ? randn(KVD, rng, 0.5) : null;
  const aux = ropeKvAux({ H, KV, D }, qn, kn, qb, kb, vb);
  const table = ropeTable(invFreq(10000, R), P);
  const cols = dt === 'f32' ? ctx * KVD : ctx * KVD / 2;
  const init = (x: Float32Array) => (dt === 'f32' ? x : pack16(x, dt));
  const setup = { states: [{ key: 'k', cols }, { key: 'v', cols }], slots: SLOTS, init: { k: init(randn(SLOTS * ctx * KVD, rng)), v: init(randn(SLOTS * ctx * KVD, rng)) } };
  const norm = c.norm ? { eps: 1e-6, plusOne: c.norm === 'plusOne' } : null;

  const fused: Body = async io => {
    const qt = io.o.act('q', H * D), kt = io.o.act('k', KVD), vt = io.o.act('v', KVD);
    io.put(qt, q); io.put(kt, k); io.put(vt, v);
    const tw = io.weight('rope', hostWeight(table, [2, P, R / 2]), false);
    const aw = aux ? io.weight('aux', hostWeight(aux, [aux.length]), false) : null;
    await ropeKv(io.o, { q: qt, k: kt, v: vt, kc: io.o.state('k'), vc: io.o.state('v'), table: tw, aux: aw, H, KV, D, R, ctx, kv: dt, norm, bias: !!c.bias });
    return { q: qt, k: kt, v: vt, kc: io.o.state('k'), vc: io.o.state('v') };
  };
  // the ops rope_kv replaces, on the GPU (the biases added on the host, as the projections' epilogue adds them)
  const unfused: Body = async io => {
    const add = (x: Float32Array, b: Float32Array | null, W: number) => (b ? x.map((e, i) => e + b[i % W]!) : x);
    const qt = io.o.act('q', H * D), kt = io.o.act('k', KVD), vt = io.o.act('v', KVD);
    io.put(qt, add(q, qb, H * D)); io.put(kt, add(k, kb, KVD)); io.put(vt, add(v, vb, KVD));
    const tw = io.weight('rope', hostWeight(table, [2, P, R / 2]), false);
    let qr = qt, kr = kt;
    if (norm) {
      qr = io.o.act('qn', H * D); kr = io.o.act('kn', KVD);
      io.put(qr); io.put(kr);
      await rmsNorm(io.o, qt, io.weight('qnw', hostWeight(qn!, [D]), false), qr, { eps: norm.eps, headDim: D, plusOne: norm.plusOne });
      await rmsNorm(io.o, kt, io.weight('knw', hostWeight(kn!, [D]), false), kr, { eps: norm.eps, headDim: D, plusOne: norm.plusOne });
    }
    await rope(io.o, qr, tw, { D, R });
    await rope(io.o, kr, tw, { D, R });
    await kvStore(io.o, kr, io.o.state('k'), ctx, dt);
    await kvStore(io.o, vt, io.o.state('v'), ctx, dt);
    return { q: qr, kc: io.o.state('k'), vc: io.o.state('v') };
  };

  if (process.env.FLA_TEST_VERBOSE === "1") console.log(what);
  const want = await runOn(new CpuBackend(), 'cpu', step, setup, fused);
  const got = await runOn(gpuBackend(), 'gpu', step, setup, fused);
  const old = await runOn(gpuBackend(), 'gpu', step, setup, unfused);
  const vals = (p: Packed, key: string) => (key === 'kc' || key === 'vc' ? values(p.data, dt) : p.data);
  // against the reference: f32 rounding; a 16-bit cache may round the other way at a tie (one bf16/f16 ulp)
  for (const key of ['q', 'kc', 'vc']) {
    const tol = key === 'q' || dt === 'f32' ? 1e-5 : dt === 'f16' ? 2e-3 : 1.6e-2;
    expectClose(vals(got[key]!, key), vals(want[key]!, key), { rtol: tol, what: `${what} ${key} vs the reference`, seed: rng, shape: want[key]!.shape });
  }
  // against the unfused GPU ops: the same arithmetic in the same order
  for (const key of ['q', 'kc', 'vc'])
    expectClose(vals(got[key]!, key), vals(old[key]!, key), { rtol: 1e-6, what: `${what} ${key} vs the unfused ops`, seed: rng, shape: old[key]!.shape });
  // k and v are inputs: left as they were
  expect(Array.from(got.k!.data)).toEqual(Array.from(k));
  expect(Array.from(got.v!.data)).toEqual(Array.from(v));
}

const SLOW = 600_000;   // ms: cold shader JIT on lavapipe
// prefill chunks and decode tokens of three sequences in one step, positions around the 64-row edges
const MIXED: Seq[] = [{ slot: 1, len: 1, pos: 63 }, { slot: 0, len: 5, pos: 60 }, { slot: 2, len: 1, pos: 0 }, { slot: 2, len: 0, pos: 0 }];
const DECODE: Seq[] = [{ slot: 0, len: 1, pos: 127 }, { slot: 2, len: 1, pos: 64 }, { slot: 1, len: 1, pos: 1 }];

describe.skipIf(!HAS_GPU)('rope_kv', () => {
  test('D=64 GQA 2 and D=128 MHA: RoPE and cache append only (Llama), mixed and decode steps', async () => {
    await runCase({ H: 4, KV: 2, D: 64, seqs: MIXED });
    await runCase({ H: 2, KV: 2, D: 128, seqs: DECODE });
    await runCase({ H: 8, KV: 2, D: 64, seqs: [{ slot: 0, len: 70, pos: 0 }] });
  }, SLOW);

  test('q/k norm (Qwen3) D=128 GQA 4, zero-centred (Qwen3-Next) D=256 partial rotary, D=80', async () => {
    await runCase({ H: 8, KV: 2, D: 128, norm: 'plain', seqs: MIXED });
    await runCase({ H: 4, KV: 2, D: 256, R: 64, norm: 'plusOne', seqs: DECODE });
    await runCase({ H: 2, KV: 1, D: 80, norm: 'plain', seqs: [{ slot: 2, len: 3, pos: 62 }, { slot: 0, len: 1, pos: 0 }] });
  }, SLOW);

  test('q/k/v biases (Qwen2), with and without the norm', async () => {
    await runCase({ H: 4, KV: 2, D: 64, bias: true, seqs: MIXED });
    await runCase({ H: 4, KV: 1, D: 128, bias: true, norm: 'plain', seqs: DECODE });
  }, SLOW);

  test('16-bit caches: bf16 and f16', async () => {
    for (const kv of ['bf16', 'f16'] as const) {
      await runCase({ H: 4, KV: 2, D: 64, kv, seqs: MIXED });
      await runCase({ H: 2, KV: 2, D: 128, norm: 'plain', bias: true, kv, seqs: DECODE });
    }
  }, SLOW);
});
