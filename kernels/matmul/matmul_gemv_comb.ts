// attn_out op: y (+)= sdpa(q, k, v)·Wᵀ + bias — attention followed by its output projection. For decode-shaped
// steps where sdpa runs split-K ('split': sdpa_split writes per-split partials, sdpa_combine merges them) and the
// projection runs on gemv_vec, 'fused' folds the combine pass into the GEMV's prologue (matmul_gemv_vec.wgsl, COMB):
// each workgroup merges its block's rows of the attention output from the partials into workgroup memory, then
// streams the weights — two dispatches instead of three (forced only for now: see select). 'split' is sdpa then
// matmul, each as it would run alone (the default, and the reference the fused path is tested against); the
// attention output `out` is written on the split path only.
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { kernelKnob, knob } from '../../src/util/knobs.ts';
import { grid, kernel, ONLY, op, rowsOf, scratch, u32, weightDefines, type Ctx, type Launch, type Op } from '../lib.ts';
import { embed as embedTokens, embedOp } from '../embed/embed.ts';
import { embedRef } from '../embed/embed.ref.ts';
import { kvCacheDtype, partRow, sdpa, sdpaOp, splitLaunches, splitPlan, splitScratch, splitsOf, splitSupports, type SdpaArgs, type SdpaOp } from '../attention/sdpa.ts';
import { ACT } from './matmul.ref.ts';
import { attnOutRef } from './matmul_gemv_comb.ref.ts';
import { cost as matmulCost, matmul, matmulOp, type MatmulArgs } from './matmul.ts';
import { gemvLaunch, plan, rowLoop, type GemvVecPlan } from './matmul_gemv_vec.ts';
import source from './matmul_gemv_vec.wgsl' with { type: 'text' };

export const COMB_KERNEL = kernel('matmul_gemv_comb', source, ['step', 'part', 'W', 'bias', 'y', 'dims', 'cdims']);

/**
 * q, k, v, out and the attention shape as sdpa takes them; y [N, C] (+)= out·wᵀ + bias, w [C, H·D]. embed (with
 * accumulate; a decoder's first layer, whose q|k|v read the embedding rows themselves): the residual is each token's
 * row of this embedding table [V, C] instead of y, which the step has not written — y = emb[ids] + out·wᵀ + bias (where
 * the projection runs on gemv_vec, in its epilogue: matmul_gemv_emb; else an embed dispatch into y first).
 */
export interface AttnOutArgs extends SdpaArgs { w: Weight; bias: Weight | null; y: Tensor; accumulate: boolean; embed?: Weight | null }

const mmArgs = (a: AttnOutArgs): MatmulArgs => ({ x: a.out, w: a.w, bias: a.bias, y: a.y, act: 'none', accumulate: a.accumulate });

/** An inner op's variant as the backend would pick it: FLA_KERNEL_<OP> where set and supported, else its select. */
function pick<A>(o: Op<A>, a: A, c: Ctx): string {
  const forced = knob(kernelKnob(o.name));
  return forced !== undefined && forced in o.variants && (o.variants[forced]!.supports?.(a, c) ?? true) ? forced : o.select(c, a);
}

/** Workgroup bytes of the fused kernel: the block's x rows, two floats per (row, head), the reduction's sums. */
function combBytes(p: GemvVecPlan, IN: number, H: number): number {
  const N = p.RB * p.CB;
  return 4 * (p.RB * IN + 2 * p.RB * H + (p.SG_RED ? (p.WG / p.SGS) * N : p.WG * Math.min(N, 16)));
}

/**
 * The fused kernel's geometry: gemv_vec's plan with the most register rows (≤ 16) whose combined x rows fit the
 * adapter's workgroup memory; null where not even one row fits, or the weights are not 16-bit/f32 units of a head.
 */
export function combPlan(a: AttnOutArgs, c: Ctx, subgroups: boolean): GemvVecPlan | null {
  const [OUT, IN] = a.w.shape as [number, number];
  if (a.w.dtype === 'fp8') return null;
  const dtype = a.w.dtype as 'f32' | 'bf16' | 'f16';
  for (const rmax of [16, 8, 4, 2, 1]) {
    const p = plan(c.adapter, rowsOf(a.out, c), IN, OUT, dtype, subgroups, false, rmax);
    if (!p.VEC) return null;
    const lanes = knob('FLA_GEMV_COMB_LANES');
    if (lanes !== undefined && p.TS === 0) {   // fewer lanes a group: more columns a workgroup, fewer re-reads of the partials
      p.TPR = Math.max(1, Math.min(Number(lanes), p.WG, p.U));
      const [gx, gy] = grid(Math.ceil(p.groups / (p.WG / p.TPR)));
      p.workgroups = [gx, gy, p.workgroups[2]];
    }
    if (p.RB <= rmax && combBytes(p, IN, a.H) <= c.adapter.maxWorkgroupStorage) return p;
  }
  return null;
}

function combLaunch(a: AttnOutArgs, c: Ctx, subgroups: boolean): Launch {
  const [OUT, IN] = a.w.shape as [number, number];
  const p = combPlan(a, c, subgroups)!;
  const S = splitsOf(a, c, splitPlan(c.adapter, a, subgroups)), RS = partRow(S, a.D), R = rowsOf(a.out, c);
  const mc = matmulCost(R, IN, OUT, a.w.dtype === 'f32' ? 4 : 2);
  return {
    kernel: COMB_KERNEL, grid: p.workgroups,
    cost: { flops: mc.flops + 2 * R * a.H * RS, bytes: mc.bytes - 4 * R * IN + 4 * R * a.H * RS },
    defines: {
      ACT: ACT.none, HAS_BIAS: a.bias !== null, ACCUM: a.accumulate, ROWS_K: false, HAS_STEPMETA: false, EMB: false, ...weightDefines(a.w.dtype as 'f32' | 'bf16' | 'f16'), WDT: 0,
      WG: p.WG, RB: p.RB, ROW_LOOP: rowLoop(), CB: p.CB, CV2: p.CB === 2, CV4: p.CB === 4, E: p.E, TS: p.TS, UNROLL: p.UNROLL, VEC: p.VEC, SG_RED: p.SG_RED, SGS: Math.max(p.SGS, 1),
      COMB: true, CIN: IN, CH: a.H,
    },
    bind: { part: scratch('part'), W: a.w, bias: a.bias, y: a.y, dims: u32(IN, OUT, p.U, p.TPR), cdims: u32(a.H, a.D, S, RS) },
  };
}

/** Whether select picks 'fused' where it can (false: measured slower, see select). */
export const FUSED_WHERE_FITS = false;

const fusable = (subgroups: boolean) => (a: AttnOutArgs, c: Ctx) => a.out.rows === 'n' && splitSupports(a) && combPlan(a, c, subgroups) !== null;

export const attnOutOp = op<AttnOutArgs>({
  name: 'attn_out',
  includes: sdpaOp.includes,   // the attention kernels' own includes (the split path launches sdpa's variants)
  check(a) {
    const [OUT, IN] = a.w.shape as [number, number];
    if (IN !== a.H * a.D || a.out.cols !== IN || a.y.cols !== OUT || a.y.rows !== a.out.rows || (a.bias && a.bias.shape[0] !== OUT))
      throw new ShapeError(`attn_out: attention output ${a.out.cols} columns (H·D = ${a.H * a.D}), weight [${a.w.shape.join(', ')}], out ${a.y.cols}`);
    sdpaOp.check!(a);
    matmulOp.check!(mmArgs(a));
    if (a.embed && (!a.accumulate || a.y.rows !== 'n')) throw new ShapeError('attn_out: an embedding residual takes accumulate and rows \'n\'');
    if (a.embed) embedOp.check!({ table: a.embed, out: a.y });
  },
  /**
   * 'split' (forced only: 'fused', 'fused_wg'). fused saves a dispatch a layer but each of its workgroups re-reads
   * every partial of its rows (S·(D + 2) floats a head, ~10× the attention output at S = 10): on an H200 (llama-1b,
   * pp512 + tg64, 2026-12-02) batch 1 ran 693 t/s fused (FLA_GEMV_COMB_LANES=8) against 741 split, and the fused
   * kernel took 57 µs a call at 8 rows. FUSED_WHERE_FITS is the rule to restore once it wins: where sdpa would run
   * split-K, the projection gemv_vec, and the fused kernel fits.
   */
  select: (c, a) => FUSED_WHERE_FITS && pick(sdpaOp, a, c) === 'split' && pick(matmulOp, mmArgs(a), c) === 'gemv_vec' && fusable(true)(a, c) ? 'fused' : 'split',
  variants: {
    fused: { supports: fusable(true), scratch: splitScratch(true), launches: (a, c) => [...embedFirst(a, c), splitLaunches(a, c, true)[0]!, combLaunch(a, c, true)] },
    // forced only: the portable reductions of both kernels (adapters without subgroups)
    fused_wg: { supports: fusable(false), scratch: splitScratch(false), launches: (a, c) => [...embedFirst(a, c), splitLaunches(a, c, false)[0]!, combLaunch(a, c, false)] },
    split: {
      scratch: (a, c) => {
        const sv = sdpaOp.variants[pick(sdpaOp, a, c)]!, mv = matmulOp.variants[pick(matmulOp, mmArgs(a), c)]!;
        return { ...sv.scratch?.(a, c), ...mv.scratch?.(mmArgs(a), c) };
      },
      launches: (a, c) => {
        const att = sdpaOp.variants[pick(sdpaOp, a, c)]!.launches(a, c), mv = pick(matmulOp, mmArgs(a), c), mm = matmulOp.variants[mv]!.launches(mmArgs(a), c);
        // the embedding residual in gemv_vec's epilogue (the same dispatch, its cost)
        if (a.embed && (mv === 'gemv_vec' || mv === 'gemv_vec_wg') && mm.length === 1) return [...att, gemvLaunch(mmArgs(a), c, mv === 'gemv_vec', mm[0]!.cost, a.embed)];
        return [...embedFirst(a, c), ...att, ...mm];
      },
    },
  },
  ref: (a, h) => {
    if (a.embed) embedRef(h.step.ids, h.data(a.embed), h.data(a.y), a.y.cols);
    attnOutRef(h.data(a.q), h.data(a.k), h.data(a.v), h.data(a.out), h.step.cursors,
    { H: a.H, KV: a.KV, D: a.D, ctx: a.ctx, window: a.window ?? 0, scale: a.scale ?? 1 / Math.sqrt(a.D), kv: a.kv ?? 'f32' },
    h.data(a.w), a.bias ? h.data(a.bias) : null, h.data(a.y), h.cap(a.out), a.w.shape[0]!, a.accumulate);
  },
});

/** With an embedding residual where no epilogue adds it: the embed dispatch into y, ahead of the rest. */
function embedFirst(a: AttnOutArgs, c: Ctx): Launch[] {
  return a.embed ? embedOp.variants[ONLY]!.launches({ table: a.embed, out: a.y }, c) : [];
}

/**
 * y (+)= sdpa(q, kc, vc)·wᵀ + bias: attention and its output projection (the residual add with accumulate). `out`
 * receives the attention output where the two run apart (it is scratch to the caller).
 */
export async function attnOut(o: Backend, q: Tensor, k: Tensor, v: Tensor, out: Tensor, a: SdpaOp, w: Weight, bias: Weight | null, y: Tensor, accumulate = true,
  embed: Weight | null = null): Promise<void> {
  if (w.dtype === 'fp8') {   // checkpoints' F8_E4M3 projections run on matmul_fp8
    if (embed) await embedTokens(o, embed, y);
    await sdpa(o, q, k, v, out, a);
    return matmul(o, out, w, bias, 'none', y, accumulate);
  }
  return o.run(attnOutOp, { kv: kvCacheDtype(), ...a, q, k, v, out, w, bias, y, accumulate, embed });
}
