// rwkv7_proj op: RWKV7's r, k, v projections and LoRA down-projections of the mixed token. 'fused'
// (kernels/rwkv7/rwkv7_proj.wgsl): all seven as one GEMV, each output row reading its own mix plane, for decode-sized
// steps (≤ 16 rows); 'split': r, k, v as three matmuls (the GEMM for prefill) and the LoRA segments through the same
// GEMV kernel (the stacked LoRA weight is small: read once per 16 rows).
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, op, u32, type Ctx, type Launch } from '../lib.ts';
import { matmulOp, type MatmulArgs } from '../matmul/matmul.ts';
import source from './rwkv7_proj.wgsl' with { type: 'text' };
import { rwkv7ProjRef } from './rwkv7_proj.ref.ts';
import type { LoraRanks } from './wkv7_lora.ref.ts';

/** Rows one fused dispatch holds in registers at most (workgroup memory: WG · RB f32 ≤ 16 KiB); 'fused' is chosen up to here. */
export const PROJ_RMAX = 16;

export const KERNEL = kernel('rwkv7_proj', source, ['step', 'x', 'Wr', 'Wk', 'Wv', 'Wl', 'proj', 'lora', 'dims']);

/**
 * mix [6 planes, C] (r, w, k, v, a, g) with mixPlanes[i] = o.plane(mix, i); wr, wk, wv [C, C]; wl [R, C]: W1, A1,
 * G1, V1 stacked (ranks.v 0: layer 0, no V1); proj [6 planes, C] with projPlanes likewise (planes 0, 2, 3 written);
 * lora [N, R].
 */
export interface Rwkv7ProjArgs {
  mix: Tensor; mixPlanes: Tensor[]; wr: Weight; wk: Weight; wv: Weight; wl: Weight; ranks: LoraRanks;
  proj: Tensor; projPlanes: Tensor[]; lora: Tensor;
}

function gemv(a: Rwkv7ProjArgs, c: Ctx, rkv: boolean): Launch {
  const C = a.mix.cols, R = a.lora.cols, rows = c.step.n;
  const f32w = a.wl.dtype === 'f32';
  const U = C / (f32w ? 4 : 8);
  const WG = Math.min(256, c.adapter.maxInvocations);
  let TPR = Math.min(32, WG);
  while (TPR > 1 && TPR > U) TPR /= 2;
  const RPW = WG / TPR;
  const lens = [rkv ? C : 0, rkv ? C : 0, rkv ? C : 0, a.ranks.w, a.ranks.a, a.ranks.g, a.ranks.v];
  const ends: number[] = [];
  let e = 0;
  for (const l of lens) { e += Math.ceil(l / RPW); ends.push(e); }
  const RB = rows <= 1 ? 1 : rows <= 2 ? 2 : rows <= 4 ? 4 : rows <= 8 ? 8 : PROJ_RMAX;
  const [gx, gy] = grid(e);
  const wbytes = f32w ? 4 : 2, outs = lens.reduce((s, v) => s + v, 0);
  return {
    kernel: KERNEL, grid: [gx, gy, Math.ceil(rows / RB)],
    defines: { WG, RB, UNROLL: Math.min(4, 16 / RB), W_F32: f32w, W_F16: a.wl.dtype === 'f16' },
    cost: { flops: 2 * rows * C * outs, bytes: outs * C * wbytes + 4 * rows * (4 * C + outs) },
    bind: {
      x: a.mix, Wr: a.wr, Wk: a.wk, Wv: a.wv, Wl: a.wl, proj: a.proj, lora: a.lora,
      dims: u32(C, U, TPR, R, ends[0]!, ends[1]!, ends[2]!, ends[3]!, ends[4]!, ends[5]!, ends[6]!, 0, a.ranks.w, a.ranks.a, a.ranks.g, a.ranks.v),
    },
  };
}

function sameDtype(a: Rwkv7ProjArgs): boolean {
  return [a.wr, a.wk, a.wv].every(w => w.dtype === a.wl.dtype);
}

/** The split variant's r, k, v matmuls (proj planes 0, 2, 3). */
function splitParts(a: Rwkv7ProjArgs): MatmulArgs[] {
  return ([[a.wr, 0], [a.wk, 2], [a.wv, 3]] as const).map(([w, p]) => ({ x: a.mixPlanes[p]!, w, bias: null, y: a.projPlanes[p]!, act: 'none', accumulate: false }));
}

export const rwkv7ProjOp = op<Rwkv7ProjArgs>({
  name: 'rwkv7_proj',
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
      launches: (a, c) => [gemv(a, c, true)],
    },
    split: {
      // the scratch of each matmul's own variant (sgmat's pre-split activations)
      scratch: (a, c) => Object.assign({}, ...splitParts(a).map(m => matmulOp.variants[matmulOp.select(c, m)]!.scratch?.(m, c) ?? {})),
      launches: (a, c) => {
        const out: Launch[] = [];
        for (const m of splitParts(a)) out.push(...matmulOp.variants[matmulOp.select(c, m)]!.launches(m, c));
        // the LoRA segments alone: the r, k, v weights are bound (unread) only to fill their bindings
        out.push(gemv({ ...a, wr: a.wl, wk: a.wl, wv: a.wl }, c, false));
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
