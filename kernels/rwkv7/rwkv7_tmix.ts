// rwkv7_tmix op: the front of RWKV7's time mix — ln_shift, rwkv7_proj, wkv7_lora — as one op, so that a decode step
// whose sequences have one token each (layer 0 with its pre-norm too) runs the LayerNorm and token shift in the prologue of the projection GEMV
// (rwkv7_proj_ln.wgsl: every workgroup takes the row statistics itself and only reads the shift state) and stores
// the shift state in wkv7_lora's epilogue (SHIFT): two dispatches instead of three. 'ln': that, subgroup reductions
// where the adapter has them; 'ln_wg' (forced only): the same through workgroup memory; 'ops': the three ops, each
// as it would run on its own (their own FLA_KERNEL_* knobs apply), for every other step; 'mm' (forced only, for a
// step with a sequence past FUSED_MAX_LEN tokens, where the model gives the LoRA matrices as the checkpoint has them —
// rwkv7.ts loads them only when FLA_KERNEL_RWKV7_TMIX=mm): ln_shift, then the
// r, k, v projections and the LoRA down- and up-projections as eleven matmuls (the tensor-core GEMM where the adapter
// has one) with their activations in the epilogues, then the wkv7 op's core (chunked or recurrent) — instead of
// rwkv7_proj's LoRA GEMV and wkv7_lora's lora_up, which run those products on f32 FMAs (H200, rwkv7-1.5b pp512:
// 6.5 + 5.0 ms of a 61 ms prefill).
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { op, type Ctx, type Launch } from '../lib.ts';
import { matmulOp, type MatmulArgs } from '../matmul/matmul.ts';
import type { Act } from '../matmul/matmul.ref.ts';
import { mergeScratch, partLaunches, partScratch } from './compose.ts';
import { lnShiftOp, type LnShiftArgs } from './ln_shift.ts';
import { cmixDeferred, type Rwkv7CmixArgs } from './rwkv7_cmix.ts';
import { shiftStoreOp } from './token_shift.ts';
import { lnLaunch, lnRowBlock, PROJ_INCLUDES, PROJ_RMAX, rkvMatmuls, rwkv7ProjOp, type Rwkv7ProjArgs } from './rwkv7_proj.ts';
import { wkv7Op, type Wkv7Op } from './wkv7.ts';
import { fusedLaunch, fusedPlan, wkv7LoraOp, type Wkv7LoraArgs } from './wkv7_lora.ts';

/**
 * ln.out is proj.mix; core reads proj.proj and proj.lora (no core.shift); lnw [ln.nw rows + 6, C]: ln.nw's rows then
 * ln.mix's (the one weight rwkv7_proj_ln reads for both). In 'ln' the LoRA rows and h travel in proj planes 1 and 4
 * (the split path's w and a planes), proj.lora and the mix planes are not written.
 */
export interface Rwkv7TmixArgs {
  ln: LnShiftArgs; lnw: Weight; proj: Rwkv7ProjArgs; core: Wkv7LoraArgs; mm?: LoraMats | null;
  /**
   * The previous layer's rwkv7_cmix arguments (its hout: proj plane 5): where that op left its shift state unstored
   * (cmixDeferred), this op stores it from hout first — in rwkv7_proj_ln's first workgroup ('ln'), else as a
   * shift_store dispatch before anything writes plane 5. Not with the pre-norm (layer 0).
   */
  prevCmix?: Rwkv7CmixArgs | null;
}

/** The previous layer's deferred channel-mix shift-state store, if any: h (proj plane 5) and the state. */
function prevStore(a: Rwkv7TmixArgs, c: Ctx): { h: Tensor; state: Tensor } | null {
  const p = a.prevCmix;
  return p && cmixDeferred(p, c) ? { h: p.hout!, state: p.ln.state } : null;
}
const prevLaunches = (a: Rwkv7TmixArgs, c: Ctx): Launch[] => { const s = prevStore(a, c); return s ? partLaunches(shiftStoreOp, s, c) : []; };

/**
 * The LoRA as 'mm' runs it, segments w, a, g, v in order (v absent in layer 0: ranks.v 0): down [r, C] (W1, A1, G1,
 * V1), up [C, r] (W2, A2, G2, V2), bias [C] (w0, a0, v0: the up-projections' biases, as params rows 5–7), rows [N, r]
 * (the activated down-projections), vmix [N, C] (the v mix gate; null in layer 0).
 */
export interface LoraMats { down: Weight[]; up: Weight[]; bias: Weight[]; rows: Tensor[]; vmix: Tensor | null }

/** 'mm' fits: the model gave the matrices (one per segment, shaped for the ranks). */
function mmFits(a: Rwkv7TmixArgs): boolean {
  const m = a.mm, r = a.proj.ranks, C = a.proj.mix.cols;
  if (!m) return false;
  const ranks = r.v === 0 ? [r.w, r.a, r.g] : [r.w, r.a, r.g, r.v];
  return m.down.length === ranks.length && m.up.length === ranks.length && m.rows.length === ranks.length && m.bias.length === ranks.length - 1
    && (m.vmix !== null) === (r.v > 0) && ranks.every((rk, i) => m.down[i]!.shape[0] === rk && m.down[i]!.shape[1] === C && m.up[i]!.shape[0] === C
      && m.up[i]!.shape[1] === rk && m.rows[i]!.cols === rk);
}

/** 'mm': r, k, v, the down-projections (mix planes w, a, g, v) and the up-projections (proj planes w, a, g and vmix). */
function mmMatmuls(a: Rwkv7TmixArgs): MatmulArgs[] {
  const m = a.mm!, p = a.proj, first = p.ranks.v === 0;
  const mx = p.mixPlanes, pp = p.projPlanes;
  const down: [Tensor, Act][] = [[mx[1]!, 'tanh'], [mx[4]!, 'none'], [mx[5]!, 'sigmoid'], [mx[3]!, 'none']];
  const up: [Tensor, Weight | null, Act][] = [[pp[1]!, m.bias[0]!, 'rwkv_decay'], [pp[4]!, m.bias[1]!, 'sigmoid'], [pp[5]!, null, 'none'], [m.vmix!, m.bias[2] ?? null, 'sigmoid']];
  const segs = first ? 3 : 4, out: MatmulArgs[] = rkvMatmuls(p);
  for (let i = 0; i < segs; i++) out.push({ x: down[i]![0], w: m.down[i]!, bias: null, y: m.rows[i]!, act: down[i]![1], accumulate: false });
  for (let i = 0; i < segs; i++) out.push({ x: m.rows[i]!, w: m.up[i]!, bias: up[i]![1], y: up[i]![0], act: up[i]![2], accumulate: false });
  return out;
}

/** 'mm''s core: the wkv7 op on the proj planes and vmix. */
function mmCore(a: Rwkv7TmixArgs): Wkv7Op {
  const k = a.core;
  return { proj: k.proj, vfirst: k.vfirst, vmix: a.mm!.vmix, params: k.params, state: k.state, out: k.out, D: k.D, fuseNorm: k.fuseNorm, gnEps: k.gnEps };
}

/**
 * 'ln' runs: one-token sequences (layer 0's pre-norm too: rwkv7_proj_ln writes LN_pre(e) to ln.xo), LoRA ranks summing to at most C, one dtype for the four projection weights, a row block that fits, the fused core.
 */
function lnFits(a: Rwkv7TmixArgs, c: Ctx, subgroups: boolean): boolean {
  const p = a.proj, C = p.mix.cols;
  return c.step.maxLen <= 1 && C % 4 === 0 && p.lora.cols <= C && [p.wr, p.wk, p.wv].every(w => w.dtype === p.wl.dtype) && lnRowBlock(p, c, subgroups) > 0
    && fusedPlan(a.core.D, C, a.core.wu.dtype as 'f32' | 'bf16' | 'f16', c.adapter, subgroups) !== null;
}

function lnLaunches(a: Rwkv7TmixArgs, c: Ctx, subgroups: boolean): Launch[] {
  const { ln, proj, core } = a;
  return [
    lnLaunch(proj, { x: ln.x, lnw: a.lnw, state: ln.state, eps: ln.eps, xo: ln.xo, prev: prevStore(a, c)?.state ?? null }, c, subgroups),
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
    if (a.mm && !mmFits(a)) throw new ShapeError('rwkv7_tmix: the LoRA matrices (mm) do not match the ranks and hidden size');
    if (a.prevCmix && (a.ln.xo || a.prevCmix.hout !== a.proj.projPlanes[5])) throw new ShapeError('rwkv7_tmix: prevCmix needs its hout to be proj plane 5, and no pre-norm');
  },
  /**
   * 'ln' where it fits (a decode step of one-token sequences) with all the step's rows in one pass over the weights
   * (more rows than fit workgroup memory would read the weights once per row block: forced only); else 'ops'.
   * 'mm' is forced only: on the H200 (rwkv7-1.5b pp512, 2026-12-02) its kernels took 49 ms of GPU time against 51
   * for 'ops', but the prefill ran 157 ms against 66 (3 264 against 7 799 t/s), the gap not in the kernel table.
   */
  select: (c, a) => (lnFits(a, c, true) && lnRowBlock(a.proj, c) >= Math.min(c.step.n, PROJ_RMAX) ? 'ln' : 'ops'),
  variants: {
    ln: { supports: (a, c) => lnFits(a, c, true), launches: (a, c) => lnLaunches(a, c, true) },
    ln_wg: { supports: (a, c) => lnFits(a, c, false), launches: (a, c) => lnLaunches(a, c, false) },
    ops: {
      scratch: (a, c) => mergeScratch(partScratch(lnShiftOp, a.ln, c), partScratch(rwkv7ProjOp, a.proj, c), partScratch(wkv7LoraOp, a.core, c)),
      launches: (a, c) => [...prevLaunches(a, c), ...partLaunches(lnShiftOp, a.ln, c), ...partLaunches(rwkv7ProjOp, a.proj, c), ...partLaunches(wkv7LoraOp, a.core, c)],
    },
    mm: {
      supports: a => mmFits(a),
      scratch: (a, c) => mergeScratch(partScratch(lnShiftOp, a.ln, c), ...mmMatmuls(a).map(m => partScratch(matmulOp, m, c)), partScratch(wkv7Op, mmCore(a), c)),
      launches: (a, c) => [...prevLaunches(a, c), ...partLaunches(lnShiftOp, a.ln, c), ...mmMatmuls(a).flatMap(m => partLaunches(matmulOp, m, c)), ...partLaunches(wkv7Op, mmCore(a), c)],
    },
  },
  // the unfused ops in order (rwkv7_tmix.ref: ln_shift.ref, rwkv7_proj.ref, wkv7_lora.ref; 'mm' computes the same);
  // prevCmix's store has nothing to do here: rwkv7_cmix.ref stored that state already
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
