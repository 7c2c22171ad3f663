// ln_shift op (kernels/rwkv7/ln_shift.wgsl): LayerNorm + token shift with mixing + shift-state store in one
// dispatch, for RWKV7's time-mix (6 mix planes; layer 0 with the pre-norm before it) and channel-mix (1 plane) halves.
// Each token row is cut into column blocks of one workgroup each (the row statistics taken by every block, from
// registers), so a decode step's row spreads over the card instead of one workgroup's chain of loads. 'fused'
// reduces with subgroup operations where the adapter has them; 'fused_wg' (forced only) through workgroup memory.
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { f32, grid, kernel, op, type Ctx, type Launch } from '../lib.ts';
import { workgroup } from '../norm/layer_norm.ts';
import source from './ln_shift.wgsl' with { type: 'text' };
import { lnShiftRef } from './ln_shift.ref.ts';
import { RWKV7_INCLUDES } from './includes.ts';

export const KERNEL = kernel('ln_shift', source, ['step', 'stepmeta', 'x', 'nw', 'state', 'mix', 'out', 'xo', 'dims']);

/**
 * x [N, C]; nw [2, C] (LN weight, bias) or, with xo, [4, C] (then the pre-norm's weight and bias: x is the
 * embedding and xo receives LN_pre(x)); state [slots, C]; mix [M, C]; out: M planes of [N, C].
 */
export interface LnShiftArgs { x: Tensor; nw: Weight; state: Tensor; mix: Weight; out: Tensor; xo: Tensor | null; eps: number }

function launch(a: LnShiftArgs, c: Ctx, subgroups: boolean): Launch {
  const C = a.x.cols, N = c.step.n, M = a.out.planes, ad = c.adapter;
  const WG = workgroup(ad.maxInvocations, C), NB = Math.ceil(C / WG);
  const SGS = ad.subgroupSize;
  const SG_RED = subgroups && ad.subgroups && SGS > 0 && SGS <= WG && (SGS & (SGS - 1)) === 0;
  return {
    kernel: KERNEL, grid: grid(N * NB),
    defines: { WG, EPT: Math.ceil(C / WG), NB, M, PRE: a.xo !== null, SG_RED, SGS: SG_RED ? SGS : 1 },
    cost: { flops: (a.xo ? 24 : 12) * N * C + 2 * M * N * C, bytes: 4 * ((a.xo ? 5 : 3) * N * C + M * N * C + (M + 4) * C) + 8 * c.step.b * C },
    bind: { x: a.x, nw: a.nw, state: a.state, mix: a.mix, out: a.out, xo: a.xo, dims: f32(C, M, a.eps) },
  };
}

export const lnShiftOp = op<LnShiftArgs>({
  name: 'ln_shift',
  includes: RWKV7_INCLUDES,
  check(a) {
    const C = a.x.cols, planes = a.xo ? 4 : 2;
    if (a.nw.shape[0] !== planes || a.nw.shape[1] !== C) throw new ShapeError(`ln_shift: norm weights [${a.nw.shape.join(', ')}], expected [${planes}, ${C}]`);
    if (a.mix.shape[0] !== a.out.planes || a.mix.shape[1] !== C || a.out.cols !== C || a.state.cols !== C || (a.xo && a.xo.cols !== C))
      throw new ShapeError(`ln_shift: mix [${a.mix.shape.join(', ')}], out ${a.out.planes}×${a.out.cols}, state ${a.state.cols}, x ${C} columns`);
  },
  /** 'fused' (subgroup reductions where the adapter has them); 'fused_wg' only when forced. */
  select: () => 'fused',
  variants: {
    fused: { launches: (a, c) => [launch(a, c, true)] },
    fused_wg: { launches: (a, c) => [launch(a, c, false)] },
  },
  ref: (a, h) => lnShiftRef(h.data(a.x), h.data(a.nw), h.data(a.state), h.data(a.mix), h.data(a.out), a.xo ? h.data(a.xo) : null,
    h.step.cursors, { C: a.x.cols, M: a.out.planes, cap: h.cap(a.x), eps: a.eps, pre: a.xo !== null }),
});

/** out[m, t] = h_t + (prev − h_t)·mix[m], h = LN(x) (x ← LN_pre(x) into xo first when xo is given); state ← h of each sequence's last token. */
export function lnShift(o: Backend, a: LnShiftArgs): Promise<void> {
  return o.run(lnShiftOp, a);
}
