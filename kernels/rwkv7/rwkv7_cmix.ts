// rwkv7_cmix op: the front of RWKV7's channel mix (spec-rwkv7-gla-abc.md §1.4) — LayerNorm + token shift, then the key
// projection with relu² — as one op. 'ln' (a decode step of one-token sequences where the op is given hout): one
// dispatch, rwkv7_proj_ln.wgsl with CMIX (every workgroup takes the row statistics itself and only reads the shift
// state; the first writes h into hout), the shift-state store left to the next layer's rwkv7_tmix (its prevCmix
// argument: stored from hout in that op's first dispatch, when nothing reads this state), so the channel mix costs
// two dispatches instead of three; subgroup reductions where the adapter has them ('ln_wg', forced only: workgroup
// memory). 'ops': ln_shift (which stores the state) and the matmul op, each as it would run alone.
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { op, type Ctx } from '../lib.ts';
import { matmulOp, type MatmulArgs } from '../matmul/matmul.ts';
import { layerNormRef } from '../norm/layer_norm.ref.ts';
import { mergeScratch, partLaunches, partScratch, partVariant } from './compose.ts';
import { lnShiftOp, type LnShiftArgs } from './ln_shift.ts';
import { cmixLaunch, lnRowBlockC, PROJ_INCLUDES, PROJ_RMAX } from './rwkv7_proj.ts';

/**
 * ln: ln_shift's arguments for one mix plane (ln.out: xk [N, C], ln.xo null); lnw [3, C]: ln.nw's rows then ln.mix's
 * (the one weight the fused kernel reads); key [I, C]; ffk [N, I] ← relu(xk·keyᵀ)². hout [N, C]: where the op
 * defers (cmixDeferred: 'ln', 'ln_wg'), h = LN(x) of every row is written there and the shift state (ln.state) left
 * unstored — the caller passes these arguments as the next rwkv7_tmix's prevCmix, which stores it; elsewhere the
 * state is stored here and hout is not written (the reference always writes it). Without hout: never deferred.
 */
export interface Rwkv7CmixArgs { ln: LnShiftArgs; lnw: Weight; key: Weight; ffk: Tensor; hout?: Tensor | null }

const keyMatmul = (a: Rwkv7CmixArgs): MatmulArgs => ({ x: a.ln.out, w: a.key, bias: null, y: a.ffk, act: 'relu2', accumulate: false });

/**
 * 'ln' runs: one-token sequences, hout given, 16-byte weight units, a row that fits workgroup memory — for select, all
 * the step's rows in one pass over the weights (more rows than fit would read the key once per row block: forced only).
 */
function lnFits(a: Rwkv7CmixArgs, c: Ctx, subgroups: boolean, onePass = false): boolean {
  const C = a.ln.x.cols, RB = lnRowBlockC(C, c, subgroups);
  return c.step.maxLen <= 1 && !!a.hout && C % 8 === 0 && a.key.dtype !== 'fp8' && RB > 0 && (!onePass || RB >= Math.min(c.step.n, PROJ_RMAX));
}

export const rwkv7CmixOp = op<Rwkv7CmixArgs>({
  name: 'rwkv7_cmix',
  includes: PROJ_INCLUDES,
  check(a) {
    const C = a.ln.x.cols, I = a.key.shape[0]!;
    if (a.ln.out.planes !== 1 || a.ln.mix.shape[0] !== 1 || a.ln.xo) throw new ShapeError('rwkv7_cmix: ln_shift must mix one plane, without the pre-norm');
    if (a.lnw.shape[0] !== 3 || a.lnw.shape[1] !== C || a.lnw.dtype !== 'f32') throw new ShapeError(`rwkv7_cmix: lnw [${a.lnw.shape.join(', ')}] ${a.lnw.dtype}, expected [3, ${C}] f32`);
    if (a.key.shape[1] !== C || a.ffk.cols !== I) throw new ShapeError(`rwkv7_cmix: key [${a.key.shape.join(', ')}], ffk ${a.ffk.cols} columns, C=${C}`);
    if (a.hout && a.hout.cols !== C) throw new ShapeError(`rwkv7_cmix: hout ${a.hout.cols} columns, expected ${C}`);
    lnShiftOp.check?.(a.ln);
    matmulOp.check?.(keyMatmul(a));
  },
  /**
   * 'ops': 'ln' is forced only — its key GEMV (rwkv7_proj_ln.wgsl) streamed ~1.0 TB/s on the H200 against gemv_vec's
   * 1.6, and the dispatch it saves did not pay for that (rwkv7-1.5b tg64 461 t/s with it, 545 without, 2026-12-02).
   */
  select: () => 'ops',
  variants: {
    ln: { supports: (a, c) => lnFits(a, c, true), launches: (a, c) => [cmixLaunch(a.key, a.ffk, { x: a.ln.x, lnw: a.lnw, state: a.ln.state, eps: a.ln.eps }, a.hout!, c, true)] },
    ln_wg: { supports: (a, c) => lnFits(a, c, false), launches: (a, c) => [cmixLaunch(a.key, a.ffk, { x: a.ln.x, lnw: a.lnw, state: a.ln.state, eps: a.ln.eps }, a.hout!, c, false)] },
    ops: {
      scratch: (a, c) => mergeScratch(partScratch(lnShiftOp, a.ln, c), partScratch(matmulOp, keyMatmul(a), c)),
      launches: (a, c) => [...partLaunches(lnShiftOp, a.ln, c), ...partLaunches(matmulOp, keyMatmul(a), c)],
    },
  },
  // the unfused ops (ln_shift.ref, which stores the state, and matmul.ref), and h into hout
  ref: (a, h) => {
    lnShiftOp.ref(a.ln, h);
    matmulOp.ref(keyMatmul(a), h);
    if (a.hout) {
      const C = a.ln.x.cols, cap = h.cap(a.ln.x), nw = h.data(a.ln.nw);
      layerNormRef(h.data(a.ln.x), nw.subarray(0, C), nw.subarray(C, 2 * C), h.data(a.hout), cap, C, a.ln.eps);
    }
  },
});

/** Whether rwkv7_cmix left the shift state to the next rwkv7_tmix on this step (it ran 'ln' or 'ln_wg'). */
export function cmixDeferred(a: Rwkv7CmixArgs, c: Ctx): boolean {
  rwkv7CmixOp.check?.(a);
  const v = partVariant(rwkv7CmixOp, a, c);
  return v === rwkv7CmixOp.variants.ln || v === rwkv7CmixOp.variants.ln_wg;
}

/** LayerNorm + token shift and the key projection with relu² of RWKV7's channel mix (rwkv7_cmix op). */
export function rwkv7Cmix(o: Backend, a: Rwkv7CmixArgs): Promise<void> {
  return o.run(rwkv7CmixOp, a);
}
