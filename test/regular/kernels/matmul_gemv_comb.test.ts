// attn_out (kernels/matmul/matmul_gemv_comb.ts): attention then its output projection with the residual add, where
// the fused variant folds split-K attention's combine pass into the GEMV's prologue. Each variant (fused, fused_wg,
// split = sdpa + matmul as they run alone) against the CPU reference (sdpa's then matmul's), and fused against split
// on the GPU (the same partials, combined in the GEMV instead of in sdpa_combine): decode steps of 1, 3, 5 and 9
// sequences (register blocks of 1, 4, 8 and 16 rows, rows not a multiple of the block) at cached prefixes across
// the split edges, head dims 64 and 128, GQA 1, 2 and 4, forced split counts (FLA_SDPA_SPLITS 5 and 42: empty
// splits), bf16 / f16 / f32 weights, a bias, OUT not a multiple of a workgroup's columns; the select rule. With
// `embed` (a decoder's first layer) the residual is each token's row of an embedding table (y holds NaN: never read):
// in gemv_vec's epilogue on the split path (matmul_gemv_emb), an embed dispatch first on the fused one.
import { describe, expect, test } from 'bun:test';
import { kvStore } from '../../../kernels/attention/sdpa.ts';
import { attnOut, attnOutOp, combPlan, FUSED_WHERE_FITS, type AttnOutArgs } from '../../../kernels/matmul/matmul_gemv_comb.ts';
import { expectClose, prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { stepOf, withEnv } from './attention_steps.ts';
import { checkBoth, gpuBackend, hostWeight, runOn, selectCtx, type Body } from './harness.ts';

const SLOTS = 10;
type Seq = { slot: number; len: number; pos: number };
interface Case { H: number; KV: number; D: number; OUT: number; seqs: Seq[]; dtype: 'bf16' | 'f16' | 'f32'; bias: boolean; splits?: number; embed?: 'bf16' | 'f16' | 'f32' }

const name = (c: Case) => `H=${c.H} KV=${c.KV} D=${c.D} OUT=${c.OUT} ${c.dtype}${c.bias ? ' +bias' : ''}${c.splits ? ` S=${c.splits}` : ''}${c.embed ? ` embed ${c.embed}` : ''} seqs ${c.seqs.map(s => `${s.pos}+${s.len}`).join(',')}`;
const VT = 11;   // embedding rows (`embed` cases)

function body(c: Case, rng: ReturnType<typeof prng>): { step: ReturnType<typeof stepOf>; ctx: number; setup: Parameters<typeof checkBoth>[1]; run: Body } {
  const step = stepOf(c.seqs);
  if (c.embed) step.ids = step.ids.map(() => Math.floor(rng.next() * VT));
  const emb = randn(VT * c.OUT, rng);
  const N = step.ids.length, ctx = Math.max(...c.seqs.map(s => s.pos + s.len)) + 7, IN = c.H * c.D;
  const q = randn(N * IN, rng), k = randn(N * c.KV * c.D, rng), v = randn(N * c.KV * c.D, rng);
  const kc = randn(SLOTS * ctx * c.KV * c.D, rng), vc = randn(SLOTS * ctx * c.KV * c.D, rng);
  const w = randn(c.OUT * IN, rng, 1 / Math.sqrt(IN)), b = randn(c.OUT, rng, 0.5), y0 = randn(N * c.OUT, rng);
  const setup = { states: [{ key: 'k', cols: ctx * c.KV * c.D }, { key: 'v', cols: ctx * c.KV * c.D }], slots: SLOTS, init: { k: kc, v: vc } };
  const run: Body = async io => {
    const qt = io.o.act('q', IN), kt = io.o.act('k', c.KV * c.D), vt = io.o.act('v', c.KV * c.D), att = io.o.act('att', IN), y = io.o.act('y', c.OUT);
    io.put(qt, q); io.put(kt, k); io.put(vt, v); io.put(att); io.put(y, c.embed ? undefined : y0);
    await kvStore(io.o, kt, io.o.state('k'), ctx, 'f32');
    await kvStore(io.o, vt, io.o.state('v'), ctx, 'f32');
    const W = io.weight('wo', hostWeight(w, [c.OUT, IN], c.dtype)), B = c.bias ? io.weight('bo', hostWeight(b, [c.OUT]), false) : null;
    const E = c.embed ? io.weight('emb', hostWeight(emb, [VT, c.OUT], c.embed), true) : null;
    await attnOut(io.o, qt, io.o.state('k'), io.o.state('v'), att, { H: c.H, KV: c.KV, D: c.D, ctx, kv: 'f32' }, W, B, y, true, E);
    return { y };
  };
  return { step, ctx, setup, run };
}

const withSplits = <T>(c: Case, f: () => Promise<T>) => c.splits ? withEnv('FLA_SDPA_SPLITS', String(c.splits), f) : f();

async function vsRef(variant: string, c: Case): Promise<void> {
  const rng = prng(`attn_out ${variant} ${name(c)}`);
  const { step, setup, run } = body(c, rng);
  await withEnv('FLA_KERNEL_ATTN_OUT', variant, () => withSplits(c, () => checkBoth(step, setup, run, { seed: rng, what: `${variant} ${name(c)}` })));
}

/** fused against split on the GPU: one set of inputs, the combine in the GEMV vs sdpa_combine + gemv_vec. */
async function fusedVsSplit(c: Case): Promise<void> {
  const rng = prng(`attn_out fused vs split ${name(c)}`);
  const { step, setup, run } = body(c, rng);
  const on = (variant: string) => withEnv('FLA_KERNEL_ATTN_OUT', variant, () => withSplits(c, () => runOn(gpuBackend(), 'gpu', step, setup, run)));
  const f = await on('fused'), s = await on('split');
  expectClose(f.y!.data, s.y!.data, { rtol: 1e-5, what: `fused vs split ${name(c)}`, seed: rng, shape: f.y!.shape });
}

const SLOW = 600_000;   // ms: cold shader JIT on lavapipe
// decode steps of n sequences, one token each, prefixes spread over 40..1500 keys
const decode = (n: number, pmax = 1500): Seq[] => Array.from({ length: n }, (_, i) => ({ slot: i, len: 1, pos: n === 1 ? pmax : 40 + Math.floor((pmax - 40) * i / (n - 1)) }));

describe.skipIf(!HAS_GPU)('attn_out', () => {
  test('select: split (fused forced only: FUSED_WHERE_FITS); where it would fuse: decode over a long cache', () => {
    const o = gpuBackend();
    const w = { shape: [200, 256], dtype: 'bf16' } as any;
    const a = (ctx: number) => ({ H: 4, KV: 2, D: 64, ctx, kv: 'f32', out: { rows: 'n', cols: 256 }, w, bias: null, y: { rows: 'n', cols: 200 }, accumulate: true }) as unknown as AttnOutArgs;
    expect([o.variant(attnOutOp, a(1000), selectCtx(o.adapter, [1])), o.variant(attnOutOp, a(1000), selectCtx(o.adapter, [1, 1, 1, 1, 1, 1, 1, 1])),
      o.variant(attnOutOp, a(200), selectCtx(o.adapter, [1])), o.variant(attnOutOp, a(1000), selectCtx(o.adapter, [64]))])
      .toEqual([FUSED_WHERE_FITS ? 'fused' : 'split', FUSED_WHERE_FITS ? 'fused' : 'split', 'split', 'split']);
    const ctx = selectCtx(o.adapter, [1]);
    expect([attnOutOp.variants.fused!.supports!(a(1000), ctx), attnOutOp.variants.fused!.supports!({ ...a(1000), out: { rows: 'k', cols: 256 } } as any, ctx)]).toEqual([true, false]);
    // the block's rows fit the workgroup memory: fewer register rows where IN is wide
    const p = combPlan({ ...a(1000), w: { shape: [2048, 2048], dtype: 'bf16' } } as any, selectCtx(o.adapter, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]), true);
    expect(p === null || 4 * p.RB * 2048 <= o.adapter.maxWorkgroupStorage).toBe(true);
  });

  const CASES: Case[] = [
    { H: 4, KV: 2, D: 64, OUT: 200, seqs: decode(1, 700), dtype: 'bf16', bias: false },
    { H: 4, KV: 2, D: 64, OUT: 200, seqs: decode(3), dtype: 'bf16', bias: true },
    { H: 8, KV: 2, D: 64, OUT: 130, seqs: decode(5), dtype: 'f16', bias: false, splits: 5 },
    { H: 2, KV: 2, D: 128, OUT: 37, seqs: decode(9, 3000), dtype: 'bf16', bias: false, splits: 42 },
    { H: 4, KV: 1, D: 64, OUT: 64, seqs: decode(2), dtype: 'f32', bias: true },
  ];
  for (const variant of ['fused', 'fused_wg', 'split']) {
    test(`${variant} against the reference`, async () => {
      for (const c of variant === 'fused_wg' ? CASES.slice(0, 3) : CASES) await vsRef(variant, c);
    }, SLOW);
  }
  test('embed: the tokens\' embedding rows as the residual (split: in gemv_vec\'s epilogue; fused: an embed dispatch first)', async () => {
    for (const variant of ['split', 'fused']) {
      await vsRef(variant, { H: 4, KV: 2, D: 64, OUT: 200, seqs: decode(1, 700), dtype: 'bf16', bias: false, embed: 'bf16' });
      await vsRef(variant, { H: 4, KV: 1, D: 64, OUT: 66, seqs: decode(3), dtype: 'f32', bias: true, embed: 'f16' });
    }
    await vsRef('split', { H: 4, KV: 1, D: 64, OUT: 64, seqs: decode(2), dtype: 'f16', bias: false, embed: 'f32' });
  }, SLOW);

  test('fused against split (sdpa_combine + gemv_vec) on the GPU; 4 lanes a group at one row (FLA_GEMV_COMB_LANES)', async () => {
    for (const c of CASES) await fusedVsSplit(c);
    await withEnv('FLA_GEMV_COMB_LANES', '4', () => fusedVsSplit(CASES[0]!));
  }, SLOW);
});
