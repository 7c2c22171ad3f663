// moe_topk op: the MoE router's top-K experts of each token, compact: sel [N, 2K] = K expert indices, then their
// weights (softmax over all E, optionally renormalised over the K). The routed expert kernels (moe_experts) read it.
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, only, ONLY, op, u32 } from '../lib.ts';
import { moeTopkRef } from './moe_topk.ref.ts';
import source from './moe_topk.wgsl' with { type: 'text' };

export const KERNEL = kernel('moe_topk', source, ['step', 'logits', 'sel', 'dims']);

/** Largest expert count (the probabilities of a row are kept in workgroup memory). */
export const EMAX = 1024;

export interface MoeTopkArgs { logits: Tensor; sel: Tensor; k: number; norm: boolean }

export function cost(N: number, E: number, K: number) {
  return { flops: N * E * (2 * K + 4), bytes: 4 * N * (E + 2 * K) };
}

export const moeTopkOp = op<MoeTopkArgs>({
  name: 'moe_topk',
  check({ logits, sel, k }) {
    const E = logits.cols;
    if (sel.cols !== 2 * k || k < 1 || k > E || E > EMAX || logits.rows !== 'n' || sel.rows !== 'n')
      throw new ShapeError(`moe_topk: ${E} experts (at most ${EMAX}), top-${k}, selection of ${sel.cols} columns (expected ${2 * k})`);
  },
  select: only(),
  variants: {
    [ONLY]: {
      launches: (a, c) => [{
        kernel: KERNEL, grid: grid(c.step.n), defines: { NORM: a.norm, EMAX }, cost: cost(c.step.n, a.logits.cols, a.k),
        bind: { logits: a.logits, sel: a.sel, dims: u32(a.logits.cols, a.k, 0, 0) },
      }],
    },
  },
  ref: (a, h) => moeTopkRef(h.data(a.logits), h.data(a.sel), h.step.ids.length, a.logits.cols, a.k, a.norm),
});

/** sel [N, 2K] = the top `k` experts of each token and their weights, from router logits [N, E] ('n' rows). */
export function moeTopk(o: Backend, logits: Tensor, sel: Tensor, k: number, norm: boolean): Promise<void> {
  return o.run(moeTopkOp, { logits, sel, k, norm });
}
