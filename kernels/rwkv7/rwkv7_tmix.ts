// rwkv7_tmix op: the front of RWKV7's time mix — ln_shift, rwkv7_proj, wkv7_lora — as one op, so that a decode step
// whose sequences have one token each (past layer 0) runs the LayerNorm and token shift in the prologue of the projection GEMV
// (rwkv7_proj_ln.wgsl: every workgroup takes the row statistics itself and only reads the shift state) and stores
// the shift state in wkv7_lora's epilogue (SHIFT): two dispatches instead of three. 'ln': that, subgroup reductions
// where the adapter has them; 'ln_wg' (forced only): the same through workgroup memory; 'ops': the three ops, each
// as it would run on its own (their own FLA_KERNEL_* knobs apply), for every other step.
import type { Backend, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { op, type Ctx, type Launch } from '../lib.ts';
import { mergeScratch, partLaunches, partScratch } from './compose.ts';
import { lnShiftOp, type LnShiftArgs } from './ln_shift.ts';
import { lnLaunch, lnRowBlock, PROJ_INCLUDES, PROJ_RMAX, rwkv7ProjOp, type Rwkv7ProjArgs } from './rwkv7_proj.ts';
import { fusedLaunch, fusedPlan, wkv7LoraOp, type Wkv7LoraArgs } from './wkv7_lora.ts';

/**
 * ln.out is proj.mix; core reads proj.proj and proj.lora (no core.shift); lnw [ln.nw rows + 6, C]: ln.nw's rows then
 * ln.mix's (the one weight rwkv7_proj_ln reads for both). In 'ln' the LoRA rows and h travel in proj planes 1 and 4
 * (the split path's w and a planes), proj.lora and the mix planes are not written.
 */
export interface Rwkv7TmixArgs { ln: LnShiftArgs; lnw: Weight; proj: Rwkv7ProjArgs; core: Wkv7LoraArgs }

/**
 * 'ln' runs: one-token sequences, no pre-norm (layer 0 runs 'ops': rwkv7_proj_ln stays within nine storage buffers),
 * LoRA ranks summing to at most C, one dtype for the four projection weights, a row block that fits, the fused core.
 */
function lnFits(a: Rwkv7TmixArgs, c: Ctx, subgroups: boolean): boolean {
  const p = a.proj, C = p.mix.cols;
  return c.step.maxLen <= 1 && a.ln.xo === null && C % 4 === 0 && p.lora.cols <= C && [p.wr, p.wk, p.wv].every(w => w.dtype === p.wl.dtype) && lnRowBlock(p, c, subgroups) > 0
    && fusedPlan(a.core.D, C, a.core.wu.dtype as 'f32' | 'bf16' | 'f16', c.adapter, subgroups) !== null;
}

function lnLaunches(a: Rwkv7TmixArgs, c: Ctx, subgroups: boolean): Launch[] {
  const { ln, proj, core } = a;
  return [
    lnLaunch(proj, { x: ln.x, lnw: a.lnw, state: ln.state, eps: ln.eps }, c, subgroups),
    fusedLaunch({ ...core, lora: proj.projPlanes[1]!, shift: { h: proj.projPlanes[4]!, state: ln.state } }, c, subgroups),
  ];
}

export const rwkv7TmixOp = op<Rwkv7TmixArgs>({
  name: 'rwkv7_tmix',
  includes: PROJ_INCLUDES,
  check(a) {
    if (a.ln.out !== a.proj.mix || a.ln.out.planes !== 6) throw new ShapeError('rwkv7_tmix: ln_shift must write the projection\'s 6-plane mix tensor');
    if (a.core.shift) throw new ShapeError('rwkv7_tmix: the core\'s shift store is the op\'s own');
    const C = a.proj.mix.cols, nr = a.ln.nw.shape[0]!;
    if (a.lnw.shape[0] !== nr + 6 || a.lnw.shape[1] !== C || a.lnw.dtype !== 'f32') throw new ShapeError(`rwkv7_tmix: lnw [${a.lnw.shape.join(', ')}] ${a.lnw.dtype}, expected [${nr + 6}, ${C}] f32`);
    lnShiftOp.check?.(a.ln);
    rwkv7ProjOp.check?.(a.proj);
    wkv7LoraOp.check?.(a.core);
  },
  /**
   * 'ln' where it fits (a decode step of one-token sequences) with all the step's rows in one pass over the weights
   * (more rows than fit workgroup memory would read the weights once per row block: forced only), else 'ops'.
   */
  select: (c, a) => (lnFits(a, c, true) && lnRowBlock(a.proj, c) >= Math.min(c.step.n, PROJ_RMAX) ? 'ln' : 'ops'),
  variants: {
    ln: { supports: (a, c) => lnFits(a, c, true), launches: (a, c) => lnLaunches(a, c, true) },
    ln_wg: { supports: (a, c) => lnFits(a, c, false), launches: (a, c) => lnLaunches(a, c, false) },
    ops: {
      scratch: (a, c) => mergeScratch(partScratch(lnShiftOp, a.ln, c), partScratch(rwkv7ProjOp, a.proj, c), partScratch(wkv7LoraOp, a.core, c)),
      launches: (a, c) => [...partLaunches(lnShiftOp, a.ln, c), ...partLaunches(rwkv7ProjOp, a.proj, c), ...partLaunches(wkv7LoraOp, a.core, c)],
    },
  },
  // the unfused ops in order (rwkv7_tmix.ref: ln_shift.ref, rwkv7_proj.ref, wkv7_lora.ref)
  ref: (a, h) => {
    lnShiftOp.ref(a.ln, h);
    rwkv7ProjOp.ref(a.proj, h);
    wkv7LoraOp.ref(a.core, h);
  },
});

/** LayerNorm + token shift, the seven projections and the time-mix core of one layer (rwkv7_tmix op). */
export function rwkv7Tmix(o: Backend, a: Rwkv7TmixArgs): Promise<void> {
  return o.run(rwkv7TmixOp, a);
}
