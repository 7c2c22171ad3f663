// gla op wrapper (kernels/gla/gla_recurrent.wgsl): gated linear attention (GLA) and, without gate, fla's linear
// attention, recurrent over each packed sequence with per-slot f32 state.
import type { Dispatch, Gpu } from '../../src/gpu/device.ts';
import { binding, dispatch, type StepCtx, type View } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { FMAP, glaRef, glaStateCols, glaValueTile, type Fmap } from './gla.ref.ts';
import source from './gla_recurrent.wgsl' with { type: 'text' };

export const BINDINGS = ['step', 'meta', 'q', 'k', 'v', 'gk', 'state', 'o', 'dims', 'dims2'] as const;

export interface GlaArgs {
  q: View; k: View; v: View; gk: View | null; state: View; o: View; normalize: boolean;
  H: number; HKV: number; DK: number; DV: number; scale: number; gateNormalizer: number; clampMin: number | null; fmap: Fmap;
}

export function build(gpu: Gpu, s: StepCtx, a: GlaArgs, dummy: View): Promise<Dispatch> {
  if (a.H % a.HKV !== 0) throw new ShapeError(`gla: ${a.H} heads are not a multiple of ${a.HKV} kv heads`);
  const TV = glaValueTile(a.DV);
  if (a.DV % TV !== 0) throw new ShapeError(`gla: value head dim ${a.DV} must be a multiple of ${TV}`);
  return dispatch(gpu, {
    label: 'gla_recurrent', source,
    defines: { DK: a.DK, DV: a.DV, TV, HAS_GATE: a.gk !== null, NORMALIZE: a.normalize, FMAP: FMAP[a.fmap] },
  }, [{ buffer: s.uniform }, { buffer: s.meta }, binding(a.q), binding(a.k), binding(a.v), binding(a.gk ?? dummy), binding(a.state), binding(a.o),
    { buffer: gpu.uniform(new Float32Array([a.H, a.HKV, a.scale, a.gateNormalizer])) },
    { buffer: gpu.uniform(new Float32Array([a.clampMin ?? -3e38, 0, 0, 0])) }],
  [a.H * a.DV / TV, s.b, 1]);
}

export function cost(N: number, H: number, DK: number, DV: number) {
  return { flops: 4 * N * H * DK * DV, bytes: 4 * N * H * (3 * DK + 2 * DV) };
}

export interface GlaOp {
  q: Tensor; k: Tensor; v: Tensor; gk: Tensor | null; state: Tensor; out: Tensor; normalize?: boolean;
  H: number; HKV: number; DK: number; DV: number; scale: number;
  gateNormalizer?: number; clampMin?: number | null; fmap?: Fmap;
}

/** o = gated linear attention of q, k, v (gk: raw gate logits, null = no decay; normalize: the state
 * of each slot also holds z [H, DK] after S [H, DK, DV]). */
export async function gla(o: Backend, a: GlaOp): Promise<void> {
  const d = {
    H: a.H, HKV: a.HKV, DK: a.DK, DV: a.DV, scale: a.scale, gateNormalizer: a.gateNormalizer ?? 16,
    clampMin: a.clampMin ?? null, fmap: a.fmap ?? 'none' as Fmap, normalize: !!a.normalize,
  };
  if (a.state.cols !== glaStateCols(d)) throw new ShapeError(`gla: state has ${a.state.cols} columns per slot, expected ${glaStateCols(d)}`);
  if (o instanceof GpuBackend) {
    o.push(await build(o.gpu, o.step, {
      ...d, q: o.view(a.q), k: o.view(a.k), v: o.view(a.v), gk: a.gk ? o.view(a.gk) : null, state: o.view(a.state),
      o: o.view(a.out),
    }, o.dummyView));
    return;
  }
  const c = o as CpuBackend;
  glaRef(c.data(a.q), c.data(a.k), c.data(a.v), a.gk ? c.data(a.gk) : null, c.data(a.state),
    c.data(a.out), c.step.cursors, d);
}
