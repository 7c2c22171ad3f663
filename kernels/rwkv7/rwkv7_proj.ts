// rwkv7_proj op: RWKV7's r, k, v projections and LoRA down-projections of the mixed token. 'fused'
// (kernels/rwkv7/rwkv7_proj.wgsl): all seven as one GEMV, each output row reading its own mix plane, for decode-sized
// steps (≤ 16 rows), reducing with subgroup operations where the adapter has them; 'fused_wg' (forced only): the
// same through workgroup memory (the portable path 'fused' takes without subgroups); 'split': r, k, v as three matmuls (the GEMM for prefill) and the LoRA segments through the same
// GEMV kernel (the stacked LoRA weight is small: read once per 16 rows).
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { knob } from '../../src/util/knobs.ts';
import { grid, kernel, op, u32, type Ctx, type Launch, type Uniform } from '../lib.ts';
import { matmulOp, type MatmulArgs } from '../matmul/matmul.ts';
import source from './rwkv7_proj.wgsl' with { type: 'text' };
import lnSource from './rwkv7_proj_ln.wgsl' with { type: 'text' };
import { rwkv7ProjRef } from './rwkv7_proj.ref.ts';
import type { LoraRanks } from './wkv7_lora.ref.ts';
import { mergeScratch, partLaunches, partScratch } from './compose.ts';
import { RWKV7_INCLUDES } from './includes.ts';

/** Rows one fused dispatch holds in registers at most (workgroup memory: WG · RB f32 ≤ 16 KiB); 'fused' is chosen up to here. */
export const PROJ_RMAX = 16;

export const KERNEL = kernel('rwkv7_proj', source, ['step', 'x', 'Wr', 'Wk', 'Wv', 'Wl', 'proj', 'lora', 'dims']);
export const LN_KERNEL = kernel('rwkv7_proj_ln', lnSource, ['step', 'stepmeta', 'xin', 'lnw', 'shift', 'Wr', 'Wk', 'Wv', 'Wl', 'proj', 'aux', 'dims']);

/**
 * mix [6 planes, C] (r, w, k, v, a, g) with mixPlanes[i] = o.plane(mix, i); wr, wk, wv [C, C]; wl [R, C]: W1, A1,
 * G1, V1 stacked (ranks.v 0: layer 0, no V1); proj [6 planes, C] with projPlanes likewise (planes 0, 2, 3 written);
 * lora [N, R].
 */
export interface Rwkv7ProjArgs {
  mix: Tensor; mixPlanes: Tensor[]; wr: Weight; wk: Weight; wv: Weight; wl: Weight; ranks: LoraRanks;
  proj: Tensor; projPlanes: Tensor[]; lora: Tensor;
}

/** Threads a dispatch should launch to keep enough loads in flight on a large GPU (132 SMs × 1024), as gemv_vec. */
const TARGET_THREADS = 1 << 17;

/** The fused GEMV's geometry (gemv, lnLaunch). */
interface Plan { WG: number; TPR: number; U: number; UNROLL: number; SG_RED: boolean; SGS: number; ends: number[]; outs: number }

/**
 * Lanes per row: from 32, widened (split-K) while the grid is small and each lane keeps ≥ 8 units, narrowed while
 * lanes would idle on a short row; units in flight per lane: up to 8, fewer as the rows held grow (UNROLL · RB ≤ 16)
 * and never more than a lane has. subgroups: reduce with subgroup operations where the adapter has them.
 */
function plan(a: Rwkv7ProjArgs, c: Ctx, rkv: boolean, subgroups: boolean, RB: number, RPT = 1): Plan {
  const C = a.mix.cols;
  return planLens(C, a.wl.dtype, [rkv ? C : 0, rkv ? C : 0, rkv ? C : 0, a.ranks.w, a.ranks.a, a.ranks.g, a.ranks.v], c, subgroups, RB, RPT);
}

/** plan() for the seven segments' row counts `lens` of C-wide weights of `dtype`. */
function planLens(C: number, dtype: string, lens: number[], c: Ctx, subgroups: boolean, RB: number, RPT = 1): Plan {
  const ad = c.adapter;
  const U = C / (dtype === 'f32' ? 4 : 8);
  const WG = Math.min(256, ad.maxInvocations);
  const SGS = ad.subgroupSize;
  const SG_RED = subgroups && ad.subgroups && SGS > 0 && SGS <= WG && (SGS & (SGS - 1)) === 0;
  const outs = lens.reduce((s, v) => s + v, 0);
  let TPR = Math.min(32, WG);
  while (TPR < WG && outs * TPR < TARGET_THREADS && 8 * TPR <= U) TPR *= 2;
  while (TPR > 1 && TPR > U) TPR /= 2;
  const RPW = (WG / TPR) * RPT;
  const ends: number[] = [];
  let e = 0;
  for (const l of lens) { e += Math.ceil(l / RPW); ends.push(e); }
  const UNROLL = Math.max(1, Math.min(8, 16 / RB, Math.floor(U / TPR)));
  return { WG, TPR, U, UNROLL, SG_RED, SGS: SG_RED ? SGS : 1, ends, outs };
}

const rowBlock = (rows: number) => (rows <= 1 ? 1 : rows <= 2 ? 2 : rows <= 4 ? 4 : rows <= 8 ? 8 : PROJ_RMAX);

function dims(a: Rwkv7ProjArgs, p: Plan, w3: number): Uniform {
  const e = p.ends;
  return u32(a.mix.cols, 0, a.lora.cols, w3, e[0]!, e[1]!, e[2]!, e[3]!, e[4]!, e[5]!, e[6]!, 0, a.ranks.w, a.ranks.a, a.ranks.g, a.ranks.v);
}

/** The fused GEMV over the segments (rkv false: the LoRA segments only). */
function gemv(a: Rwkv7ProjArgs, c: Ctx, rkv: boolean, subgroups: boolean): Launch {
  const C = a.mix.cols, rows = c.step.n, f32w = a.wl.dtype === 'f32';
  const RB = rowBlock(rows), p = plan(a, c, rkv, subgroups, RB);
  const [gx, gy] = grid(p.ends[6]!);
  return {
    kernel: KERNEL, grid: [gx, gy, Math.ceil(rows / RB)],
    defines: { WG: p.WG, TPR: p.TPR, U: p.U, RB, UNROLL: p.UNROLL, SG_RED: p.SG_RED, SGS: p.SGS, W_F32: f32w, W_F16: a.wl.dtype === 'f16' },
    cost: { flops: 2 * rows * C * p.outs, bytes: p.outs * C * (f32w ? 4 : 2) + 4 * rows * (4 * C + p.outs) },
    bind: { x: a.mix, Wr: a.wr, Wk: a.wk, Wv: a.wv, Wl: a.wl, proj: a.proj, lora: a.lora, dims: dims(a, p, 0) },
  };
}

/**
 * rwkv7_proj_ln's inputs: ln_shift's, with lnw [NWR + 6, C] = the LayerNorm rows (weight, bias; with xo then the
 * pre-norm's: NWR 4, else 2) then the six mix rows (the shift state is only read). It writes r, k, v into proj
 * planes 0, 2, 3, the activated LoRA rows into plane 1 (row stride C), h into plane 4 and, with xo (layer 0's
 * pre-norm: x is the embedding), LN_pre(x) into xo; a.lora is not written. prev (not with xo): the previous layer's
 * channel-mix shift state, state[slot] ← proj plane 5 row (rwkv7_cmix's h), stored by the first workgroup.
 */
export interface ProjLnArgs { x: Tensor; lnw: Weight; state: Tensor; eps: number; xo?: Tensor | null; prev?: Tensor | null }

/** Rows rwkv7_proj_ln holds per pass for a C-wide row: the step's row block, halved until the mixed rows fit workgroup memory (0: none fit). */
export function lnRowBlockC(C: number, c: Ctx, subgroups = true): number {
  const ad = c.adapter, WG = Math.min(256, ad.maxInvocations), SGS = ad.subgroupSize;
  const SG_RED = subgroups && ad.subgroups && SGS > 0 && SGS <= WG && (SGS & (SGS - 1)) === 0;
  for (let RB = rowBlock(c.step.n); RB >= 1; RB /= 2) {
    const red = SG_RED ? (4 * RB + 8) * (WG / SGS) : (4 * RB + 8) * WG;   // rwkv7_gemv.wgsl's red, rwkv7_red.wgsl's wred
    if (RB * C * 4 + red <= ad.maxWorkgroupStorage) return RB;
  }
  return 0;
}

export function lnRowBlock(a: Rwkv7ProjArgs, c: Ctx, subgroups = true): number {
  return lnRowBlockC(a.mix.cols, c, subgroups);
}

/** Workgroups rwkv7_proj_ln keeps at least when it gives each lane group more output rows (about 1.2 waves of 132 SMs). */
const LN_MIN_WG = 160;

/**
 * Output rows per lane group of rwkv7_proj_ln: FLA_RWKV7_LN_RPT (benchmarking), else the largest of 1, 2, 4 that
 * keeps LN_MIN_WG workgroups — each workgroup builds the mixed rows once for all its output rows (H200, rwkv7-1.5b
 * tg64: 4 rows 499 t/s, 2 476, 1 461, 8 457).
 */
function lnRowsPerGroup(C: number, dtype: string, lens: number[], c: Ctx, subgroups: boolean, RB: number): number {
  const v = knob('FLA_RWKV7_LN_RPT');
  if (v !== undefined) return Number(v);
  let RPT = 1;
  while (RPT < 4 && planLens(C, dtype, lens, c, subgroups, RB, 2 * RPT).ends[6]! >= LN_MIN_WG) RPT *= 2;
  return RPT;
}

/** One rwkv7_proj_ln launch: `lens` rows per segment, weights W (Wr, Wk, Wv, Wl), out (proj or, CMIX, ffk), aux and the mode. */
interface LnGemv {
  C: number; lens: number[]; W: [Weight, Weight, Weight, Weight]; out: Tensor; ln: { x: Tensor; lnw: Weight; state: Tensor; eps: number };
  aux: Tensor | null; mode: 'pre' | 'prev' | 'cmix' | null; loraCols: number; ranks: LoraRanks;
}

function lnGemvLaunch(g: LnGemv, c: Ctx, subgroups: boolean): Launch {
  const C = g.C, rows = c.step.n, dt = g.W[3].dtype, f32w = dt === 'f32';
  const RB = lnRowBlockC(C, c, subgroups);
  if (RB === 0 || C % 4 !== 0) throw new ShapeError(`rwkv7_proj_ln: a row of ${C} columns does not fit ${c.adapter.maxWorkgroupStorage} bytes of workgroup memory`);
  const RPT = lnRowsPerGroup(C, dt, g.lens, c, subgroups, RB);
  const p = planLens(C, dt, g.lens, c, subgroups, RB, RPT);
  const [gx, gy] = grid(p.ends[6]!);
  const eps = new Uint32Array(new Float32Array([g.ln.eps]).buffer)[0]!;
  const blocks = Math.ceil(rows / RB), e = p.ends, r = g.ranks;
  return {
    kernel: LN_KERNEL, grid: [gx, gy, blocks],
    defines: {
      WG: p.WG, TPR: p.TPR, U: p.U, RB, UNROLL: p.UNROLL, RPT, XV: C / 4, EV: Math.ceil(C / 4 / p.WG),
      PRE: g.mode === 'pre', PREV: g.mode === 'prev', CMIX: g.mode === 'cmix', SG_RED: p.SG_RED, SGS: p.SGS, W_F32: f32w, W_F16: dt === 'f16',
    },
    cost: { flops: 2 * rows * C * p.outs, bytes: p.outs * C * (f32w ? 4 : 2) * blocks + 4 * rows * (4 * C + p.outs) },
    bind: {
      xin: g.ln.x, lnw: g.ln.lnw, shift: g.ln.state, Wr: g.W[0], Wk: g.W[1], Wv: g.W[2], Wl: g.W[3], proj: g.out, aux: g.aux,
      dims: u32(C, g.mode === 'cmix' ? g.lens[0]! : 0, g.loraCols, eps, e[0]!, e[1]!, e[2]!, e[3]!, e[4]!, e[5]!, e[6]!, 0, r.w, r.a, r.g, r.v),
    },
  };
}

/** The LayerNorm + token shift + seven projections for a step of one-token sequences (rwkv7_proj_ln.wgsl). */
export function lnLaunch(a: Rwkv7ProjArgs, ln: ProjLnArgs, c: Ctx, subgroups: boolean): Launch {
  const C = a.mix.cols;
  if (ln.xo && ln.prev) throw new ShapeError('rwkv7_proj_ln: the pre-norm (layer 0) and the previous layer\'s shift store are exclusive');
  return lnGemvLaunch({
    C, lens: [C, C, C, a.ranks.w, a.ranks.a, a.ranks.g, a.ranks.v], W: [a.wr, a.wk, a.wv, a.wl], out: a.proj, ln,
    aux: ln.xo ?? ln.prev ?? null, mode: ln.xo ? 'pre' : ln.prev ? 'prev' : null, loraCols: a.lora.cols, ranks: a.ranks,
  }, c, subgroups);
}

/**
 * RWKV7's channel-mix key for a step of one-token sequences (rwkv7_proj_ln.wgsl with CMIX): ffk = relu(xk·Keyᵀ)²,
 * xk = h + (state − h)⊙x_k, h = LN(x); lnw [3, C] = LN weight, bias, x_k; h into hout [N, C] (the state only read).
 */
export function cmixLaunch(key: Weight, ffk: Tensor, ln: { x: Tensor; lnw: Weight; state: Tensor; eps: number }, hout: Tensor, c: Ctx, subgroups: boolean): Launch {
  const C = ln.x.cols, I = key.shape[0]!;
  return lnGemvLaunch({
    C, lens: [I, 0, 0, 0, 0, 0, 0], W: [key, key, key, key], out: ffk, ln, aux: hout, mode: 'cmix', loraCols: 0, ranks: { w: 0, a: 0, g: 0, v: 0 },
  }, c, subgroups);
}

/** split: r, k, v as matmuls (each the variant matmul itself would run, with its scratch). */
export function rkvMatmuls(a: Rwkv7ProjArgs): MatmulArgs[] {
  return ([[a.wr, 0], [a.wk, 2], [a.wv, 3]] as const).map(([w, p]) => ({ x: a.mixPlanes[p]!, w, bias: null, y: a.projPlanes[p]!, act: 'none', accumulate: false }));
}

function sameDtype(a: Rwkv7ProjArgs): boolean {
  return [a.wr, a.wk, a.wv].every(w => w.dtype === a.wl.dtype);
}

/** The includes of both kernels (rwkv7_gemv.wgsl, rwkv7_red.wgsl). */
export const PROJ_INCLUDES = RWKV7_INCLUDES;

export const rwkv7ProjOp = op<Rwkv7ProjArgs>({
  name: 'rwkv7_proj',
  includes: PROJ_INCLUDES,
  check(a) {
    const C = a.mix.cols, R = a.ranks.w + a.ranks.a + a.ranks.g + a.ranks.v;
    if (C % 8 !== 0) throw new ShapeError(`rwkv7_proj: hidden size ${C} must be a multiple of 8`);
    if (a.mix.planes !== 6 || a.proj.planes !== 6 || a.proj.cols !== C || a.mixPlanes.length !== 6 || a.projPlanes.length !== 6 || a.mix.rows !== 'n')
      throw new ShapeError('rwkv7_proj: mix and proj must be 6-plane [N, C] tensors, with their planes');
    for (const w of [a.wr, a.wk, a.wv]) if (w.shape[0] !== C || w.shape[1] !== C) throw new ShapeError(`rwkv7_proj: weight [${w.shape.join(', ')}], expected [${C}, ${C}]`);
    if (a.wl.shape[0] !== R || a.wl.shape[1] !== C || a.lora.cols !== R) throw new ShapeError(`rwkv7_proj: LoRA weight [${a.wl.shape.join(', ')}], lora ${a.lora.cols} columns, ranks sum ${R}`);
    if (a.wl.dtype === 'fp8') throw new ShapeError('rwkv7_proj: the stacked LoRA weight must be f32, bf16 or f16');
  },
  /** 'fused' for ≤ 16 rows when the four weights share a dtype; else 'split'. */
  select: (c, a) => (c.step.n <= PROJ_RMAX && sameDtype(a) ? 'fused' : 'split'),
  variants: {
    fused: {
      supports: a => sameDtype(a),
      launches: (a, c) => [gemv(a, c, true, true)],
    },
    fused_wg: {
      supports: a => sameDtype(a),
      launches: (a, c) => [gemv(a, c, true, false)],
    },
    split: {
      scratch: (a, c) => mergeScratch(...rkvMatmuls(a).map(m => partScratch(matmulOp, m, c))),
      launches: (a, c) => {
        const out: Launch[] = [];
        for (const m of rkvMatmuls(a)) out.push(...partLaunches(matmulOp, m, c));
        // the LoRA segments alone: the r, k, v weights are bound (unread) only to fill their bindings
        out.push(gemv({ ...a, wr: a.wl, wk: a.wl, wv: a.wl }, c, false, true));
        return out;
      },
    },
  },
  ref: (a, h) => rwkv7ProjRef(h.data(a.mix), h.data(a.wr), h.data(a.wk), h.data(a.wv), h.data(a.wl), h.data(a.proj), h.data(a.lora),
    { C: a.mix.cols, cap: h.cap(a.mix), ranks: a.ranks, rkv: true }),
});

/** r, k, v (proj planes 0, 2, 3) and the activated LoRA down-projections (lora) of one layer's mixed token. */
export function rwkv7Proj(o: Backend, a: Rwkv7ProjArgs): Promise<void> {
  return o.run(rwkv7ProjOp, a);
}
