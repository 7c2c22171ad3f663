// moe_topk op: the MoE router's top-K experts of each token, compact: sel [N, 2K] = K expert indices, then their
// weights (softmax over all E, optionally renormalised over the K). With `shared`, the logits carry one more column
// (the shared expert's gate logit, the router GEMV's last row) and sel one more: its sigmoid, sel [N, 2K + 1].
// The expert kernels (moe_experts) read it. Variants: 'subgroup' (moe_topk_sg.wgsl, subgroup reductions, where the
// adapter has subgroups) and 'wg' (moe_topk.wgsl, workgroup trees, portable); FLA_KERNEL_MOE_TOPK=subgroup|wg forces one.
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { knob } from '../../src/util/knobs.ts';
import { grid, kernel, op, u32, type Ctx } from '../lib.ts';
import { moeTopkRef } from './moe_topk.ref.ts';
import source from './moe_topk.wgsl' with { type: 'text' };
import sgSource from './moe_topk_sg.wgsl' with { type: 'text' };
import routeSrc from './moe_route_sg.wgsl' with { type: 'text' };

export const KERNEL = kernel('moe_topk', source, ['step', 'logits', 'sel', 'dims']);
export const SG_KERNEL = kernel('moe_topk_sg', sgSource, ['step', 'logits', 'sel', 'dims']);

/** Largest expert count (the probabilities of a row are kept in workgroup memory). */
export const EMAX = 1024;

/** Threads of the subgroup variant's workgroup (EMAX / SG_WG experts per thread, in registers). */
const SG_WG = 256;
const sgOk = (c: Ctx) => c.adapter.subgroups && c.adapter.maxInvocations >= SG_WG && c.adapter.subgroupSize >= 4 && c.adapter.subgroupSize <= 128;

export interface MoeTopkArgs { logits: Tensor; sel: Tensor; k: number; norm: boolean; shared: boolean }

const expertsOf = (a: MoeTopkArgs) => a.logits.cols - (a.shared ? 1 : 0);
/** Largest top-k of route()'s two-barrier path (moe_route_sg.wgsl RT_K: a sorted list of k per subgroup in workgroup memory). */
export const RT_KMAX = 16;
/** RT_K for a top-k: k where the two-barrier path takes it, else 0 (route()'s round-per-barrier path); FLA_MOE_ROUTE=rounds forces the latter. */
export const rtK = (k: number) => (k <= RT_KMAX && knob('FLA_MOE_ROUTE') !== 'rounds' ? k : 0);

/** Columns of moe_topk's selection for top-k (with a shared expert gate: one more). */
export const selCols = (k: number, shared: boolean) => 2 * k + (shared ? 1 : 0);

export function cost(N: number, E: number, K: number) {
  return { flops: N * E * (2 * K + 4), bytes: 4 * N * (E + 2 * K) };
}

export const moeTopkOp = op<MoeTopkArgs>({
  name: 'moe_topk',
  includes: { 'moe_route_sg.wgsl': routeSrc },
  check(a) {
    const { logits, sel, k } = a, E = expertsOf(a);
    if (sel.cols !== selCols(k, a.shared) || k < 1 || k > E || E > EMAX || logits.rows !== 'n' || sel.rows !== 'n')
      throw new ShapeError(`moe_topk: ${E} experts (at most ${EMAX}), top-${k}, selection of ${sel.cols} columns (expected ${selCols(k, a.shared)})`);
  },
  /** 'subgroup' where the adapter has subgroups (one barrier per selected expert), else 'wg' (workgroup trees). */
  select: c => (sgOk(c) ? 'subgroup' : 'wg'),
  variants: {
    subgroup: {
      supports: (_a, c) => sgOk(c),
      launches: (a, c) => [{
        kernel: SG_KERNEL, grid: grid(c.step.n), defines: { NORM_TOPK: a.norm, SHARED: a.shared, EMAX, KMAX: EMAX, WG: SG_WG, SGS: c.adapter.subgroupSize, RT_K: rtK(a.k) }, cost: cost(c.step.n, expertsOf(a), a.k),
        bind: { logits: a.logits, sel: a.sel, dims: u32(expertsOf(a), a.k, a.logits.cols, a.sel.cols) },
      }],
    },
    wg: {
      launches: (a, c) => [{
        kernel: KERNEL, grid: grid(c.step.n), defines: { NORM: a.norm, SHARED: a.shared, EMAX }, cost: cost(c.step.n, expertsOf(a), a.k),
        bind: { logits: a.logits, sel: a.sel, dims: u32(expertsOf(a), a.k, a.logits.cols, a.sel.cols) },
      }],
    },
  },
  ref: (a, h) => moeTopkRef(h.data(a.logits), h.data(a.sel), h.step.ids.length, expertsOf(a), a.k, a.norm, a.shared),
});

/**
 * sel [N, 2K] = the top `k` experts of each token and their weights, from router logits [N, E] ('n' rows); `shared`:
 * logits [N, E + 1] whose last column is the shared expert's gate logit, sel [N, 2K + 1] ending with its sigmoid.
 */
export function moeTopk(o: Backend, logits: Tensor, sel: Tensor, k: number, norm: boolean, shared = false): Promise<void> {
  return o.run(moeTopkOp, { logits, sel, k, norm, shared });
}
