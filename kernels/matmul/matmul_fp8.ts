// matmul_fp8 op: y = act(x·Wᵀ + bias) (+ y) for an F8_E4M3 weight (fp8 checkpoints) with its block scales, both as
// stored, decoded inside the kernel. Variants: gemv_vec for decode-sized steps (≤ 8 rows: 16-byte loads, split-K lanes
// sized to fill the GPU, rows held in registers, subgroup reductions where the adapter has them; behind a norm or a
// gate the input rows staged in workgroup memory once per workgroup, XS, FLA_FP8_XS; FLA_FP8_ROWS (outputs per lane
// group) / _LANES / _WG / _UNROLL for A/B of the launch shape), gemv_vec_wg (the same
// reducing through workgroup memory), the tiled gemm otherwise; FLA_KERNEL_MATMUL_FP8=gemv_vec|gemv_vec_wg|gemm forces one. matmul() routes fp8 weights here; the CPU backend
// holds them dequantized, so the reference is the f32 matmul of the dequantized weight (matmul_fp8.ref.ts).
// matmul_fp8_multi op: sibling fp8 projections of one input behind the RMSNorm that feeds them (the fp8 counterpart
// of matmul_multi): at decode two parts per gemv_vec dispatch with the norm in its prologue, else rms_norm + gemm.
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { knob } from '../../src/util/knobs.ts';
import { grid, kernel, only, ONLY, op, rowsOf, scratch, u32, unrollFor, weightDefines, type Ctx, type Launch, type Variant } from '../lib.ts';
import { rmsNormOp } from '../norm/rms_norm.ts';
import { rmsNormRef } from '../norm/rms_norm.ref.ts';
import unitSrc from '../moe/moe_unit.wgsl' with { type: 'text' };
import { ACT, matmulRef, type Act } from './matmul.ref.ts';
import vecSrc from './matmul_fp8_gemv_vec.wgsl' with { type: 'text' };
import { matmulFp8Ref } from './matmul_fp8.ref.ts';
import type { MatmulArgs } from './matmul.ts';
import gemmSrc from './matmul_fp8_gemm.wgsl' with { type: 'text' };
import coreSrc from './matmul_fp8_gemv_core.wgsl' with { type: 'text' };
import convSrc from './matmul_fp8_gemv_conv.wgsl' with { type: 'text' };
import segSrc from './matmul_fp8_gemv_seg.wgsl' with { type: 'text' };
import gateSrc from './matmul_fp8_gemv_gate.wgsl' with { type: 'text' };
import { mulOp } from '../elementwise/mul.ts';
import { shortConvOp } from '../conv/short_conv.ts';
import { convStoreRef, shortConvRef } from '../conv/short_conv.ref.ts';

const BINDINGS = ['step', 'x', 'W', 'bias', 'y', 'dims', 'S'] as const;
export const KERNELS = {
  gemm: kernel('matmul_fp8_gemm', gemmSrc, BINDINGS),
  gemv_vec: kernel('matmul_fp8_gemv_vec', vecSrc, ['step', 'x', 'vb', 'W0', 'S0', 'W1', 'S1', 'y0', 'y1', 'dims']),
  gemv_conv: kernel('matmul_fp8_gemv_conv', convSrc, ['step', 'x', 'vb', 'W0', 'S0', 'stepmeta', 'cst', 'y0', 'cy', 'dims']),
  gemv_seg: kernel('matmul_fp8_gemv_seg', segSrc, ['step', 'x', 'vb', 'W0', 'S0', 'y2', 'y3', 'y0', 'y1', 'dims']),
  gemv_gate: kernel('matmul_fp8_gemv_gate', gateSrc, ['step', 'x', 'vb', 'W0', 'S0', 'xg', 'y0', 'dims']),
};
const INCLUDES = { 'moe_unit.wgsl': unitSrc, 'matmul_fp8_gemv_core.wgsl': coreSrc };

const pow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;

/** Rows gemv_vec holds in registers at most (matmul_fp8 selects it up to here). */
export const VEC_RMAX = 8;
/** Workgroup memory the decode GEMVs may give to their staged input rows (XS). */
const XS_BYTES = 16384;
/** Lanes per row behind a staged input (XS), where the grid stays large: 16 rows or more a workgroup of 256. */
const XS_TPR = 16;
/** Threads a GEMV should launch to keep enough loads in flight on a large GPU (132 SMs × 1024). */
const TARGET_THREADS = 1 << 17;

interface VecPart { w: Weight; y: Tensor; act: Act }

/**
 * One gemv_vec dispatch over one or two parts of x [rows, IN] (their weights fp8 [OUT_p, IN]), with the norm in the
 * prologue or a bias (one part only). A missing second part binds part 0's weight and the scratch 'spare' as its output
 * (never written: NP 1; a writable buffer may not be bound twice).
 */
type VecMode = { conv: MatmulFp8ConvArgs['conv'] & { C: number; W: number } } | { seg: { y: Tensor; act: Act }[] } | { gate: Tensor };

function vecLaunch(x: Tensor, parts: VecPart[], norm: { w: Weight; eps: number } | null, bias: Weight | null, accumulate: boolean, c: Ctx, subgroups: boolean,
  mode: VecMode | null = null): Launch {
  const IN = x.cols, rows = rowsOf(x, c), ad = c.adapter, WG = Math.min(Number(knob('FLA_FP8_WG') ?? 256), ad.maxInvocations);
  const VEC = IN % 16 === 0 && parts.every(p => p.w.fp8!.bc % 16 === 0), EPU = VEC ? 16 : 4, U = IN / EPU;
  const SGS = ad.subgroupSize, SG_RED = subgroups && ad.subgroups && SGS > 0 && SGS <= WG && (SGS & (SGS - 1)) === 0;
  const outs = parts.map(p => p.w.shape[0]!), total = outs.reduce((a, b) => a + b, 0);
  const RB = rows <= 1 ? 1 : rows <= 2 ? 2 : rows <= 4 ? 4 : VEC_RMAX;
  // OR outputs per lane group (FLA_FP8_ROWS, default 1): each input quad a lane reads serves OR weight rows. H200,
  // Qwen3-Next-80B shapes at one row, fp8_probe µs a call, ROWS 1 / 2 / 2 with FLA_FP8_UNROLL=4: in_proj 28.4–30.3 /
  // 30.7–31.7 / 23.0, q|g|k|v 28.6–29.3 / 26.0–26.2 / 21.0, out_proj 13.6–15.5 / 11.1–14.9 / 14.1, o_proj gated
  // 16.2–17.2 / 15.1–15.2 / 13.7; fla bench tg32 (-p 64) with ROWS 2 alone 184.4, 187.8 against 189.7, 190.2, with ROWS 2
  // and 4 units in flight 202.6, 204.0 against 191.2, 191.4 (A B A B processes, 13:30): the default at one row
  const OR = Number(knob('FLA_FP8_ROWS') ?? (RB === 1 ? 2 : 1));
  // the input rows staged in workgroup memory once per workgroup where they fit, behind a norm or a gate (H200: in_proj
  // 77 → 30 µs, o_proj gated 18.4 → 17.2; a plain x 13.0 → 15.3, so not there); FLA_FP8_XS=0: read by every lane group
  const XS = knob('FLA_FP8_XS') !== '0' && (norm !== null || (mode !== null && 'gate' in mode)) && RB * IN * 4 <= Math.min(XS_BYTES, ad.maxWorkgroupStorage / 2);
  let TPR = Math.min(32, WG);
  const groups = Math.ceil(total / OR);
  while (TPR < WG && groups * TPR < TARGET_THREADS && 8 * TPR <= U) TPR *= 2;
  // staged (XS): narrower lane groups where the grid stays large, so a workgroup's staging reads (x and the norm weight:
  // 8 bytes a column) are at most half the weight bytes it streams
  if (XS) while (TPR > XS_TPR && (groups * TPR) / 2 >= TARGET_THREADS / 2) TPR /= 2;
  const forced = knob('FLA_FP8_LANES');
  if (forced) TPR = Math.min(WG, Number(forced));
  while (TPR > 1 && TPR > U) TPR /= 2;
  const RPW = (WG / TPR) * OR;
  const w0 = Math.ceil(outs[0]! / RPW), w1 = outs[1] ? Math.ceil(outs[1] / RPW) : 0, [gx, gy] = grid(w0 + w1);
  const fq = (w: Weight) => { const f = w.fp8!; return [f.rp, Math.ceil(f.rp / f.br), f.br, Math.ceil(IN / f.bc)]; };
  const p0 = parts[0]!, p1 = parts[1] ?? parts[0]!;
  const eps = new Uint32Array(new Float32Array([norm?.eps ?? 0]).buffer)[0]!;
  // scale columns: a shift by log2(units per block) where every part's blocks hold a power of two of units
  const COL_POW2 = parts.every(p => pow2(p.w.fp8!.bc / EPU)), col = (w: Weight) => COL_POW2 ? Math.log2(w.fp8!.bc / EPU) : w.fp8!.bc;
  const defines = {
    ...weightDefines('fp8'), WDT: 0, WG, RB, UNROLL: Number(knob('FLA_FP8_UNROLL') ?? unrollFor(ad, RB === 1 && U >= 8 * TPR ? 8 / OR : Math.max(1, Math.min(4, 8 / RB)))), VEC, SG_RED, SGS: SG_RED ? SGS : 1, NP: parts.length,
    NORM: norm !== null, WSR: RB * OR, OR, XS, XQ: IN / 4, COL_POW2, HAS_BIAS: bias !== null, ACCUM: accumulate, ROWS_K: x.rows === 'k', ACT0: ACT[p0.act], ACT1: ACT[p1.act],
  };
  const cost = { flops: 2 * rows * IN * total, bytes: total * IN + 4 * rows * (IN + total) };
  const conv = mode && 'conv' in mode ? mode.conv : null;
  if (mode && 'seg' in mode) {
    const sz = mode.seg.map(q => q.y.cols), at = (i: number) => sz.slice(0, i).reduce((a, b) => a + b, 0);
    const ys = [0, 1, 2, 3].map(i => mode.seg[i]?.y ?? scratch(`spare${i}`)), acts = [0, 1, 2, 3].map(i => ACT[mode.seg[i]?.act ?? 'none']);
    return {
      kernel: KERNELS.gemv_seg, grid: [gx, gy, Math.ceil(rows / RB)], defines: { ...defines, SEG: true, ACT0: acts[0]!, ACT1: acts[1]!, ACT2: acts[2]!, ACT3: acts[3]! },
      bind: { x, vb: norm?.w ?? null, W0: p0.w, S0: p0.w.fp8!.scales, y0: ys[0]!, y1: ys[1]!, y2: ys[2]!, y3: ys[3]!,
        dims: u32(IN, U, TPR, eps, outs[0]!, Math.min(at(1), total), w0, 0, ...fq(p0.w), ...fq(p0.w), col(p0.w), 0, Math.min(at(2), total), Math.min(at(3), total)) },
      cost,
    };
  }
  if (mode && 'gate' in mode) {
    return {
      kernel: KERNELS.gemv_gate, grid: [gx, gy, Math.ceil(rows / RB)], defines: { ...defines, GATE: true },
      bind: { x, vb: bias, W0: p0.w, S0: p0.w.fp8!.scales, xg: mode.gate, y0: p0.y,
        dims: u32(IN, U, TPR, eps, outs[0]!, 0, w0, 0, ...fq(p0.w), ...fq(p0.w), col(p0.w), 0, 0, 0) },
      cost: { ...cost, bytes: cost.bytes + 4 * rows * IN },
    };
  }
  if (conv) {
    return {
      kernel: KERNELS.gemv_conv, grid: [gx, gy, Math.ceil(rows / RB)], defines: { ...defines, CONV: true, HAS_STEPMETA: true, CONV_SILU: conv.act === 'silu' },
      bind: { x, vb: conv.aux, W0: p0.w, S0: p0.w.fp8!.scales, cst: conv.state, y0: p0.y, cy: conv.y,
        dims: u32(IN, U, TPR, eps, outs[0]!, 0, w0, 0, ...fq(p0.w), ...fq(p0.w), col(p0.w), 0, conv.C, conv.W) },
      cost: { flops: cost.flops + 2 * rows * conv.C * conv.W, bytes: cost.bytes + 4 * rows * conv.C * (2 * conv.W) },
    };
  }
  return {
    kernel: KERNELS.gemv_vec, grid: [gx, gy, Math.ceil(rows / RB)], defines: { ...defines, PARTS2: true },
    bind: { x, vb: norm?.w ?? bias, W0: p0.w, S0: p0.w.fp8!.scales, W1: p1.w, S1: p1.w.fp8!.scales, y0: p0.y, y1: parts[1] ? p1.y : scratch('spare'),
      dims: u32(IN, U, TPR, eps, outs[0]!, outs[1] ?? 0, w0, 0, ...fq(p0.w), ...fq(p1.w), col(p0.w), col(p1.w), 0, 0) },
    cost,
  };
}

const spare = (x: Tensor) => ({ spare: { cols: 4, rows: x.rows as 'n' | 'k' } });

const vecVariant = (subgroups: boolean): Variant<MatmulArgs> => ({
  scratch: a => spare(a.x),
  launches: (a, c) => [vecLaunch(a.x, [{ w: a.w, y: a.y, act: a.act }], null, a.bias, a.accumulate, c, subgroups)],
});

export function cost(R: number, IN: number, OUT: number) {
  return { flops: 2 * R * IN * OUT, bytes: OUT * IN + 4 * R * (IN + OUT) };
}

function base(a: MatmulArgs, c: Ctx, k: keyof typeof KERNELS, extra: Record<string, number> = {}): Omit<Launch, 'grid'> {
  const [OUT, IN] = a.w.shape as [number, number], f = a.w.fp8!;
  return {
    kernel: KERNELS[k], cost: cost(rowsOf(a.x, c), IN, OUT),
    defines: { ACT: ACT[a.act], HAS_BIAS: a.bias !== null, ACCUM: a.accumulate, ROWS_K: a.x.rows === 'k', ...weightDefines('fp8'), ...extra },
    bind: { x: a.x, W: a.w, bias: a.bias, y: a.y, dims: u32(IN, OUT, 0, 0, 0, Math.ceil(IN / f.bc), 0, 0, f.rp, Math.ceil(f.rp / f.br), f.br, f.bc), S: f.scales },
  };
}

export const matmulFp8Op = op<MatmulArgs>({
  name: 'matmul_fp8',
  check(a) {
    const [OUT, IN] = a.w.shape as [number, number];
    if (a.w.dtype !== 'fp8' || !a.w.fp8) throw new ShapeError('matmul_fp8: the weight is not fp8');
    if (IN % 4 !== 0) throw new ShapeError(`matmul_fp8: IN=${IN} must be a multiple of 4`);
    if (a.x.cols !== IN || a.y.cols !== OUT || a.x.rows !== a.y.rows) throw new ShapeError(`matmul_fp8: x ${a.x.cols} columns, weight [${OUT}, ${IN}], out ${a.y.cols}`);
  },
  select: (c, a) => rowsOf(a.x, c) <= VEC_RMAX ? 'gemv_vec' : 'gemm',
  includes: INCLUDES,
  variants: {
    gemv_vec: vecVariant(true),
    gemv_vec_wg: vecVariant(false),
    gemm: { launches: (a, c) => [{ ...base(a, c, 'gemm'), grid: [Math.ceil(a.w.shape[0]! / 64), Math.ceil(rowsOf(a.x, c) / 64), 1] }] },
  },
  // the CPU backend's fp8 weights are already dequantized (dequantFp8): the f32 formula
  ref: (a, h) => matmulFp8Ref(h.data(a.x), h.data(a.w), a.bias ? h.data(a.bias) : null, h.data(a.y), h.cap(a.x), a.w.shape[1]!, a.w.shape[0]!, a.act, a.accumulate),
});

/** norm: RMSNorm(x)·w (f32 weight) before every part, written to h only on the unfused path. */
export interface MatmulFp8MultiArgs { x: Tensor; norm: { w: Weight; eps: number; h: Tensor } | null; parts: { w: Weight; y: Tensor; act?: Act }[]; act: Act; accumulate: boolean }

export const matmulFp8MultiOp = op<MatmulFp8MultiArgs>({
  name: 'matmul_fp8_multi',
  includes: INCLUDES,
  check(a) {
    const IN = a.x.cols;
    if (a.parts.length < 1 || IN % 4) throw new ShapeError(`matmul_fp8_multi: ${a.parts.length} parts of IN=${IN} (a multiple of 4)`);
    for (const q of a.parts) {
      // (the CPU backend holds fp8 weights dequantized: f32 there)
      if ((q.w.dtype !== 'fp8' && q.w.dtype !== 'f32') || q.w.shape[1] !== IN || q.y.cols !== q.w.shape[0] || q.y.rows !== a.x.rows)
        throw new ShapeError(`matmul_fp8_multi: x ${IN} columns, ${q.w.dtype} weight [${q.w.shape.join(', ')}], out ${q.y.cols}`);
    }
    if (a.norm && (a.norm.w.dtype !== 'f32' || a.norm.w.shape[0] !== IN || a.norm.h.cols !== IN || a.norm.h.rows !== a.x.rows))
      throw new ShapeError(`matmul_fp8_multi: norm weight [${a.norm.w.shape.join(', ')}] ${a.norm.w.dtype} for ${IN} columns`);
  },
  /**
   * ≤ 8 rows: the parts two per gemv_vec dispatch with the norm in the prologue; else rms_norm + one matmul_fp8 each.
   * 'wg' (only when forced): the same, reducing through workgroup memory instead of subgroups (the portable path).
   */
  select: only(),
  variants: {
    [ONLY]: multiVariant(true),
    wg: multiVariant(false),
  },
  ref: (a, h) => {
    const R = h.cap(a.x), IN = a.x.cols;
    let inp = h.data(a.x);
    if (a.norm) { rmsNormRef(inp, h.data(a.norm.w), h.data(a.norm.h), R, IN, { eps: a.norm.eps }); inp = h.data(a.norm.h); }
    for (const q of a.parts) matmulRef(inp, h.data(q.w), null, h.data(q.y), R, IN, q.w.shape[0]!, q.act ?? a.act, a.accumulate);
  },
});

function multiVariant(subgroups: boolean): Variant<MatmulFp8MultiArgs> {
  return {
    scratch: a => spare(a.x),
    launches: (a, c) => {
      if (a.parts.some(q => !q.w.fp8)) throw new ShapeError('matmul_fp8_multi: a part is not fp8');
      const parts = a.parts.map(q => ({ w: q.w, y: q.y, act: q.act ?? a.act }));
      if (rowsOf(a.x, c) <= VEC_RMAX) {
        const ls: Launch[] = [];
        for (let i = 0; i < parts.length; i += 2) ls.push(vecLaunch(a.x, parts.slice(i, i + 2), a.norm, null, a.accumulate, c, subgroups));
        return ls;
      }
      const ls: Launch[] = [];
      if (a.norm) ls.push(...rmsNormOp.variants[ONLY]!.launches({ x: a.x, w: a.norm.w, g: null, y: a.norm.h, C: a.x.cols, G: 1, eps: a.norm.eps, plusOne: false }, c));
      for (const q of parts) {
        const m: MatmulArgs = { x: a.norm ? a.norm.h : a.x, w: q.w, bias: null, y: q.y, act: q.act, accumulate: a.accumulate };
        ls.push(...matmulFp8Op.variants[matmulFp8Op.select(c, m)]!.launches(m, c));
      }
      return ls;
    },
  };
}

/** y_p (+)= act_p(n·W_pᵀ) for fp8 parts W_p, n = RMSNorm(x)·norm.w (into norm.h only when unfused) or x. */
export function matmulFp8Multi(o: Backend, x: Tensor, norm: MatmulFp8MultiArgs['norm'], parts: MatmulFp8MultiArgs['parts'], act: Act = 'none', accumulate = false): Promise<void> {
  return o.run(matmulFp8MultiOp, { x, norm, parts, act, accumulate });
}

/**
 * matmul_fp8_conv: y = RMSNorm(x)·norm.w · Wᵀ for an fp8 W [OUT, IN], and the causal depthwise conv (with its per-slot
 * history, as short_conv) over y's first C columns into conv.y [rows, C] (Qwen3-Next's in_proj → conv1d over q|k|v).
 * conv.w is the conv's [C, 1, W] f32 taps, conv.aux the same taps behind the norm weight (f32 [IN + C·W]: what the fused
 * kernel reads). Variants: 'fused' for decode steps (≤ VEC_RMAX rows, one token per sequence): one
 * matmul_fp8_gemv_conv dispatch, the conv in the GEMV's epilogue; 'split' otherwise: matmul_fp8_multi's launches, then
 * short_conv's. FLA_KERNEL_MATMUL_FP8_CONV=fused|split forces one (fused only on decode steps).
 */
export interface MatmulFp8ConvArgs {
  x: Tensor; norm: { w: Weight; eps: number; h: Tensor }; w: Weight; y: Tensor;
  conv: { w: Weight; aux: Weight; state: Tensor; y: Tensor; act: 'silu' | 'none' };
}

const convDims = (a: MatmulFp8ConvArgs) => ({ C: a.conv.y.cols, W: a.conv.w.shape.reduce((p, d) => p * d, 1) / a.conv.y.cols });

export const matmulFp8ConvOp = op<MatmulFp8ConvArgs>({
  name: 'matmul_fp8_conv',
  includes: INCLUDES,
  check(a) {
    const IN = a.x.cols, [OUT] = a.w.shape as [number, number], { C, W } = convDims(a);
    if ((a.w.dtype !== 'fp8' && a.w.dtype !== 'f32') || a.w.shape[1] !== IN || a.y.cols !== OUT || a.y.rows !== a.x.rows || a.x.rows !== 'n' || IN % 4)
      throw new ShapeError(`matmul_fp8_conv: x ${IN} columns (a multiple of 4), ${a.w.dtype} weight [${a.w.shape.join(', ')}], out ${a.y.cols}`);
    if (!Number.isInteger(W) || W < 2 || W > 17 || C > OUT || a.conv.state.cols !== (W - 1) * C || a.conv.y.rows !== 'n' || a.conv.aux.shape[0] !== IN + C * W)
      throw new ShapeError(`matmul_fp8_conv: conv taps [${a.conv.w.shape}] / history ${a.conv.state.cols} / aux [${a.conv.aux.shape}] do not fit ${C} of the ${OUT} output channels`);
    if (a.norm.w.dtype !== 'f32' || a.norm.w.shape[0] !== IN || a.norm.h.cols !== IN)
      throw new ShapeError(`matmul_fp8_conv: norm weight [${a.norm.w.shape.join(', ')}] ${a.norm.w.dtype} for ${IN} columns`);
  },
  select: c => (c.step.n <= VEC_RMAX && c.step.maxLen <= 1 ? 'fused' : 'split'),
  variants: {
    fused: {
      supports: (_a, c) => c.step.n <= VEC_RMAX && c.step.maxLen <= 1,
      scratch: a => spare(a.x),
      launches: (a, c) => [vecLaunch(a.x, [{ w: a.w, y: a.y, act: 'none' }], a.norm, null, false, c, true, { conv: { ...a.conv, ...convDims(a) } })],
    },
    split: {
      scratch: a => spare(a.x),
      launches: (a, c) => {
        const m: MatmulFp8MultiArgs = { x: a.x, norm: a.norm, parts: [{ w: a.w, y: a.y }], act: 'none', accumulate: false };
        const sc = { x: a.y, w: a.conv.w, state: a.conv.state, y: a.conv.y, act: a.conv.act };
        return [...matmulFp8MultiOp.variants[ONLY]!.launches(m, c), ...shortConvOp.variants[shortConvOp.select(c, sc)]!.launches(sc, c)];
      },
    },
  },
  ref: (a, h) => {
    const R = h.cap(a.x), IN = a.x.cols, OUT = a.w.shape[0]!, { C, W } = convDims(a);
    rmsNormRef(h.data(a.x), h.data(a.norm.w), h.data(a.norm.h), R, IN, { eps: a.norm.eps });
    matmulRef(h.data(a.norm.h), h.data(a.w), null, h.data(a.y), R, IN, OUT, 'none', false);
    const lay = { xS: OUT, xO: 0, split: C }, cur = h.step.cursors;
    shortConvRef(h.data(a.y), h.data(a.conv.w), h.data(a.conv.state), h.data(a.conv.y), cur, C, W, a.conv.act, lay);
    convStoreRef(h.data(a.y), h.data(a.conv.state), cur, C, W, lay);
  },
});

/** y = RMSNorm(x)·norm.w · Wᵀ (fp8 W) and conv.y = the causal conv of y's first conv.y.cols columns (matmul_fp8_conv). */
export function matmulFp8Conv(o: Backend, x: Tensor, norm: MatmulFp8ConvArgs['norm'], w: Weight, y: Tensor, conv: MatmulFp8ConvArgs['conv']): Promise<void> {
  return o.run(matmulFp8ConvOp, { x, norm, w, y, conv });
}

/**
 * matmul_fp8_seg: y_i = act_i(RMSNorm(x)·norm.w · W_iᵀ) for 1–4 projections stacked in one fp8 weight W [ΣOUT_i, IN]
 * (rows of segment i after those of the segments before it; the scales index W's rows as one matrix), each
 * into its own tensor (Qwen3-Next's q | gate (sigmoid) | k | v). Variants: 'fused' at ≤ VEC_RMAX rows: one
 * matmul_fp8_gemv_seg dispatch with the norm in its prologue; 'split': rms_norm into norm.h, then one tiled GEMM per
 * segment over its rows of W. FLA_KERNEL_MATMUL_FP8_SEG=fused|split forces one.
 */
export interface MatmulFp8SegArgs { x: Tensor; norm: { w: Weight; eps: number; h: Tensor }; w: Weight; outs: { y: Tensor; act: Act }[] }

export const matmulFp8SegOp = op<MatmulFp8SegArgs>({
  name: 'matmul_fp8_seg',
  includes: INCLUDES,
  check(a) {
    const IN = a.x.cols, total = a.outs.reduce((n, q) => n + q.y.cols, 0);
    if ((a.w.dtype !== 'fp8' && a.w.dtype !== 'f32') || a.w.shape[1] !== IN || a.w.shape[0] !== total || IN % 4 || a.outs.length < 1 || a.outs.length > 4 || a.outs.some(q => q.y.rows !== a.x.rows))
      throw new ShapeError(`matmul_fp8_seg: x ${IN} columns (a multiple of 4), ${a.w.dtype} weight [${a.w.shape.join(', ')}], 1–4 outputs of ${a.outs.map(q => q.y.cols).join(' + ')} rows`);
    if (a.norm.w.dtype !== 'f32' || a.norm.w.shape[0] !== IN || a.norm.h.cols !== IN)
      throw new ShapeError(`matmul_fp8_seg: norm weight [${a.norm.w.shape.join(', ')}] ${a.norm.w.dtype} for ${IN} columns`);
  },
  select: (c, a) => (rowsOf(a.x, c) <= VEC_RMAX ? 'fused' : 'split'),
  variants: {
    fused: {
      scratch: a => ({ ...spare(a.x), spare1: { cols: 4, rows: a.x.rows as 'n' | 'k' }, spare2: { cols: 4, rows: a.x.rows as 'n' | 'k' }, spare3: { cols: 4, rows: a.x.rows as 'n' | 'k' } }),
      launches: (a, c) => [vecLaunch(a.x, [{ w: a.w, y: a.outs[0]!.y, act: 'none' }], a.norm, null, false, c, true, { seg: a.outs })],
    },
    split: {
      launches: (a, c) => {
        const IN = a.x.cols, f = a.w.fp8!;
        const ls: Launch[] = rmsNormOp.variants[ONLY]!.launches({ x: a.x, w: a.norm.w, g: null, y: a.norm.h, C: IN, G: 1, eps: a.norm.eps, plusOne: false }, c);
        let r0 = 0;
        for (const q of a.outs) {
          const OUT = q.y.cols;
          ls.push({ kernel: KERNELS.gemm, grid: [Math.ceil(OUT / 64), Math.ceil(rowsOf(a.x, c) / 64), 1], cost: cost(rowsOf(a.x, c), IN, OUT),
            defines: { ACT: ACT[q.act], HAS_BIAS: false, ACCUM: false, ROWS_K: a.x.rows === 'k', ...weightDefines('fp8') },
            bind: { x: a.norm.h, W: a.w, bias: null, y: q.y, dims: u32(IN, OUT, r0, 0, 0, Math.ceil(IN / f.bc), 0, 0, f.rp, Math.ceil(f.rp / f.br), f.br, f.bc), S: f.scales } });
          r0 += OUT;
        }
        return ls;
      },
    },
  },
  ref: (a, h) => {
    const R = h.cap(a.x), IN = a.x.cols, W = h.data(a.w);
    rmsNormRef(h.data(a.x), h.data(a.norm.w), h.data(a.norm.h), R, IN, { eps: a.norm.eps });
    let r0 = 0;
    for (const q of a.outs) {
      matmulRef(h.data(a.norm.h), W.subarray(r0 * IN, (r0 + q.y.cols) * IN), null, h.data(q.y), R, IN, q.y.cols, q.act, false);
      r0 += q.y.cols;
    }
  },
});

/** outs_i = act_i(RMSNorm(x)·norm.w · W_iᵀ) for the segments of a stacked fp8 weight (matmul_fp8_seg). */
export function matmulFp8Seg(o: Backend, x: Tensor, norm: MatmulFp8SegArgs['norm'], w: Weight, outs: MatmulFp8SegArgs['outs']): Promise<void> {
  return o.run(matmulFp8SegOp, { x, norm, w, outs });
}

/**
 * matmul_fp8_gated: y (+)= act((x ⊙ g)·Wᵀ + bias) for an fp8 W (Qwen3-Next's o_proj of attention ⊙ σ(gate)).
 * Variants: 'fused' at ≤ VEC_RMAX rows: one matmul_fp8_gemv_gate dispatch, the product formed as it reads its input;
 * 'split': mul into scratch, then matmul_fp8. FLA_KERNEL_MATMUL_FP8_GATED=fused|split forces one.
 */
export interface MatmulFp8GatedArgs extends MatmulArgs { g: Tensor }

export const matmulFp8GatedOp = op<MatmulFp8GatedArgs>({
  name: 'matmul_fp8_gated',
  includes: INCLUDES,
  check(a) {
    const [OUT, IN] = a.w.shape as [number, number];
    if ((a.w.dtype !== 'fp8' && a.w.dtype !== 'f32') || IN % 4 || a.x.cols !== IN || a.g.cols !== IN || a.y.cols !== OUT || a.x.rows !== a.y.rows || a.g.rows !== a.x.rows)
      throw new ShapeError(`matmul_fp8_gated: x ${a.x.cols} / gate ${a.g.cols} columns, ${a.w.dtype} weight [${OUT}, ${IN}] (IN a multiple of 4), out ${a.y.cols}`);
  },
  select: (c, a) => (rowsOf(a.x, c) <= VEC_RMAX ? 'fused' : 'split'),
  variants: {
    fused: {
      scratch: a => spare(a.x),
      launches: (a, c) => [vecLaunch(a.x, [{ w: a.w, y: a.y, act: a.act }], null, a.bias, a.accumulate, c, true, { gate: a.g })],
    },
    split: {
      scratch: a => ({ xg: { cols: a.x.cols, rows: a.x.rows as 'n' | 'k' }, ...spare(a.x) }),
      launches: (a, c) => {
        // the product goes to scratch 'xg' (a scratch reference standing in for the tensor: same columns and rows)
        const xg = { ...scratch('xg'), cols: a.x.cols, rows: a.x.rows } as unknown as Tensor;
        const mm: MatmulArgs = { x: xg, w: a.w, bias: a.bias, y: a.y, act: a.act, accumulate: a.accumulate };
        return [...mulOp.variants[ONLY]!.launches({ a: a.x, s: a.g, y: xg, col: null, accumulate: false }, c), ...matmulFp8Op.variants[matmulFp8Op.select(c, mm)]!.launches(mm, c)];
      },
    },
  },
  ref: (a, h) => {
    const x = h.data(a.x), g = h.data(a.g), xg = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) xg[i] = x[i]! * g[i]!;
    matmulFp8Ref(xg, h.data(a.w), a.bias ? h.data(a.bias) : null, h.data(a.y), h.cap(a.x), a.w.shape[1]!, a.w.shape[0]!, a.act, a.accumulate);
  },
});

/** y (+)= act((x ⊙ g)·Wᵀ + bias) for an fp8 W (matmul_fp8_gated). */
export function matmulFp8Gated(o: Backend, x: Tensor, g: Tensor, w: Weight, bias: Weight | null, act: Act, y: Tensor, accumulate = false): Promise<void> {
  return o.run(matmulFp8GatedOp, { x, g, w, bias, y, act, accumulate });
}
