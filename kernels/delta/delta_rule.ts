// delta_rule op: the (gated) delta-rule token mixer core of Gated DeltaNet / DeltaNet / Qwen3-Next linear
// attention. Variants: 'recurrent' (delta_rule_recurrent.wgsl: decode and short prefill; one step per token) and
// 'chunk' (delta_chunk_{prep,kkt,solve,state}.wgsl: chunked prefill, chunk 64), chosen per step in `select`.
import type { Backend, StateSpec, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { knob } from '../../src/util/knobs.ts';
import { chunked, grid, kernel, op, scratch, u32, type Ctx, type Launch } from '../lib.ts';
import recurrentSrc from './delta_rule_recurrent.wgsl' with { type: 'text' };
import prepSrc from './delta_chunk_prep.wgsl' with { type: 'text' };
import kktSrc from './delta_chunk_kkt.wgsl' with { type: 'text' };
import solveSrc from './delta_chunk_solve.wgsl' with { type: 'text' };
import stateSrc from './delta_chunk_state.wgsl' with { type: 'text' };
import { deltaRuleRef, type DeltaDims, type QkAct, type QkNorm } from './delta_rule.ref.ts';

export type { QkAct, QkNorm, DeltaDims };

export const KERNELS = {
  recurrent: kernel('delta_rule_recurrent', recurrentSrc, ['step', 'stepmeta', 'q', 'k', 'v', 'ga', 'gb', 'gp', 'state', 'o', 'dims']),
  prep: kernel('delta_chunk_prep', prepSrc, ['step', 'q', 'k', 'ga', 'gb', 'gp', 'qk', 'gates', 'dims']),
  kkt: kernel('delta_chunk_kkt', kktSrc, ['step', 'stepmeta', 'qk', 'gates', 'ab', 'dims']),
  solve: kernel('delta_chunk_solve', solveSrc, ['step', 'stepmeta', 'ab', 'dims']),
  state: kernel('delta_chunk_state', stateSrc, ['step', 'stepmeta', 'qk', 'v', 'gates', 'ab', 'state', 'o', 'dims']),
};

const QK_ACT = { none: 0, silu: 1, relu: 2, elu: 3 } as const;
const QK_NORM = { none: 0, l2: 1, sum: 2 } as const;

export interface DeltaOp {
  q: Tensor; k: Tensor; v: Tensor;
  /** raw decay-rate projection [N, HV] (gated) and A_log/dt_bias stacked [2, HV]; both null for ungated */
  a: Tensor | null; gp: Weight | null;
  /** raw β projection [N, HV], null for β = 1 */
  b: Tensor | null;
  state: Tensor; out: Tensor; d: DeltaDims;
}

export type DeltaKernel = 'recurrent' | 'chunk';

/** Chunk length of the chunked prefill (spec §10). */
export const CHUNK = 64;

/**
 * Geometry of delta_chunk_state: BV columns × G row groups (G·BV = 256 threads or the adapter's limit, G ≤ CH); the
 * S block (DK × BV) and two CH × BV token blocks must fit 24 KiB of workgroup memory.
 */
export function chunkGeometry(DK: number, DV: number, maxInvocations = 256, maxWorkgroupStorage = 32768): { BV: number; G: number } {
  const tpb = Math.min(256, maxInvocations);
  const budget = Math.min(24576, maxWorkgroupStorage);
  const forced = Number(knob('FLA_DELTA_CHUNK_BV') ?? 0);   // benchmarking knob: columns per workgroup
  let BV = forced > 0 ? forced : 8;   // 8 was fastest on an H100 for DK 128 and 256 (BENCHMARKS.md): more workgroups in flight
  while (BV > 4 && (DV % BV !== 0 || (DK + 2 * CHUNK) * BV * 4 > budget)) BV >>= 1;
  if (DV % BV !== 0 || (DK + 2 * CHUNK) * BV * 4 > budget || tpb % BV !== 0 || tpb / BV > CHUNK || CHUNK % (tpb / BV) !== 0) throw new ShapeError(`delta_rule: no chunk geometry for DK=${DK} DV=${DV}`);
  return { BV, G: tpb / BV };
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

export function cost(N: number, d: DeltaDims) {
  return { flops: 6 * N * d.HV * d.DK * d.DV, bytes: 4 * N * (2 * d.H * d.DK + 2 * d.HV * d.DV + 2 * d.HV) };
}

/** The per-slot recurrent state of one layer. */
export function deltaState(key: string, d: Pick<DeltaDims, 'HV' | 'DK' | 'DV'>): StateSpec {
  return { key, cols: d.HV * d.DK * d.DV };
}

const dimsOf = (d: DeltaDims) => u32(d.H, d.HV, d.DV);

/** The state pass needs a geometry that fits the adapter's workgroup limits. */
function chunkFits(x: DeltaOp, c: Ctx): boolean {
  try { chunkGeometry(x.d.DK, x.d.DV, c.adapter.maxInvocations, c.adapter.maxWorkgroupStorage); return true; } catch { return false; }
}
const gateDefines = (x: DeltaOp) => ({ HAS_GATE: x.a !== null, HAS_BETA: x.b !== null, NEG_EIG: x.d.negEig });

export const deltaRuleOp = op<DeltaOp>({
  name: 'delta_rule',
  check(x) {
    const d = x.d;
    if ((x.a === null) !== (x.gp === null)) throw new ShapeError('delta_rule: the gate needs both a and A_log/dt_bias');
    if (x.q.cols !== d.H * d.DK || x.k.cols !== d.H * d.DK || x.v.cols !== d.HV * d.DV || x.out.cols !== d.HV * d.DV || x.state.cols !== d.HV * d.DK * d.DV)
      throw new ShapeError(`delta_rule: tensor widths do not fit H=${d.H} HV=${d.HV} DK=${d.DK} DV=${d.DV}`);
    checkDims(d);
  },
  /** 'chunk' (the chunked WY/UT prefill) when a sequence has more than one chunk of tokens, on GPU adapters. */
  select: (c: Ctx, x) => (chunked(c, CHUNK) && chunkFits(x, c) ? 'chunk' : 'recurrent'),
  variants: {
    recurrent: {
      launches: (x, c) => {
        const d = x.d, BV = blockV(d.DV, c.adapter.maxInvocations);
        return [{
          kernel: KERNELS.recurrent, grid: [d.HV * d.DV / BV, c.step.b, 1],
          defines: { DK: d.DK, BV, QK_ACT: QK_ACT[d.qkAct], QK_NORM: QK_NORM[d.qkNorm], V_SILU: d.vSilu, ...gateDefines(x) },
          bind: { q: x.q, k: x.k, v: x.v, ga: x.a, gb: x.b, gp: x.gp, state: x.state, o: x.out, dims: dimsOf(d) },
        }];
      },
    },
    // prep (norms, gates), kkt (A, B, G), solve (T), state pass (δ, o, S).
    // Scratch: q̂/k̂ [2, cap, H·DK], gates (g, β, G) [3, cap, HV], A/B/T rows [3, cap, HV·CH].
    chunk: {
      supports: chunkFits,
      scratch: x => ({ qk: { cols: x.d.H * x.d.DK, planes: 2 }, gates: { cols: x.d.HV, planes: 3 }, ab: { cols: x.d.HV * CHUNK, planes: 3 } }),
      launches: (x, c): Launch[] => {
        const d = x.d, n = c.step.n, lim = c.adapter;
        const WG = Math.min(64, lim.maxInvocations);
        const geo = chunkGeometry(d.DK, d.DV, lim.maxInvocations, lim.maxWorkgroupStorage);
        const qk = scratch('qk'), gates = scratch('gates'), ab = scratch('ab');
        return [
          { kernel: KERNELS.prep, grid: grid(n * d.H),
            defines: { DK: d.DK, WG, QK_ACT: QK_ACT[d.qkAct], QK_NORM: QK_NORM[d.qkNorm], ...gateDefines(x) },
            bind: { q: x.q, k: x.k, ga: x.a, gb: x.b, gp: x.gp, qk, gates, dims: dimsOf(d) } },
          { kernel: KERNELS.kkt, grid: grid(n * d.HV), defines: { DK: d.DK, CH: CHUNK }, bind: { qk, gates, ab, dims: dimsOf(d) } },
          { kernel: KERNELS.solve, grid: grid(n * d.HV), defines: { CH: CHUNK }, bind: { ab, dims: u32(d.HV) } },
          { kernel: KERNELS.state, grid: [d.HV * d.DV / geo.BV, c.step.b, 1],
            defines: { DK: d.DK, BV: geo.BV, G: geo.G, CH: CHUNK, QPT: CHUNK / geo.G, V_SILU: d.vSilu },
            bind: { qk, v: x.v, gates, ab, state: x.state, o: x.out, dims: dimsOf(d) } },
        ];
      },
    },
  },
  ref: (x, h) => deltaRuleRef(h.data(x.q), h.data(x.k), h.data(x.v), x.a ? h.data(x.a) : null, x.b ? h.data(x.b) : null,
    x.gp ? h.data(x.gp) : null, h.data(x.state), h.data(x.out), h.step.cursors, x.d),
});

/** out = the delta rule over each sequence of the step, continuing (and advancing) each slot's state. */
export function deltaRule(o: Backend, x: DeltaOp): Promise<void> {
  return o.run(deltaRuleOp, x);
}
