// moe_route op: the MoE router's per-token expert weights [N, E] from the router logits (softmax, top-k,
// optional renormalisation); zero for experts a token does not use.
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, only, ONLY, op, u32 } from '../lib.ts';
import { moeRouteRef } from './moe_route.ref.ts';
import source from './moe_route.wgsl' with { type: 'text' };

export const KERNEL = kernel('moe_route', source, ['step', 'logits', 'w', 'dims']);

export interface MoeRouteArgs { logits: Tensor; w: Tensor; k: number; norm: boolean }

export const moeRouteOp = op<MoeRouteArgs>({
  name: 'moe_route',
  check({ logits, w, k }) {
    const E = logits.cols;
    if (w.cols !== E || k < 1 || k > E || logits.rows !== 'n') throw new ShapeError(`moe_route: ${E} experts, top-${k}, weights of ${w.cols} columns`);
  },
  select: only(),
  variants: {
    [ONLY]: {
      launches: (a, c) => [{
        kernel: KERNEL, grid: grid(Math.ceil(c.step.n / 64)), defines: { NORM: a.norm }, cost: cost(c.step.n, a.logits.cols, a.k),
        bind: { logits: a.logits, w: a.w, dims: u32(a.logits.cols, a.k, 0, 0) },
      }],
    },
  },
  ref: (a, h) => moeRouteRef(h.data(a.logits), h.data(a.w), h.step.ids.length, a.logits.cols, a.k, a.norm),
});

export function cost(N: number, E: number, K: number) {
  return { flops: N * E * (K + 8), bytes: 4 * N * E * 3 };
}

/** w = routing weights [N, E] of the top `k` experts per token from router logits [N, E] ('n' rows). */
export function moeRoute(o: Backend, logits: Tensor, w: Tensor, k: number, norm: boolean): Promise<void> {
  return o.run(moeRouteOp, { logits, w, k, norm });
}
