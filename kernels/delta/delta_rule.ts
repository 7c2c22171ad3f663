// delta_rule op: the (gated) delta-rule token mixer core of Gated DeltaNet / DeltaNet / Qwen3-Next linear
// attention, optionally with the mixer's output norm (RMSNorm per value head, SiLU-gated or not). Variants:
// 'fused' (delta_rule_fused.wgsl: the recurrence with the norm in its epilogue, inputs read from packed
// projection rows, one workgroup per value head: decode in one dispatch), 'recurrent' (delta_rule_recurrent.wgsl:
// decode and short prefill; one step per token) and 'chunk' (delta_chunk_{prep,kkt,solve_blk,state}.wgsl: chunked
// prefill, chunk 64; delta_chunk_solve.wgsl is the row-by-row UT solve of before, FLA_DELTA_CHUNK_SOLVE=subst;
// delta_chunk_state_rb.wgsl the state pass with several value columns a thread, FLA_DELTA_CHUNK_CPT),
// chosen per step in `select`; the last two run the norm as an rms_norm launch of their own.
import type { Backend, StateSpec, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { knob } from '../../src/util/knobs.ts';
import { chunked, grid, kernel, op, scratch, u32, type Ctx, type Launch, type ScratchSpec } from '../lib.ts';
import recurrentSrc from './delta_rule_recurrent.wgsl' with { type: 'text' };
import prepSrc from './delta_chunk_prep.wgsl' with { type: 'text' };
import kktSrc from './delta_chunk_kkt.wgsl' with { type: 'text' };
import solveSrc from './delta_chunk_solve.wgsl' with { type: 'text' };
import solveBlkSrc from './delta_chunk_solve_blk.wgsl' with { type: 'text' };
import stateSrc from './delta_chunk_state.wgsl' with { type: 'text' };
import stateRbSrc from './delta_chunk_state_rb.wgsl' with { type: 'text' };
import fusedSrc from './delta_rule_fused.wgsl' with { type: 'text' };
import fusedSgSrc from './delta_rule_fused_sg.wgsl' with { type: 'text' };
import { deltaRuleRef, type DeltaDims, type QkAct, type QkNorm } from './delta_rule.ref.ts';
import { rmsNormRef } from '../norm/rms_norm.ref.ts';
import { rmsNormLaunch, type RmsNormArgs } from '../norm/rms_norm.ts';
import { kernelSize, shortConvLaunch, shortConvOp, shortConvOpRef, type ShortConvArgs } from '../conv/short_conv.ts';

export type { QkAct, QkNorm, DeltaDims };

export const KERNELS = {
  recurrent: kernel('delta_rule_recurrent', recurrentSrc, ['step', 'stepmeta', 'q', 'k', 'v', 'ga', 'gb', 'gp', 'state', 'o', 'dims']),
  fused: kernel('delta_rule_fused', fusedSrc, ['step', 'stepmeta', 'qkv', 'gab', 'z', 'gp', 'gn', 'state', 'o', 'dims']),
  fusedSg: kernel('delta_rule_fused_sg', fusedSgSrc, ['step', 'stepmeta', 'qkv', 'gab', 'z', 'gp', 'gn', 'state', 'o', 'dims']),
  // CONV: the conv's raw projection in place of q|k|v (a, b and z its columns), its weights and history
  fusedSgConv: kernel('delta_rule_fused_sg', fusedSgSrc, ['step', 'stepmeta', 'cx', 'gp', 'gn', 'cw', 'state', 'cs', 'o', 'dims']),
  prep: kernel('delta_chunk_prep', prepSrc, ['step', 'q', 'k', 'ga', 'gb', 'gp', 'qk', 'gates', 'dims']),
  kkt: kernel('delta_chunk_kkt', kktSrc, ['step', 'stepmeta', 'qk', 'gates', 'ab', 'dims']),
  solve: kernel('delta_chunk_solve', solveSrc, ['step', 'stepmeta', 'ab', 'dims']),
  solveBlk: kernel('delta_chunk_solve_blk', solveBlkSrc, ['step', 'stepmeta', 'ab', 'dims']),
  state: kernel('delta_chunk_state', stateSrc, ['step', 'stepmeta', 'qk', 'v', 'gates', 'ab', 'state', 'o', 'dims']),
  stateRb: kernel('delta_chunk_state_rb', stateRbSrc, ['step', 'stepmeta', 'qk', 'v', 'gates', 'ab', 'state', 'o', 'dims']),
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
  /**
   * The first column of q, k, v, a, b in their tensors' rows (default 0 each): parts of a packed projection (q, k
   * and v may then be one tensor, and a, b another; the 'fused' variant needs that).
   */
  off?: { q?: number; k?: number; v?: number; a?: number; b?: number };
  /** out = RMSNorm(o per value head)·w (⊙ silu(gate columns from gateOff)), instead of o itself */
  norm?: DeltaNorm | null;
  /**
   * The short conv that makes q|k|v (one tensor; the conv's y) from its raw projection, run ahead of the delta rule
   * by this op: in fused_sg's prologue where a value head is a q/k head (q|k|v then not written), else as the
   * short_conv op's launch.
   */
  conv?: Omit<ShortConvArgs, 'y'> | null;
}

/** The output norm of the mixer: w [DV] shared by the heads (fla o_norm, Qwen3-Next norm), optional SiLU gate z. */
export interface DeltaNorm { w: Weight; gate: Tensor | null; gateOff?: number; eps: number }

export type DeltaKernel = 'fused_sg' | 'fused' | 'recurrent' | 'chunk';

/** Chunk length of the chunked prefill (spec §10). */
export const CHUNK = 64;

/**
 * Words of the next chunk's rows each thread of delta_chunk_state touches ahead (PF: one per 128-byte line of its q̂,
 * k̂, T and B rows, spread over the workgroup, at most 4 a thread); 0 (none) unless FLA_DELTA_CHUNK_PF=1.
 */
function prefetchWords(DK: number, geo: { BV: number; G: number }): number {
  if (knob('FLA_DELTA_CHUNK_PF') !== '1') return 0;
  const lines = CHUNK * 2 * (Math.max(DK / 32, 1) + Math.max(CHUNK / 32, 1));
  return Math.min(4, Math.ceil(lines / (geo.BV * geo.G)));
}

/** The diagonal block of delta_chunk_solve_blk (solved by substitution; the rest by doubling). */
const SOLVE_SB = 8;

/**
 * Geometry of delta_chunk_state: BV columns × G row groups (G ≤ CH, dividing it), CPT columns a thread
 * (delta_chunk_state_rb where CPT > 1; BV / CPT · G threads within the adapter's limit), its blocks within the
 * adapter's workgroup memory (at most 32 KiB): the S block (DK × BV, transposed, each column padded by one vec4) and
 * one CH × BV token block (each column padded by one) and CH decays, or with twoBuf (FLA_DELTA_CHUNK_STATE=v1, the
 * kernel of before) two token blocks within 24 KiB. Default BV 16, G 32, CPT 1 (the fastest of the H200 probe,
 * bench/delta_chunk_probe.ts: 1.69 ms a gated_deltanet-1.3b layer at 4096 tokens, 32 × 32 1.79, v1's 8 × 32 2.09),
 * lowered (BV halved, then G) to what fits; v1: BV 8, G = 256 / BV, CPT 1. FLA_DELTA_CHUNK_BV / _G / _CPT force them.
 */
export function chunkGeometry(DK: number, DV: number, maxInvocations = 256, maxWorkgroupStorage = 32768): { BV: number; G: number; CPT: number; twoBuf: boolean } {
  const twoBuf = knob('FLA_DELTA_CHUNK_STATE') === 'v1';
  const budget = Math.min(twoBuf ? 24576 : 32768, maxWorkgroupStorage);
  const fBV = Number(knob('FLA_DELTA_CHUNK_BV') ?? 0), fG = Number(knob('FLA_DELTA_CHUNK_G') ?? 0), fC = Number(knob('FLA_DELTA_CHUNK_CPT') ?? 0);   // benchmarking knobs
  const bytes = (bv: number) => (twoBuf ? (DK + 4 + 2 * (CHUNK + 1)) * bv : (DK + 4 + CHUNK + 4) * bv + CHUNK) * 4;
  let BV = fBV > 0 ? fBV : twoBuf ? 8 : 16;
  while (BV > 4 && (DV % BV !== 0 || bytes(BV) > budget)) BV >>= 1;
  const CPT = twoBuf ? 1 : Math.min(fC > 0 ? fC : 1, BV);
  let G = fG > 0 ? fG : twoBuf ? Math.min(256, maxInvocations) / BV : 32;
  while (G > 1 && (BV / CPT * G > maxInvocations || G > CHUNK)) G >>= 1;
  if (DV % BV !== 0 || bytes(BV) > budget || !Number.isInteger(G) || G < 1 || BV / CPT * G > maxInvocations || CHUNK % G !== 0) throw new ShapeError(`delta_rule: no chunk geometry for DK=${DK} DV=${DV}`);
  return { BV, G, CPT, twoBuf };
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

/** FLOPs and bytes of N tokens; B sequences: each reads and writes its slot's state once (the fused kernels). */
export function cost(N: number, d: DeltaDims, B = 0) {
  return { flops: 6 * N * d.HV * d.DK * d.DV, bytes: 4 * N * (2 * d.H * d.DK + 2 * d.HV * d.DV + 2 * d.HV) + 8 * B * d.HV * d.DK * d.DV };
}

/** The per-slot recurrent state of one layer. */
export function deltaState(key: string, d: Pick<DeltaDims, 'HV' | 'DK' | 'DV'>): StateSpec {
  return { key, cols: d.HV * d.DK * d.DV };
}

const offOf = (x: DeltaOp) => ({ q: x.off?.q ?? 0, k: x.off?.k ?? 0, v: x.off?.v ?? 0, a: x.off?.a ?? 0, b: x.off?.b ?? 0 });
/** Shapes, then each input's row stride and first column (delta_rule_recurrent, delta_chunk_prep, delta_chunk_state). */
function dimsOf(x: DeltaOp) {
  const d = x.d, f = offOf(x);
  return u32(d.H, d.HV, d.DV, 0, x.q.cols, f.q, x.k.cols, f.k, x.v.cols, f.v, x.a?.cols ?? 0, f.a, x.b?.cols ?? 0, f.b, 0, 0);
}

/** The least power of two ≥ n. */
const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(n));

/**
 * Row lanes of the fused kernel: RL threads a value column, each holding DK / RL rows of S (more loads in flight and
 * shorter FMA chains for the one workgroup a head). FLA_DELTA_FUSED_RL forces it (lowered to what fits); default the
 * most that keep DV · RL ≤ 512 threads and the adapter's limit.
 */
export function fusedRowLanes(DK: number, DV: number, maxInvocations: number): number {
  const forced = Number(knob('FLA_DELTA_FUSED_RL') ?? 0);
  let rl = forced > 0 ? forced : 8;
  const cap = forced > 0 ? maxInvocations : Math.min(512, maxInvocations);
  while (rl > 1 && (DK % rl !== 0 || DV * rl > cap)) rl >>= 1;
  return rl;
}

/**
 * Geometry of delta_rule_fused_sg: RL row lanes a column quad (DV / 4 quads, DK / RL rows of S a lane, as vec4
 * registers) and W quads a lane group (W·RL lanes inside the smallest subgroup; W = 4 where that fits, so a load of
 * one row reads 64 contiguous bytes). Default RL: the most ≤ 8 dividing DK, ≤ the subgroup, with DV / 4 · RL ≤ 512
 * threads and the adapter's limit; FLA_DELTA_SG_RL forces it (lowered to what fits, up to the adapter's limit); then
 * raised until a lane holds ≤ 32 rows (the kernel unrolls them). null where the adapter has no subgroups (of a
 * power-of-two size) or no such geometry fits.
 */
export function fusedSgGeometry(DK: number, DV: number, ad: Pick<Ctx['adapter'], 'subgroups' | 'subgroupSize' | 'maxInvocations'>): { RL: number; W: number; NT: number } | null {
  const SGS = ad.subgroupSize, NQ = DV / 4;
  if (!ad.subgroups || !(SGS > 0) || (SGS & (SGS - 1)) !== 0 || DV % 16 !== 0 || NQ > ad.maxInvocations) return null;
  const forced = Number(knob('FLA_DELTA_SG_RL') ?? 0);
  const cap = forced > 0 ? ad.maxInvocations : Math.min(512, ad.maxInvocations);
  let RL = forced > 0 ? forced : 8;
  while (RL > 1 && (DK % RL !== 0 || RL > SGS || NQ * RL > cap)) RL >>= 1;
  // the kernel unrolls a lane's rows: at most 32 (a forced count is raised to that)
  while (DK / RL > 32 && RL < SGS && NQ * 2 * RL <= ad.maxInvocations) RL <<= 1;
  if (DK / RL > 32) return null;
  const W = Math.max(1, Math.min(4, SGS / RL));
  return { RL, W, NT: NQ * RL };
}

/** The fused kernel's case: q, k, v one tensor, a and b (where present) another; a norm; a value head per workgroup. */
function fusable(x: DeltaOp, c: Ctx): boolean {
  return !!x.norm && x.q === x.k && x.k === x.v && (x.a === null || x.b === null || x.a === x.b) && x.d.DV <= c.adapter.maxInvocations;
}

/** The unfused path's norm: rms_norm over the raw output held in scratch 'y'. */
function normLaunch(x: DeltaOp, c: Ctx): Launch[] {
  const n = x.norm;
  if (!n) return [];
  const a: RmsNormArgs = { x: x.out, w: n.w, g: n.gate, gOff: n.gateOff, y: x.out, C: x.d.DV, G: x.d.HV, eps: n.eps, plusOne: false };
  return [rmsNormLaunch(a, c, scratch('y'))];
}
const rawOut = (x: DeltaOp) => (x.norm ? scratch('y') : x.out);
const normScratch = (x: DeltaOp): Record<string, ScratchSpec> => (x.norm ? { y: { cols: x.d.HV * x.d.DV } } : {});

/** The state pass needs a geometry that fits the adapter's workgroup limits. */
function chunkFits(x: DeltaOp, c: Ctx): boolean {
  try { chunkGeometry(x.d.DK, x.d.DV, c.adapter.maxInvocations, c.adapter.maxWorkgroupStorage); return true; } catch { return false; }
}
const convOf = (x: DeltaOp): ShortConvArgs | null => (x.conv ? { ...x.conv, y: x.q } : null);
/** The conv's own launch ahead of a variant's (none without a conv). */
const convLaunches = (x: DeltaOp, c: Ctx): Launch[] => (x.conv ? [shortConvLaunch(convOf(x)!, c)] : []);
/**
 * delta_rule_fused_sg runs the conv in its prologue: one value head a q/k head (a workgroup owns its channels), q|k|v
 * exactly the conv's channels,
 * kernel size ≤ 17, its history and a token's outputs in workgroup memory; FLA_DELTA_CONV=0 keeps the conv's launch.
 */
function convInKernel(x: DeltaOp, c: Ctx): boolean {
  const KD = x.d.H * x.d.DK, f = offOf(x);
  // every channel of the conv is one head's input (the workgroups then update the whole history)
  if (!x.conv || x.d.HV !== x.d.H || f.q !== 0 || f.k !== KD || f.v !== 2 * KD || x.q.cols !== 2 * KD + x.d.HV * x.d.DV || knob('FLA_DELTA_CONV') === '0') return false;
  // a, b and z are read from the conv's input tensor (the kernel binds 8 storage buffers)
  if ((x.a ?? x.b ?? x.conv.x) !== x.conv.x || (x.norm?.gate ?? x.conv.x) !== x.conv.x) return false;
  const NC = 2 * x.d.DK + x.d.DV, W = kernelSize(convOf(x)!);
  return W >= 2 && W <= 17 && 4 * (NC * W + 64) <= Math.min(16384, c.adapter.maxWorkgroupStorage);
}

/** The fused case on an adapter with subgroups where delta_rule_fused_sg's geometry fits. */
const sgFusable = (x: DeltaOp, c: Ctx): boolean => fusable(x, c) && fusedSgGeometry(x.d.DK, x.d.DV, c.adapter) !== null;
/** The fused kernels' header words (delta_rule_fused.wgsl and _sg read the first 16 alike; _sg's conv adds 4). */
function fusedHeader(x: DeltaOp): number[] {
  const d = x.d, f = offOf(x), n = x.norm!, side = x.a ?? x.b;
  const eps = new Uint32Array(new Float32Array([n.eps]).buffer)[0]!;
  return [d.H, d.HV, d.DV, eps, x.q.cols, f.q, f.k, f.v, side?.cols ?? 0, f.a, f.b, 0, n.gate?.cols ?? 0, n.gateOff ?? 0, 0, 0];
}
const gateDefines = (x: DeltaOp) => ({ HAS_GATE: x.a !== null, HAS_BETA: x.b !== null, NEG_EIG: x.d.negEig });

export const deltaRuleOp = op<DeltaOp>({
  name: 'delta_rule',
  check(x) {
    const d = x.d;
    if ((x.a === null) !== (x.gp === null)) throw new ShapeError('delta_rule: the gate needs both a and A_log/dt_bias');
    const f = offOf(x), fits = (t: Tensor | null, o: number, w: number) => t === null || (Number.isInteger(o) && o >= 0 && o + w <= t.cols);
    if (!fits(x.q, f.q, d.H * d.DK) || !fits(x.k, f.k, d.H * d.DK) || !fits(x.v, f.v, d.HV * d.DV) || !fits(x.a, f.a, d.HV) || !fits(x.b, f.b, d.HV)
      || x.out.cols !== d.HV * d.DV || x.state.cols !== d.HV * d.DK * d.DV)
      throw new ShapeError(`delta_rule: tensor widths do not fit H=${d.H} HV=${d.HV} DK=${d.DK} DV=${d.DV}`);
    if (x.norm && (x.norm.w.shape.reduce((p, v) => p * v, 1) !== d.DV || !fits(x.norm.gate, x.norm.gateOff ?? 0, d.HV * d.DV)))
      throw new ShapeError(`delta_rule: norm weight [${x.norm.w.shape}] / gate do not fit HV=${d.HV} DV=${d.DV}`);
    checkDims(d);
    if (x.conv) {
      if (x.q !== x.k || x.k !== x.v) throw new ShapeError('delta_rule: the conv makes q|k|v as one tensor');
      shortConvOp.check!(convOf(x)!);
    }
  },
  /**
   * 'chunk' (the chunked WY/UT prefill) when a sequence has more than one chunk of tokens, on GPU adapters; else
   * 'fused' where the inputs are packed and the op carries the norm; else 'recurrent'.
   */
  select: (c: Ctx, x) => (chunked(c, CHUNK) && chunkFits(x, c) ? 'chunk' : !fusable(x, c) ? 'recurrent'
    : knob('FLA_DELTA_FUSED_SG') !== '0' && sgFusable(x, c) ? 'fused_sg' : 'fused'),
  variants: {
    fused_sg: {
      supports: sgFusable,
      launches: (x, c) => {
        const d = x.d, n = x.norm!, side = x.a ?? x.b, g = fusedSgGeometry(d.DK, d.DV, c.adapter)!;
        const cv = convInKernel(x, c) ? convOf(x)! : null;
        const dims = u32(...fusedHeader(x), cv?.x.cols ?? 0, cv?.xOff ?? 0, cv?.siluFrom ?? cv?.y.cols ?? 0, 0);
        return [...(cv ? [] : convLaunches(x, c)), {
          kernel: cv ? KERNELS.fusedSgConv : KERNELS.fusedSg, grid: [d.HV, c.step.b, 1], cost: cost(c.step.n, d, c.step.b),
          defines: { DK: d.DK, BV: d.DV, RL: g.RL, DR: d.DK / g.RL, W: g.W, SGS: c.adapter.subgroupSize, QK_ACT: QK_ACT[d.qkAct], QK_NORM: QK_NORM[d.qkNorm], V_SILU: d.vSilu, HAS_Z: n.gate !== null, ...gateDefines(x),
            CONV: cv !== null, CW: cv ? kernelSize(cv) : 2, CSILU: cv?.act === 'silu' },
          bind: cv ? { cx: cv.x, gp: x.gp, gn: n.w, cw: cv.w, state: x.state, cs: cv.state, o: x.out, dims }
            : { qkv: x.q, gab: side, z: n.gate, gp: x.gp, gn: n.w, state: x.state, o: x.out, dims },
        }];
      },
    },
    fused: {
      supports: fusable,
      launches: (x, c) => {
        const d = x.d, n = x.norm!, side = x.a ?? x.b, RL = fusedRowLanes(d.DK, d.DV, c.adapter.maxInvocations);
        return [...convLaunches(x, c), {
          kernel: KERNELS.fused, grid: [d.HV, c.step.b, 1], cost: cost(c.step.n, d, c.step.b),
          defines: { DK: d.DK, BV: d.DV, RL, RP: pow2(d.DV * RL), QK_ACT: QK_ACT[d.qkAct], QK_NORM: QK_NORM[d.qkNorm], V_SILU: d.vSilu, HAS_Z: n.gate !== null, ...gateDefines(x) },
          bind: { qkv: x.q, gab: side, z: n.gate, gp: x.gp, gn: n.w, state: x.state, o: x.out,
            dims: u32(...fusedHeader(x)) },
        }];
      },
    },
    recurrent: {
      scratch: normScratch,
      launches: (x, c) => {
        const d = x.d, BV = blockV(d.DV, c.adapter.maxInvocations);
        return [...convLaunches(x, c), {
          kernel: KERNELS.recurrent, grid: [d.HV * d.DV / BV, c.step.b, 1],
          defines: { DK: d.DK, BV, QK_ACT: QK_ACT[d.qkAct], QK_NORM: QK_NORM[d.qkNorm], V_SILU: d.vSilu, ...gateDefines(x) },
          bind: { q: x.q, k: x.k, v: x.v, ga: x.a, gb: x.b, gp: x.gp, state: x.state, o: rawOut(x), dims: dimsOf(x) },
        }, ...normLaunch(x, c)];
      },
    },
    // prep (norms, gates), kkt (A, B, G), solve (T; blocked, or row by row with FLA_DELTA_CHUNK_SOLVE=subst), state pass (δ, o, S).
    // Scratch: q̂/k̂ [2, cap, H·DK], gates (g, β, G) [3, cap, HV], A/B/T rows [3, cap, HV·CH].
    chunk: {
      supports: chunkFits,
      scratch: x => ({ qk: { cols: x.d.H * x.d.DK, planes: 2 }, gates: { cols: x.d.HV, planes: 3 }, ab: { cols: x.d.HV * CHUNK, planes: 3 }, ...normScratch(x) }),
      launches: (x, c): Launch[] => {
        const d = x.d, n = c.step.n, lim = c.adapter;
        const WG = Math.min(64, lim.maxInvocations);
        const geo = chunkGeometry(d.DK, d.DV, lim.maxInvocations, lim.maxWorkgroupStorage);
        const qk = scratch('qk'), gates = scratch('gates'), ab = scratch('ab');
        const MC = Math.ceil(c.step.maxLen / CHUNK), DK4 = d.DK / 4;   // chunks of the longest sequence; kkt and state read q̂, k̂ as vec4 (checkDims: DK a multiple of 16)
        return [
          ...convLaunches(x, c),
          { kernel: KERNELS.prep, grid: grid(n * d.H),
            defines: { DK: d.DK, WG, QK_ACT: QK_ACT[d.qkAct], QK_NORM: QK_NORM[d.qkNorm], ...gateDefines(x) },
            bind: { q: x.q, k: x.k, ga: x.a, gb: x.b, gp: x.gp, qk, gates, dims: dimsOf(x) } },
          { kernel: KERNELS.kkt, grid: grid(c.step.b * MC * d.HV), defines: { DK4, CH: CHUNK, SL: DK4 % 8 === 0 ? 8 : DK4 % 4 === 0 ? 4 : DK4 % 2 === 0 ? 2 : 1 },
            bind: { qk, gates, ab, dims: u32(d.H, d.HV, MC) } },
          knob('FLA_DELTA_CHUNK_SOLVE') === 'subst'
            ? { kernel: KERNELS.solve, grid: grid(c.step.b * MC * d.HV), defines: { CH: CHUNK }, bind: { ab, dims: u32(d.HV, MC) } }
            : { kernel: KERNELS.solveBlk, grid: grid(c.step.b * MC * d.HV), defines: { CH: CHUNK, SB: SOLVE_SB, WG: Math.max(CHUNK, Math.min(256, lim.maxInvocations)) }, bind: { ab, dims: u32(d.HV, MC) } },
          geo.CPT > 1
            ? { kernel: KERNELS.stateRb, grid: [d.HV * d.DV / geo.BV, c.step.b, 1],
              defines: { DK4, BV: geo.BV, G: geo.G, CH: CHUNK, QPT: CHUNK / geo.G, CPT: geo.CPT, V_SILU: d.vSilu },
              bind: { qk, v: x.v, gates, ab, state: x.state, o: rawOut(x), dims: dimsOf(x) } }
            : { kernel: KERNELS.state, grid: [d.HV * d.DV / geo.BV, c.step.b, 1],
              defines: { DK4, BV: geo.BV, G: geo.G, CH: CHUNK, QPT: CHUNK / geo.G, V_SILU: d.vSilu, TWO_BUF: geo.twoBuf, VX: !geo.twoBuf && knob('FLA_DELTA_CHUNK_VX') !== '0',
                PF: prefetchWords(d.DK, geo) },
              bind: { qk, v: x.v, gates, ab, state: x.state, o: rawOut(x), dims: dimsOf(x) } },
          ...normLaunch(x, c),
        ];
      },
    },
  },
  // the unfused composition: each input's part gathered, the delta rule, then the norm
  ref: (x, h) => {
    const cv = convOf(x);
    if (cv) shortConvOpRef(cv, h.data(cv.x), h.data(cv.w), h.data(cv.state), h.data(cv.y), h.step.cursors);
    const d = x.d, f = offOf(x), R = h.cap(x.out), KD = d.H * d.DK, VD = d.HV * d.DV;
    const part = (t: Tensor, off: number, w: number) => {
      const src = h.data(t), out = new Float32Array(R * w);
      for (let r = 0; r < R; r++) out.set(src.subarray(r * t.cols + off, r * t.cols + off + w), r * w);
      return out;
    };
    const raw = x.norm ? new Float32Array(R * VD) : h.data(x.out);
    deltaRuleRef(part(x.q, f.q, KD), part(x.k, f.k, KD), part(x.v, f.v, VD), x.a ? part(x.a, f.a, d.HV) : null, x.b ? part(x.b, f.b, d.HV) : null,
      x.gp ? h.data(x.gp) : null, h.data(x.state), raw, h.step.cursors, d);
    const n = x.norm;
    if (n) rmsNormRef(raw, h.data(n.w), h.data(x.out), R * d.HV, d.DV, { eps: n.eps, gate: n.gate ? h.data(n.gate) : null, gS: n.gate?.cols, gOff: n.gateOff, G: d.HV });
  },
});

/** out = the delta rule over each sequence of the step, continuing (and advancing) each slot's state. */
export function deltaRule(o: Backend, x: DeltaOp): Promise<void> {
  return o.run(deltaRuleOp, x);
}
