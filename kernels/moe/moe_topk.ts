// moe_topk op: the MoE router's top-K experts of each token, compact: sel [N, 2K] = K expert indices, then their
// weights (softmax over all E, optionally renormalised over the K). The routed expert kernels (moe_experts) read it.
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import type { Dispatch, Gpu } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, type StepCtx, type View } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { moeTopkRef } from './moe_topk.ref.ts';
import source from './moe_topk.wgsl' with { type: 'text' };

/** Largest expert count (the probabilities of a row are kept in workgroup memory). */
export const EMAX = 1024;

export const BINDINGS = ['step', 'logits', 'sel', 'dims'] as const;

export interface MoeTopkArgs { logits: View; sel: View; E: number; K: number; norm: boolean }

export function build(gpu: Gpu, s: StepCtx, a: MoeTopkArgs): Promise<Dispatch> {
  return dispatch(gpu, { label: 'moe_topk', source, defines: { NORM: a.norm, EMAX } },
    [{ buffer: s.uniform }, binding(a.logits), binding(a.sel), { buffer: gpu.uniform(new Uint32Array([a.E, a.K, 0, 0])) }],
    grid(s.n));
}

export function cost(N: number, E: number, K: number) {
  return { flops: N * E * (2 * K + 4), bytes: 4 * N * (E * (K + 2) + 2 * K) };
}

/** sel [N, 2K] = the top `k` experts of each token and their weights, from router logits [N, E] ('n' rows). */
export async function moeTopk(o: Backend, logits: Tensor, sel: Tensor, k: number, norm: boolean): Promise<void> {
  const E = logits.cols;
  if (sel.cols !== 2 * k || k < 1 || k > E || E > EMAX || logits.rows !== 'n' || sel.rows !== 'n')
    throw new ShapeError(`moe_topk: ${E} experts, top-${k}, selection of ${sel.cols} columns (expected ${2 * k})`);
  if (o instanceof GpuBackend) {
    o.push(await build(o.gpu, o.step, { logits: o.view(logits), sel: o.view(sel), E, K: k, norm }), cost(o.step.n, E, k));
    return;
  }
  const c = o as CpuBackend;
  moeTopkRef(c.data(logits), c.data(sel), c.step.ids.length, E, k, norm);
}
