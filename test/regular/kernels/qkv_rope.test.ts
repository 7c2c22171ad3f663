// qkv_rope (kernels/matmul/matmul_gemv_rope): the q|k|v decode GEMV with RoPE and the KV-cache append in its
// epilogue, on the GPU against its CPU reference (matmul_multi's then rope_kv's) and against the split path
// (matmul_multi, then rope_kv) on the GPU, on fresh random inputs: head dims 64 and 128, partial rotary, GQA, with and
// without the RMSNorm prologue, bf16 and f32 weights, f32 / f16 / bf16 caches; decode steps of one and of several
// sequences at odd positions (and past the table's last row: clamped), in three cache slots, a 2-token step (2
// register rows) and the portable fused_wg (forced past one row). The fused path is checked to be one dispatch, and the
// default at one row. With `embed` (a decoder's first layer) the rows are the tokens' rows of an embedding table,
// read by the fused GEMV itself (x holds NaN: never read) where the table has the weights' dtype, else by an embed
// dispatch into x first.
import { describe, expect, test } from 'bun:test';
import { invFreq, ropeTable } from '../../../kernels/attention/rope.ref.ts';
import type { KvDtype } from '../../../kernels/attention/sdpa.ts';
import { bf16Bits } from '../../../kernels/attention/sdpa.ref.ts';
import { qkvRope, qkvRopeOp, type QkvRopeArgs } from '../../../kernels/matmul/matmul_gemv_rope.ts';
import { CpuBackend } from '../../../src/backend/cpu.ts';
import type { GpuBackend } from '../../../src/backend/gpu.ts';
import { expectClose, prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { pack16, stepOf, values, withEnv } from './attention_steps.ts';
import { gpuBackend, hostWeight, runOn, type Body, type Packed } from './harness.ts';

const SLOTS = 3;
type Seq = { slot: number; len: number; pos: number };
interface Case { H: number; KV: number; D: number; R?: number; C: number; norm?: boolean; wdt?: 'f32' | 'bf16'; kv?: KvDtype; seqs: Seq[]; variant?: 'fused' | 'fused_wg'; embed?: 'f32' | 'bf16' }
const name = (c: Case) => `H=${c.H} KV=${c.KV} D=${c.D} R=${c.R ?? c.D} C=${c.C}${c.norm ? ' +norm' : ''} W ${c.wdt ?? 'bf16'} kv ${c.kv ?? 'f32'} ${c.variant ?? 'fused'}${c.embed ? ` embed ${c.embed}` : ''} seqs ${c.seqs.map(s => `${s.pos}+${s.len}@${s.slot}`).join(',')}`;
const VT = 13;   // embedding rows (`embed` cases)


/** bf16-representable values, so f32 and bf16 weights hold the same matrix */
function bf16Round(v: Float32Array): Float32Array {
  const u = new Uint32Array(v.buffer.slice(0));
  for (let i = 0; i < u.length; i++) u[i] = bf16Bits(v[i]!) << 16;
  return new Float32Array(u.buffer);
}

async function runCase(c: Case): Promise<void> {
  const what = `qkv_rope ${name(c)}`, rng = prng(what);
  const { H, KV, D, C } = c, R = c.R ?? D, KVD = KV * D, dt = c.kv ?? 'f32', wdt = c.wdt ?? 'bf16';
  const step = stepOf(c.seqs), N = step.ids.length, ctx = Math.max(...c.seqs.map(s => s.pos + s.len)) + 3;
  if (c.embed) step.ids = step.ids.map(() => Math.floor(rng.next() * VT));
  const emb = bf16Round(randn(VT * C, rng)), fusedEmbed = !!c.embed && c.embed === (c.wdt ?? 'bf16');
  const P = ctx - 4;   // the last position(s) past the table: clamped to its last row
  const x = randn(N * C, rng), gn = randn(C, rng, 0.3, 1);
  const wq = bf16Round(randn(H * D * C, rng, 0.1)), wk = bf16Round(randn(KVD * C, rng, 0.1)), wv = bf16Round(randn(KVD * C, rng, 0.1));
  const table = ropeTable(invFreq(10000, R), P);
  const cols = dt === 'f32' ? ctx * KVD : ctx * KVD / 2;
  const init = (v: Float32Array) => (dt === 'f32' ? v : pack16(v, dt));
  const setup = { states: [{ key: 'k', cols }, { key: 'v', cols }], slots: SLOTS, init: { k: init(randn(SLOTS * ctx * KVD, rng)), v: init(randn(SLOTS * ctx * KVD, rng)) } };

  let dispatches = -1, chosen = '';
  const body: Body = async io => {
    const xt = io.o.act('x', C), h = io.o.act('h', C), q = io.o.act('q', H * D), k = io.o.act('k', KVD), v = io.o.act('v', KVD);
    io.put(xt, c.embed ? undefined : x); io.put(h); io.put(q); io.put(k); io.put(v);
    const mat = (n: string, m: Float32Array, rows: number) => io.weight(n, hostWeight(m, [rows, C], wdt), true);
    const a: QkvRopeArgs = {
      mm: { x: xt, norm: c.norm ? { w: io.weight('gn', hostWeight(gn, [C]), false), eps: 1e-5, h } : null,
        parts: [{ w: mat('wq', wq, H * D), y: q }, { w: mat('wk', wk, KVD), y: k }, { w: mat('wv', wv, KVD), y: v }], act: 'none', accumulate: false },
      rope: { q, k, v, kc: io.o.state('k'), vc: io.o.state('v'), table: io.weight('rope', hostWeight(table, [2, P, R / 2]), false), aux: null,
        H, KV, D, R, ctx, kv: dt, norm: null, bias: false },
      embed: c.embed ? io.weight('emb', hostWeight(emb, [VT, C], c.embed), true) : null,
    };
    if (io.kind === 'gpu') {
      const g = io.o as GpuBackend, before = g.recording().items.length;
      chosen = qkvRopeOp.select({ adapter: g.adapter, step: { n: N, k: 1, b: c.seqs.length, lens: c.seqs.map(s => s.len), maxLen: Math.max(...c.seqs.map(s => s.len)), cursors: step.cursors } }, a);
      await qkvRope(io.o, a);
      dispatches = g.recording().items.length - before;
    } else await qkvRope(io.o, a);
    return { q, kc: io.o.state('k'), vc: io.o.state('v') };
  };

  if (process.env.FLA_TEST_VERBOSE === '1') console.log(what);
  const want = await runOn(new CpuBackend(), 'cpu', step, setup, body);
  const got = await withEnv('FLA_KERNEL_QKV_ROPE', c.variant ?? 'fused', () => runOn(gpuBackend(), 'gpu', step, setup, body));
  expect(chosen, `${what}: the default choice`).toBe(N === 1 ? 'fused' : 'split');   // fused by default at one row only
  expect(dispatches, `${what}: dispatches of the fused path`).toBe(c.embed && !fusedEmbed ? 2 : 1);
  const split = await withEnv('FLA_KERNEL_QKV_ROPE', 'split', () => runOn(gpuBackend(), 'gpu', step, setup, body));
  expect(dispatches, `${what}: dispatches of the split path`).toBe(c.embed ? 3 : 2);
  const vals = (p: Packed, key: string) => (key === 'kc' || key === 'vc' ? values(p.data, dt) : p.data);
  for (const key of ['q', 'kc', 'vc']) {
    // f32-grade against the reference; a 16-bit cache may round the other way near a tie (one bf16/f16 ulp)
    const tol = key === 'q' || dt === 'f32' ? 1e-4 : dt === 'f16' ? 2e-3 : 1.6e-2;
    expectClose(vals(got[key]!, key), vals(want[key]!, key), { rtol: tol, what: `${what} ${key} vs the reference`, seed: rng, shape: want[key]!.shape });
    expectClose(vals(got[key]!, key), vals(split[key]!, key), { rtol: key === 'q' || dt === 'f32' ? 1e-5 : tol, what: `${what} ${key} vs the split path`, seed: rng, shape: want[key]!.shape });
  }
}

const SLOW = 600_000;   // ms: cold shader JIT on lavapipe
// three sequences at odd positions (one past the table's last row), and one
const DECODE: Seq[] = [{ slot: 1, len: 1, pos: 63 }, { slot: 0, len: 1, pos: 97 }, { slot: 2, len: 1, pos: 5 }];
const ONE: Seq[] = [{ slot: 2, len: 1, pos: 33 }];

describe.skipIf(!HAS_GPU)('qkv_rope', () => {
  // each case compiles its own fused and split pipelines (~1 min on lavapipe): five cases cover 1, 2 and 4 register
  // rows, both head dims, partial rotary, norm or none, bf16 and f32 weights, the three cache dtypes and fused_wg
  test('D=64 GQA 2 + norm, f16 cache, three sequences; D=128 partial rotary (R=64), bf16 cache, one sequence; D=64, f32 cache, one', async () => {
    await runCase({ H: 4, KV: 2, D: 64, C: 136, norm: true, kv: 'f16', seqs: DECODE });
    await runCase({ H: 2, KV: 1, D: 128, R: 64, C: 200, kv: 'bf16', seqs: ONE });
    await runCase({ H: 4, KV: 2, D: 64, C: 136, norm: true, seqs: ONE });   // batch-1 decode with an f32 cache: the default path
  }, SLOW);

  test('embed: the first layer reads the tokens\' embedding rows (bf16 table: in the GEMV; f32 table with bf16 weights: an embed dispatch first)', async () => {
    await runCase({ H: 4, KV: 2, D: 64, C: 136, norm: true, seqs: ONE, embed: 'bf16' });
    await runCase({ H: 4, KV: 2, D: 64, C: 136, norm: true, kv: 'f16', seqs: DECODE, embed: 'bf16' });
    await runCase({ H: 2, KV: 1, D: 128, R: 64, C: 200, seqs: ONE, embed: 'f32' });
  }, SLOW);

  test('D=128 R=32 f32 weights + norm, f32 cache, two tokens of one sequence; the portable fused_wg', async () => {
    await runCase({ H: 4, KV: 1, D: 128, R: 32, C: 96, norm: true, wdt: 'f32', seqs: [{ slot: 1, len: 2, pos: 9 }] });
    await runCase({ H: 4, KV: 2, D: 64, C: 136, norm: true, variant: 'fused_wg', seqs: DECODE });
  }, SLOW);
});
