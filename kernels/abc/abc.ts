// abc op (kernels/abc/abc_recurrent.wgsl): ABC's two-stage slot-memory recurrence, recurrent over each packed
// sequence with per-slot f32 state (Hk, Hv and the running log-normaliser z).
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { f32, kernel, only, ONLY, op } from '../lib.ts';
import { abcRef, abcStateCols, type AbcDims } from './abc.ref.ts';
import source from './abc_recurrent.wgsl' with { type: 'text' };

export const KERNEL = kernel('abc_recurrent', source, ['step', 'stepmeta', 'q', 'k', 'v', 's', 'state', 'o', 'dims']);

export interface AbcArgs extends AbcDims { q: Tensor; k: Tensor; v: Tensor; s: Tensor; state: Tensor; out: Tensor }

/** Workgroup size: the smallest power of two ≥ 64 covering max(M, DV), at most the adapter's limit (and 256). */
export function workgroup(M: number, DV: number, maxInvocations: number): number {
  const cap = Math.min(256, maxInvocations);
  let WG = 64;
  while (WG < Math.max(M, DV) && WG < cap) WG *= 2;
  if (WG > cap) throw new ShapeError(`abc: adapter allows only ${cap} invocations per workgroup`);
  return WG;
}

export const abcOp = op<AbcArgs>({
  name: 'abc',
  check(a) { if (a.state.cols !== abcStateCols(a)) throw new ShapeError(`abc: state has ${a.state.cols} columns per slot, expected ${abcStateCols(a)}`); },
  select: only(),
  variants: {
    [ONLY]: {
      launches: (a, c) => {
        const WG = workgroup(a.M, a.DV, c.adapter.maxInvocations);
        return [{
          kernel: KERNEL, grid: [a.H, c.step.b, 1],
          defines: { DK: a.DK, DV: a.DV, M: a.M, WG, NM: Math.ceil(a.M / WG), NV: Math.ceil(a.DV / WG) },
          bind: { q: a.q, k: a.k, v: a.v, s: a.s, state: a.state, o: a.out, dims: f32(a.H, a.scale, a.clampMin, a.clampMax) },
        }];
      },
    },
  },
  ref: (a, h) => abcRef(h.data(a.q), h.data(a.k), h.data(a.v), h.data(a.s), h.data(a.state), h.data(a.out), h.step.cursors, a),
});

export function cost(N: number, H: number, DK: number, DV: number, M: number) {
  return { flops: 4 * N * H * M * (DK + DV), bytes: 4 * N * H * (2 * DK + 2 * DV + M) };
}

export interface AbcOp { q: Tensor; k: Tensor; v: Tensor; s: Tensor; state: Tensor; out: Tensor; H: number; DK: number; DV: number; M: number; scale: number; clampMin: number | null; clampMax: number | null }

/** o = ABC attention of (rotated) q, k, v with slot logits s; the slot state continues each sequence. */
export function abc(o: Backend, a: AbcOp): Promise<void> {
  return o.run(abcOp, { ...a, clampMin: a.clampMin ?? -3e38, clampMax: a.clampMax ?? 3e38 });
}
