// moe_route op: the MoE router's per-token expert weights [N, E] from the router logits (softmax, top-k,
// optional renormalisation); zero for experts a token does not use.
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import type { Dispatch, Gpu } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, type StepCtx, type View } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { moeRouteRef } from './moe_route.ref.ts';
import source from './moe_route.wgsl' with { type: 'text' };

export const BINDINGS = ['step', 'logits', 'w', 'dims'] as const;

export interface MoeRouteArgs { logits: View; w: View; E: number; K: number; norm: boolean }

export function build(gpu: Gpu, s: StepCtx, a: MoeRouteArgs): Promise<Dispatch> {
  return dispatch(gpu, { label: 'moe_route', source, defines: { NORM: a.norm } },
    [{ buffer: s.uniform }, binding(a.logits), binding(a.w), { buffer: gpu.uniform(new Uint32Array([a.E, a.K, 0, 0])) }],
    grid(Math.ceil(s.n / 64)));
}

export function cost(N: number, E: number, K: number) {
  return { flops: N * E * (K + 8), bytes: 4 * N * E * 3 };
}

/** w = routing weights [N, E] of the top `k` experts per token from router logits [N, E] ('n' rows). */
export async function moeRoute(o: Backend, logits: Tensor, w: Tensor, k: number, norm: boolean): Promise<void> {
  const E = logits.cols;
  if (w.cols !== E || k < 1 || k > E || logits.rows !== 'n') throw new ShapeError(`moe_route: ${E} experts, top-${k}, weights of ${w.cols} columns`);
  if (o instanceof GpuBackend) {
    o.push(await build(o.gpu, o.step, { logits: o.view(logits), w: o.view(w), E, K: k, norm }), cost(o.step.n, E, k));
    return;
  }
  const c = o as CpuBackend;
  moeRouteRef(c.data(logits), c.data(w), c.step.ids.length, E, k, norm);
}
