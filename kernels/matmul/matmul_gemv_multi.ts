// matmul_multi op: sibling projections of one input (q|k|v, gate|up), optionally behind the RMSNorm that feeds
// them and, for gate|up, with the SwiGLU product silu(gate)·up after them, as one decode GEMV ('fused': the norm in
// its prologue, the product in its epilogue, every part in one dispatch) or as the unfused rms_norm + one matmul per
// part (+ silu_mul) ('split': prefill-sized steps, and the reference the fused path is tested against).
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { knob } from '../../src/util/knobs.ts';
import { grid, kernel, op, ONLY, rowsOf, scratch, u32, weightDefines, type Ctx, type Launch, type ScratchSpec } from '../lib.ts';
import { argmaxFinal, argmaxOp, type ArgmaxArgs } from '../sample/argmax.ts';
import { rmsNormOp } from '../norm/rms_norm.ts';
import { siluMulOp } from '../elementwise/silu_mul.ts';
import { gemvRows, matmulOp, cost as matmulCost, type MatmulArgs } from './matmul.ts';
import { matmulFp8Op } from './matmul_fp8.ts';
import { ACT, type Act } from './matmul.ref.ts';
import { matmulMultiRef } from './matmul_gemv_multi.ref.ts';
import { sharePrep } from './matmul_sgmat.ts';
import { sgmvByDefault, sgmvMultiLaunch, sgmvPlan } from './matmul_sgmv.ts';
import { GEMV_MULTI_RMAX, GEMV_VEC_RMAX, plan, rowLoop, type GemvVecPlan } from './matmul_gemv_vec.ts';
import { kvDefines } from '../attention/sdpa.ts';
import source from './matmul_gemv_multi.wgsl' with { type: 'text' };

export const KERNEL = kernel('matmul_gemv_multi', source, ['step', 'x', 'gn', 'W0', 'W1', 'W2', 'y0', 'y1', 'y2', 'dims']);
/** The same GEMV with rope_kv in its epilogue (ROPE: matmul_gemv_rope.ts). */
export const ROPE_KERNEL = kernel('matmul_gemv_rope', source, ['step', 'stepmeta', 'x', 'gn', 'W0', 'W1', 'W2', 'q', 'kc', 'vc', 'table', 'dims', 'rdims']);
/** The same GEMV of an output head with argmax's first pass in its epilogue (ARGMAX). */
export const ARGMAX_KERNEL = kernel('matmul_gemv_argmax', source, ['step', 'x', 'gn', 'W0', 'W1', 'W2', 'y0', 'y1', 'y2', 'dims', 'part']);

/**
 * The RoPE + KV-cache epilogue of a q|k|v GEMV (parts q, k, v): the caches kc, vc [slots, ctx rows of KV·D as kv],
 * table [2, P, R/2], head dim D, rotary dims R.
 */
export interface RopeEpilogue { kc: Tensor; vc: Tensor; table: Weight; D: number; R: number; ctx: number; kv: 'f32' | 'bf16' | 'f16' }

/** Parts one fused dispatch takes at most (8 storage bindings: x, gn, 3 W, 3 y). */
export const MULTI_MAX_PARTS = 3;

/**
 * One projection: its weight and output, its activation (default the op's), and the plane of the op's x it reads
 * (default 0) with `xp`, that plane as a tensor (o.plane(x, plane): what the unfused path reads).
 */
export interface MultiPart { w: Weight; y: Tensor; act?: Act; plane?: number; xp?: Tensor }
/**
 * norm: RMSNorm(x)·w with eps (every part then reads plane 0); h receives the normed rows on the split path only
 * (the fused path never writes it). swiglu: parts are [gate, up] of one width and swiglu.out receives silu(gate)·up
 * (as silu_mul computes it); the parts' outputs are then scratch, written on the split path only (the fused path
 * pairs each gate row with its up row in one workgroup and writes only the product).
 */
export interface MatmulMultiArgs {
  x: Tensor; norm: { w: Weight; eps: number; h: Tensor } | null; parts: MultiPart[]; act: Act; accumulate: boolean;
  swiglu?: { out: Tensor } | null;
  /**
   * An output head (one part, rows 'k', no activation, no accumulate) whose greedy choice the step wants: out and ids
   * receive kernels/sample/argmax.ts's results for the part's logits. Fused: argmax's first pass in the GEMV's
   * epilogue, then its final pass (two dispatches for head + argmax instead of three); split: argmax's two passes.
   */
  argmax?: ArgmaxOut | null;
}

/** argmax's outputs: out [K, 2] f32 (id, non-finite flag), ids [K, 1] (the ids as u32 bits). */
export interface ArgmaxOut { out: Tensor; ids: Tensor }

/** The fused GEMV's geometry: matmul_gemv_vec's plan; with a RoPE epilogue at least 2 columns a lane group (a pair). */
export function multiPlan(a: MatmulMultiArgs, c: Ctx, subgroups: boolean, rope: boolean): GemvVecPlan {
  const IN = a.x.cols, total = a.parts.reduce((s, q) => s + q.w.shape[0]!, 0), dtype = a.parts[0]!.w.dtype as 'f32' | 'bf16' | 'f16';
  const p = plan(c.adapter, rowsOf(a.x, c), IN, total, dtype, subgroups, !!a.swiglu, GEMV_MULTI_RMAX);
  return rope && p.CB < 2 ? plan(c.adapter, rowsOf(a.x, c), IN, total, dtype, subgroups, true, GEMV_MULTI_RMAX) : p;
}

/** The fused GEMV's workgroups (x, y): whole workgroups per part (SwiGLU: per gate|up pair); an ARGMAX head writes one partial each. */
export function multiGrid(a: MatmulMultiArgs, c: Ctx, subgroups: boolean, rope: boolean): [number, number] {
  const outs = a.parts.map(q => q.w.shape[0]!), p = multiPlan(a, c, subgroups, rope), RPW = p.WG / p.TPR;
  const per = a.swiglu ? p.CB / 2 : p.CB;
  const wgs = a.swiglu ? [Math.ceil(Math.ceil(outs[0]! / per) / RPW)] : outs.map(o => Math.ceil(Math.ceil(o / per) / RPW));
  const [gx, gy] = grid(wgs.reduce((s, v) => s + v, 0));
  return [gx, gy];
}

/** The fused head's launches: the GEMV (with argmax's first pass in its epilogue when a.argmax), then argmax's final pass. */
function fusedLaunches(a: MatmulMultiArgs, c: Ctx, subgroups: boolean): Launch[] {
  const gemv = fusedLaunch(a, c, subgroups);
  if (!a.argmax) return [gemv];
  const [gx, gy] = multiGrid(a, c, subgroups, false);
  return [gemv, argmaxFinal(c, a.parts[0]!.y, scratch('argmax_part'), a.argmax.out, a.argmax.ids, gx * gy)];
}

/** Scratch of the fused variants: spare outputs, and an argmax head's partials (3 words a workgroup and row). */
function fusedScratch(a: MatmulMultiArgs, c: Ctx, subgroups: boolean): Record<string, ScratchSpec> {
  const s: Record<string, ScratchSpec> = spares(a);
  if (a.argmax) { const [gx, gy] = multiGrid(a, c, subgroups, false); s.argmax_part = { cols: 3 * gx * gy, rows: 'k' }; }
  return s;
}

/** `embed` (with `rope` only): x is that embedding table, row r the row of token r (EMBED; qkv_rope's `embed`). */
export function fusedLaunch(a: MatmulMultiArgs, c: Ctx, subgroups: boolean, rope: RopeEpilogue | null = null, embed: Weight | null = null): Launch {
  const IN = a.x.cols, outs = a.parts.map(p => p.w.shape[0]!);
  const dtype = a.parts[0]!.w.dtype as 'f32' | 'bf16' | 'f16';
  const sw = !!a.swiglu;
  const p = multiPlan(a, c, subgroups, rope !== null);
  const TPR = p.TPR, RPW = p.WG / TPR;
  const per = sw ? p.CB / 2 : p.CB;                      // outputs per lane group (SwiGLU: gate|up pairs; RoPE: CB / 2 column pairs)
  const wgs = sw ? [Math.ceil(Math.ceil(outs[0]! / per) / RPW)] : outs.map(o => Math.ceil(Math.ceil(o / per) / RPW));
  const starts = sw ? [wgs[0]!, wgs[0]!] : [wgs[0]!, wgs[0]! + (wgs[1] ?? 0)];
  const [gx, gy] = multiGrid(a, c, subgroups, rope !== null);
  const eps = new Uint32Array(new Float32Array([a.norm?.eps ?? 0]).buffer)[0]!;
  // absent inputs bind inputs already bound read-only, absent outputs a scratch each (never the shared placeholder,
  // which would then be bound both read-only and writable)
  const bind: Launch['bind'] = { x: a.x, gn: a.norm?.w ?? a.x, dims: u32(IN, p.U, TPR, eps, outs[0]!, outs[1] ?? 0, outs[2] ?? 0, 0, starts[0], starts[1], 0, 0,
    a.parts[0]!.plane ?? 0, a.parts[1]?.plane ?? 0, a.parts[2]?.plane ?? 0, 0) };
  for (let i = 0; i < MULTI_MAX_PARTS; i++) { bind[`W${i}`] = a.parts[i]?.w ?? a.parts[0]!.w; bind[`y${i}`] = a.parts[i]?.y ?? scratch(`spare${i}`); }
  if (a.swiglu) bind.y0 = a.swiglu.out;
  const total = outs.reduce((s, v) => s + v, 0);
  const bytes = a.parts.reduce((s, q) => s + matmulCost(rowsOf(a.x, c), IN, q.w.shape[0]!, dtype === 'f32' ? 4 : 2).bytes, 0);
  let ropeDefines = {};
  if (a.argmax) bind.part = scratch('argmax_part');
  if (embed) bind.x = embed;
  if (rope) {
    delete bind.y0; delete bind.y1; delete bind.y2;
    Object.assign(bind, { q: a.parts[0]!.y, kc: rope.kc, vc: rope.vc, table: rope.table, rdims: u32(rope.D, rope.R / 2, rope.table.shape[1]!, rope.ctx, outs[1]!, 0, 0, 0) });
    ropeDefines = { RPW, ...kvDefines(rope.kv) };
  }
  return {
    kernel: rope ? ROPE_KERNEL : a.argmax ? ARGMAX_KERNEL : KERNEL, grid: [gx, gy, p.workgroups[2]], cost: { flops: 2 * rowsOf(a.x, c) * IN * total, bytes },
    defines: {
      ROPE: rope !== null, HAS_STEPMETA: rope !== null, ARGMAX: !!a.argmax, EMBED: embed !== null, ...ropeDefines, ACT: 0, ACT0: ACT[a.parts[0]!.act ?? a.act], ACT1: ACT[a.parts[1]?.act ?? a.act], ACT2: ACT[a.parts[2]?.act ?? a.act], ACCUM: a.accumulate, ROWS_K: a.x.rows === 'k', ...weightDefines(dtype), WDT: 0, NP: a.parts.length, NORM: a.norm !== null,
      SWIGLU: sw, PART_RT: partRt(a.parts.length, sw),
      WG: p.WG, RB: p.RB, ROW_LOOP: rowLoop(), CB: p.CB, CV2: p.CB === 2, CV4: p.CB === 4, E: p.E, TS: p.TS, UNROLL: p.UNROLL, VEC: p.VEC, SG_RED: p.SG_RED, SGS: Math.max(p.SGS, 1),
    },
    bind,
  };
}

/**
 * Whether the fused kernel picks each load's part at run time (PART_RT) rather than inlining the accumulation loop
 * once per part (2-3 parts without SwiGLU): only where FLA_GEMV_PART_RT=1 forces it. Slower on an H200 (2026-12-02,
 * llama-1b q|k|v, µs a call: 1 row 11.1 inlined vs 15.2 at run time, 8 rows 16.5 vs 20.5; fla bench tg64 710 vs
 * 666-670 t/s).
 */
export function partRt(parts: number, swiglu: boolean): boolean {
  return parts >= 2 && !swiglu && knob('FLA_GEMV_PART_RT') === '1';
}

function partArgs(a: MatmulMultiArgs, q: MultiPart): MatmulArgs {
  const x = a.norm ? a.norm.h : q.xp ?? a.x;
  return { x, w: q.w, bias: null, y: q.y, act: q.act ?? a.act, accumulate: a.accumulate };
}

export const matmulMultiOp = op<MatmulMultiArgs>({
  name: 'matmul_multi',
  includes: matmulFp8Op.includes,   // the split path launches matmul_fp8's kernels for fp8 parts
  check(a) {
    const IN = a.x.cols;
    if (a.parts.length < 1) throw new ShapeError('matmul_multi: no parts');
    for (const q of a.parts) {
      const pl = q.plane ?? 0;
      if (!Number.isInteger(pl) || pl < 0 || pl >= a.x.planes || (pl > 0 && (a.norm || a.x.rows !== 'n' || !q.xp))) throw new ShapeError(`matmul_multi: plane ${pl} of a ${a.x.planes}-plane input (planes need rows 'n', no norm and the plane's tensor)`);
      if (a.x.planes > 1 && (!q.xp || q.xp.planes !== 1)) throw new ShapeError('matmul_multi: a multi-plane input needs each part\'s plane tensor');
      if (q.w.shape[1] !== IN || q.y.cols !== q.w.shape[0] || q.y.rows !== a.x.rows) throw new ShapeError(`matmul_multi: x ${IN} columns, weight [${q.w.shape.join(', ')}], out ${q.y.cols}`);
    }
    if (a.argmax) {
      const q = a.parts[0]!;
      if (a.parts.length !== 1 || a.swiglu || a.accumulate || (q.act ?? a.act) !== 'none' || (q.plane ?? 0) !== 0 || q.y.rows !== 'k')
        throw new ShapeError('matmul_multi: an argmax head takes one part with rows \'k\', no activation, no accumulate, no SwiGLU, plane 0');
      argmaxOp.check!(argmaxArgs(a));
    }
    if (a.norm && (a.norm.w.shape[0] !== IN || a.norm.h.cols !== IN)) throw new ShapeError(`matmul_multi: norm weight [${a.norm.w.shape.join(', ')}] for ${IN} columns`);
    if (IN % 2 !== 0) throw new ShapeError(`matmul_multi: IN=${IN} must be even`);
    if (a.swiglu) {
      const [g, u] = a.parts, O = g?.w.shape[0];
      if (a.parts.length !== 2 || u!.w.shape[0] !== O || a.swiglu.out.cols !== O || a.swiglu.out.rows !== a.x.rows || a.accumulate || a.parts.some(q => (q.plane ?? 0) !== 0 || (q.act ?? a.act) !== 'none'))
        throw new ShapeError('matmul_multi: SwiGLU takes two parts (gate, up) of one width, an output of that width, no activation, no accumulate, plane 0');
    }
  },
  /**
   * 'fused' for decode-sized steps when the parts fit one dispatch: ≤ 16 rows, and on GPUs up to 64 rows (batched
   * decode, register-tiled) where matmul would run the parts on gemv_vec too (not where it picks subgroup matrices);
   * else 'split'. Forced only: 'fused_wg' (fused reducing through workgroup memory: the path of adapters without subgroups).
   * Before these, 'sgmv' (matmul_sgmv.ts, the same fusion on subgroup matrices, f32-grade) for f16 weights at
   * SGMV_MIN_ROWS..16 rows where the adapter has the configs, with FLA_SGMV=1 (off by default until it wins).
   */
  select: (c, a) => sgmvByDefault(rowsOf(a.x, c)) && sgmvFits(a, c) ? 'sgmv' : fusable(a) && (rowsOf(a.x, c) <= GEMV_VEC_RMAX || (gemvRows(c, rowsOf(a.x, c)) && matmulOp.select(c, partArgs(a, a.parts[0]!)) === 'gemv_vec')) ? 'fused' : 'split',
  variants: {
    fused: {
      supports: a => fusable(a),
      scratch: (a, c) => fusedScratch(a, c, true),
      launches: (a, c) => fusedLaunches(a, c, true),
    },
    fused_wg: {
      supports: a => fusable(a),
      scratch: (a, c) => fusedScratch(a, c, false),
      launches: (a, c) => fusedLaunches(a, c, false),
    },
    sgmv: {
      supports: (a, c) => sgmvFits(a, c),
      scratch: a => spares(a),
      launches: (a, c) => [sgmvLaunchOf(a, c)],
    },
    split: {
      // the scratch of each part's own matmul variant (matmul_fp8's gemv_vec binds a spare output)
      scratch: (a, c) => Object.assign({}, ...a.parts.map(q => { const m = partArgs(a, q), mop = q.w.dtype === 'fp8' ? matmulFp8Op : matmulOp; return mop.variants[mop.select(c, m)]!.scratch?.(m, c) ?? {}; }),
        a.argmax ? argmaxOp.variants[ONLY]!.scratch!(argmaxArgs(a), c) : {}),
      launches: (a, c) => {
        const out: Launch[] = [];
        if (a.norm) out.push(...rmsNormOp.variants[ONLY]!.launches({ x: a.x, w: a.norm.w, g: null, y: a.norm.h, C: a.x.cols, G: 1, eps: a.norm.eps, plusOne: false }, c));
        for (const q of a.parts) {
          const m = partArgs(a, q), mop = q.w.dtype === 'fp8' ? matmulFp8Op : matmulOp;
          out.push(...sharePrep(out, mop.variants[mop.select(c, m)]!.launches(m, c)));   // x split into f16 once for all parts
        }
        if (a.swiglu) out.push(...siluMulOp.variants[ONLY]!.launches({ a: a.parts[0]!.y, b: a.parts[1]!.y, y: a.swiglu.out }, c));
        if (a.argmax) out.push(...argmaxOp.variants[ONLY]!.launches(argmaxArgs(a), c));
        return out;
      },
    },
  },
  ref: (a, h) => {
    matmulMultiRef(h.data(a.x), a.norm ? { w: h.data(a.norm.w), eps: a.norm.eps, h: h.data(a.norm.h) } : null,
      a.parts.map(q => ({ w: h.data(q.w), y: h.data(q.y), OUT: q.w.shape[0]!, plane: q.plane ?? 0, act: q.act ?? a.act })), h.cap(a.x), a.x.cols, a.accumulate,
      a.swiglu ? h.data(a.swiglu.out) : null);
    if (a.argmax) argmaxOp.ref(argmaxArgs(a), h);
  },
});

function argmaxArgs(a: MatmulMultiArgs): ArgmaxArgs { return { logits: a.parts[0]!.y, out: a.argmax!.out, ids: a.argmax!.ids }; }

function spares(a: MatmulMultiArgs): Record<string, { cols: number; rows: 'n' | 'k' }> {
  return Object.fromEntries(Array.from({ length: MULTI_MAX_PARTS - a.parts.length }, (_, j) => [`spare${a.parts.length + j}`, { cols: 4, rows: a.x.rows as 'n' | 'k' }]));
}

/** Whether sgmv runs a: fusable, f16 weights, every part on plane 0 with ≥ 16 outputs, IN % 16 == 0, a plan here. */
function sgmvFits(a: MatmulMultiArgs, c: Ctx): boolean {
  return fusable(a) && a.parts[0]!.w.dtype === 'f16' && a.parts.every(q => (q.plane ?? 0) === 0 && q.w.shape[0]! >= 16)
    && sgmvPlan(c, rowsOf(a.x, c), a.x.cols, !!a.swiglu) !== null;
}

function sgmvLaunchOf(a: MatmulMultiArgs, c: Ctx): Launch {
  // absent inputs bind inputs already bound read-only, absent outputs a scratch each (as fusedLaunch)
  const bind: Launch['bind'] = { x: a.x, gn: a.norm?.w ?? a.x };
  for (let i = 0; i < MULTI_MAX_PARTS; i++) { bind[`W${i}`] = a.parts[i]?.w ?? a.parts[0]!.w; bind[`y${i}`] = a.parts[i]?.y ?? scratch(`spare${i}`); }
  if (a.swiglu) bind.y0 = a.swiglu.out;
  return sgmvMultiLaunch(c, rowsOf(a.x, c), a.x.cols, a.parts.map(q => q.w.shape[0]!), a.parts.map(q => q.act ?? a.act), bind, a.norm, !!a.swiglu, a.accumulate, a.x.rows === 'k');
}

function fusable(a: MatmulMultiArgs): boolean {
  return a.parts.length <= MULTI_MAX_PARTS && a.parts.every(q => q.w.dtype === a.parts[0]!.w.dtype) && a.parts[0]!.w.dtype !== 'fp8' && (a.norm === null || a.norm.w.dtype === 'f32');
}

/**
 * y_p (+)= act(n·W_pᵀ) for each part, n = RMSNorm(x)·norm.w (written to norm.h only when unfused) or x; with swiglu,
 * swiglu.out = silu(y_0)·y_1 (y_0, y_1 then written only when unfused).
 */
export function matmulMulti(o: Backend, x: Tensor, norm: MatmulMultiArgs['norm'], parts: MultiPart[], act: Act = 'none', accumulate = false,
  swiglu: MatmulMultiArgs['swiglu'] = null, argmax: ArgmaxOut | null = null): Promise<void> {
  return o.run(matmulMultiOp, { x, norm, parts, act, accumulate, swiglu, argmax });
}
