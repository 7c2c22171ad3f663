// delta_rule op wrapper: the (gated) delta-rule token mixer core of Gated DeltaNet / DeltaNet / Qwen3-Next
// linear attention. Kernels: delta_rule_recurrent.wgsl (decode and short prefill; one step per token) and
// delta_chunk_{prep,kkt,solve,state}.wgsl (chunked prefill, chunk 64), chosen per step in `select`.
import type { Gpu, Dispatch } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, type StepCtx, type View } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import recurrentSrc from './delta_rule_recurrent.wgsl' with { type: 'text' };
import prepSrc from './delta_chunk_prep.wgsl' with { type: 'text' };
import kktSrc from './delta_chunk_kkt.wgsl' with { type: 'text' };
import solveSrc from './delta_chunk_solve.wgsl' with { type: 'text' };
import stateSrc from './delta_chunk_state.wgsl' with { type: 'text' };
import type { Backend, StateSpec, Tensor, Weight } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { deltaRuleRef, type DeltaDims, type QkAct, type QkNorm } from './delta_rule.ref.ts';

export type { QkAct, QkNorm, DeltaDims };
export const BINDINGS = ['step', 'meta', 'q', 'k', 'v', 'a', 'b', 'gp', 'state', 'o', 'dims'] as const;

const QK_ACT = { none: 0, silu: 1, relu: 2, elu: 3 } as const;
const QK_NORM = { none: 0, l2: 1, sum: 2 } as const;

export interface DeltaArgs {
  q: View; k: View; v: View; a: View | null; b: View | null; gp: View | null; state: View; o: View; d: DeltaDims;
}

export type DeltaKernel = 'recurrent' | 'chunk';

/** Chunk length of the chunked prefill (spec §10). */
export const CHUNK = 64;

/**
 * 'chunk' (the chunked WY/UT prefill) for steps of more than one chunk of tokens, 'recurrent' otherwise (decode,
 * short prompts). Both give the same math; FLA_KERNEL_DELTA=recurrent|chunk forces one.
 */
export function select(s: StepCtx): DeltaKernel {
  const forced = process.env.FLA_KERNEL_DELTA;
  if (forced === 'recurrent' || forced === 'chunk') return forced;
  return s.n > CHUNK ? 'chunk' : 'recurrent';
}

/** Scratch of the chunked path: q̂/k̂ [2, cap, H·DK], gates (g, β, G) [3, cap, HV], A/B/T rows [3, cap, HV·CH]. */
export interface ChunkScratch { qk: View; gates: View; ab: View }

/**
 * Geometry of delta_chunk_state: BV columns × G row groups (G·BV = 256 threads or the adapter's limit, G ≤ CH); the
 * S block (DK × BV) and two CH × BV token blocks must fit 24 KiB of workgroup memory.
 */
export function chunkGeometry(DK: number, DV: number, maxInvocations = 256, maxWorkgroupStorage = 32768): { BV: number; G: number } {
  const tpb = Math.min(256, maxInvocations);
  const budget = Math.min(24576, maxWorkgroupStorage);
  const forced = Number(process.env.FLA_DELTA_CHUNK_BV ?? 0);   // benchmarking knob: columns per workgroup
  let BV = forced > 0 ? forced : 8;   // 8 was fastest on an H100 for DK 128 and 256 (BENCHMARKS.md): more workgroups in flight
  while (BV > 4 && (DV % BV !== 0 || (DK + 2 * CHUNK) * BV * 4 > budget)) BV >>= 1;
  if (DV % BV !== 0 || (DK + 2 * CHUNK) * BV * 4 > budget || tpb % BV !== 0 || tpb / BV > CHUNK || CHUNK % (tpb / BV) !== 0) throw new ShapeError(`delta_rule: no chunk geometry for DK=${DK} DV=${DV}`);
  return { BV, G: tpb / BV };
}

/** The four dispatches of the chunked path: prep (norms, gates), kkt (A, B, G), solve (T), state pass (δ, o, S). */
export async function buildChunk(gpu: Gpu, s: StepCtx, a: DeltaArgs, sc: ChunkScratch): Promise<Dispatch[]> {
  const d = a.d;
  checkDims(d, gpu.maxInvocations);
  const WG = Math.min(64, gpu.maxInvocations);
  const opt = (v: View | null) => (v ? binding(v) : { buffer: s.dummy });
  const dimsU = gpu.uniform(new Uint32Array([d.H, d.HV, d.DV]));
  const prep = await dispatch(gpu, {
    label: 'delta_chunk_prep', source: prepSrc,
    defines: { DK: d.DK, WG, QK_ACT: QK_ACT[d.qkAct], QK_NORM: QK_NORM[d.qkNorm], HAS_GATE: a.a !== null, HAS_BETA: a.b !== null, NEG_EIG: d.negEig },
  }, [{ buffer: s.uniform }, binding(a.q), binding(a.k), opt(a.a), opt(a.b), opt(a.gp), binding(sc.qk), binding(sc.gates), { buffer: dimsU }],
  grid(s.n * d.H));
  const kkt = await dispatch(gpu, { label: 'delta_chunk_kkt', source: kktSrc, defines: { DK: d.DK, CH: CHUNK } },
    [{ buffer: s.uniform }, { buffer: s.meta }, binding(sc.qk), binding(sc.gates), binding(sc.ab), { buffer: dimsU }], grid(s.n * d.HV));
  const solve = await dispatch(gpu, { label: 'delta_chunk_solve', source: solveSrc, defines: { CH: CHUNK } },
    [{ buffer: s.uniform }, { buffer: s.meta }, binding(sc.ab), { buffer: gpu.uniform(new Uint32Array([d.HV])) }], grid(s.n * d.HV));
  const geo = chunkGeometry(d.DK, d.DV, gpu.maxInvocations, gpu.maxWorkgroupStorage);
  const state = await dispatch(gpu, {
    label: 'delta_chunk_state', source: stateSrc,
    defines: { DK: d.DK, BV: geo.BV, G: geo.G, CH: CHUNK, QPT: CHUNK / geo.G, V_SILU: d.vSilu },
  }, [{ buffer: s.uniform }, { buffer: s.meta }, binding(sc.qk), binding(a.v), binding(sc.gates), binding(sc.ab), binding(a.state),
    binding(a.o), { buffer: dimsU }], [d.HV * d.DV / geo.BV, s.b, 1]);
  return [prep, kkt, solve, state];
}

export function checkDims(d: DeltaDims, maxInvocations = 256): void {
  if (d.HV % d.H !== 0) throw new ShapeError(`delta_rule: ${d.HV} value heads are not a multiple of ${d.H} q/k heads`);
  if (d.DK % 16 !== 0 || d.DK > 512) throw new ShapeError(`delta_rule: key head dim ${d.DK} must be a multiple of 16, at most 512`);
  if (d.DV % 16 !== 0 || 16 > maxInvocations) throw new ShapeError(`delta_rule: value head dim ${d.DV} must be a multiple of 16`);
}

/** Columns per workgroup: the largest power of two ≤ 64 dividing DV. */
export function blockV(DV: number, maxInvocations = 256): number {
  let bv = 64;
  while (bv > 1 && (DV % bv !== 0 || bv > maxInvocations)) bv >>= 1;
  return bv;
}

export function build(gpu: Gpu, s: StepCtx, a: DeltaArgs): Promise<Dispatch> {
  const d = a.d;
  checkDims(d, gpu.maxInvocations);
  const BV = blockV(d.DV, gpu.maxInvocations);
  const defines = {
    DK: d.DK, BV, QK_ACT: QK_ACT[d.qkAct], QK_NORM: QK_NORM[d.qkNorm], V_SILU: d.vSilu,
    HAS_GATE: a.a !== null, HAS_BETA: a.b !== null, NEG_EIG: d.negEig,
  };
  const opt = (v: View | null) => (v ? binding(v) : { buffer: s.dummy });
  return dispatch(gpu, { label: 'delta_rule_recurrent', source: recurrentSrc, defines },
    [{ buffer: s.uniform }, { buffer: s.meta }, binding(a.q), binding(a.k), binding(a.v), opt(a.a), opt(a.b), opt(a.gp),
      binding(a.state), binding(a.o), { buffer: gpu.uniform(new Uint32Array([d.H, d.HV, d.DV])) }],
    [d.HV * d.DV / BV, s.b, 1]);
}

export function cost(N: number, d: DeltaDims) {
  return { flops: 6 * N * d.HV * d.DK * d.DV, bytes: 4 * N * (2 * d.H * d.DK + 2 * d.HV * d.DV + 2 * d.HV) };
}

/** The per-slot recurrent state of one layer. */
export function deltaState(key: string, d: Pick<DeltaDims, 'HV' | 'DK' | 'DV'>): StateSpec {
  return { key, cols: d.HV * d.DK * d.DV };
}

export interface DeltaOp {
  q: Tensor; k: Tensor; v: Tensor;
  /** raw decay-rate projection [N, HV] (gated) and A_log/dt_bias stacked [2, HV]; both null for ungated */
  a: Tensor | null; gp: Weight | null;
  /** raw β projection [N, HV], null for β = 1 */
  b: Tensor | null;
  state: Tensor; out: Tensor; d: DeltaDims;
}

/** out = the delta rule over each sequence of the step, continuing (and advancing) each slot's state. */
export async function deltaRule(o: Backend, x: DeltaOp): Promise<void> {
  const d = x.d;
  if ((x.a === null) !== (x.gp === null)) throw new ShapeError('delta_rule: the gate needs both a and A_log/dt_bias');
  if (x.q.cols !== d.H * d.DK || x.k.cols !== d.H * d.DK || x.v.cols !== d.HV * d.DV || x.out.cols !== d.HV * d.DV || x.state.cols !== d.HV * d.DK * d.DV)
    throw new ShapeError(`delta_rule: tensor widths do not fit H=${d.H} HV=${d.HV} DK=${d.DK} DV=${d.DV}`);
  if (o instanceof GpuBackend) {
    if (select(o.step) === 'chunk') {
      const sc = {
        qk: o.view(o.act('delta_qk', d.H * d.DK, { planes: 2 })), gates: o.view(o.act('delta_gates', d.HV, { planes: 3 })),
        ab: o.view(o.act('delta_ab', d.HV * CHUNK, { planes: 3 })),
      };
      for (const disp of await buildChunk(o.gpu, o.step, {
        q: o.view(x.q), k: o.view(x.k), v: o.view(x.v), a: x.a ? o.view(x.a) : null, b: x.b ? o.view(x.b) : null,
        gp: x.gp ? o.weightView(x.gp) : null, state: o.view(x.state), o: o.view(x.out), d,
      }, sc)) o.push(disp);
      return;
    }
    o.push(await build(o.gpu, o.step, {
      q: o.view(x.q), k: o.view(x.k), v: o.view(x.v), a: x.a ? o.view(x.a) : null, b: x.b ? o.view(x.b) : null,
      gp: x.gp ? o.weightView(x.gp) : null, state: o.view(x.state), o: o.view(x.out), d,
    }));
    return;
  }
  const c = o as CpuBackend;
  deltaRuleRef(c.data(x.q), c.data(x.k), c.data(x.v), x.a ? c.data(x.a) : null, x.b ? c.data(x.b) : null,
    x.gp ? c.weightData(x.gp) : null, c.data(x.state), c.data(x.out), c.step.cursors, d);
}
