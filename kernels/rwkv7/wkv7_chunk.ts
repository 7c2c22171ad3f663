// The 'chunk' variant of the wkv7 op (wkv7.ts): chunked prefill of the RWKV7 time-mix core, fla's DPLR
// ("diagonal plus low rank") chunk algorithm in chunks of CHUNK = 32 tokens, five launches:
//   prep  (wkv7_chunk_prep.wgsl)  per (token, head): v lerp, κ̂, k̃, bonus, the cumulative log-decay Γ in the chunk
//                                 and the decay-scaled rows rg, ag, bg, kg;
//   mats  (wkv7_chunk_mats.wgsl)  per (chunk, head): the in-chunk matrices A_ab, A_ak, A_rb, A_rk (a tiled product with
//                                 one exponential per (row, column, channel));
//   solve (wkv7_chunk_solve.wgsl) per (chunk, head): T = (I − A_ab)^{−1};
//   state (wkv7_chunk_state.wgsl) per (head, column block, sequence): the pass over the chunks (o, S);
//   out   (wkv7_chunk_out.wgsl)   per (token, head): GroupNorm, bonus, gate.
// Numerics: every decay factor is e^{x} with x ≤ 0 (a difference of cumulative log-decays from the chunk start, or a
// suffix sum), never a factorised e^{Γ_t}·e^{−Γ_s}, so nothing overflows however small the decays; chunk 64 then costs
// no range, only the size of Γ (|Γ| ≤ 64·0.61 ≈ 39 for RWKV7's w ≥ −e^{−0.5}, where one f32 ulp is 4e-6): Γ is summed
// compensated (hi + lo) and exponentiated as e^{hi}·e^{lo} or e^{(hi−hi)+(lo−lo)}. Without that kjv-rwkv7's 2-window
// NLL at chunk 64 was 3.1e-8 from the reference (lavapipe), with it 1.5e-8 (recurrent 9.8e-9); CHUNK says why 32.
// Scratch: pre [6, cap, C] (Γ's hi, α, β, k̃, v, o), gk [5, cap, C] (rg, ag, bg, kg, Γ's lo), bon [cap, H],
// mat [5, cap, H·CH] (A_ab, A_ak, A_rb, A_rk, T).
import { ShapeError } from '../../src/util/errors.ts';
import { knob } from '../../src/util/knobs.ts';
import { f32, grid, kernel, scratch, u32, type Ctx, type Launch, type Variant } from '../lib.ts';
import prepSrc from './wkv7_chunk_prep.wgsl' with { type: 'text' };
import matsSrc from './wkv7_chunk_mats.wgsl' with { type: 'text' };
import solveSrc from './wkv7_chunk_solve.wgsl' with { type: 'text' };
import stateSrc from './wkv7_chunk_state.wgsl' with { type: 'text' };
import outSrc from './wkv7_chunk_out.wgsl' with { type: 'text' };
import type { Wkv7Op } from './wkv7.ts';

export const CHUNK_KERNELS = {
  prep: kernel('wkv7_chunk_prep', prepSrc, ['step', 'stepmeta', 'proj', 'vfirst', 'vmix', 'params', 'pre', 'gk', 'bon', 'dims']),
  mats: kernel('wkv7_chunk_mats', matsSrc, ['step', 'stepmeta', 'proj', 'pre', 'gk', 'mat', 'dims']),
  solve: kernel('wkv7_chunk_solve', solveSrc, ['step', 'stepmeta', 'mat', 'dims']),
  state: kernel('wkv7_chunk_state', stateSrc, ['step', 'stepmeta', 'pre', 'gk', 'mat', 'state', 'dims']),
  out: kernel('wkv7_chunk_out', outSrc, ['step', 'proj', 'params', 'pre', 'bon', 'y', 'dims']),
};

/**
 * Chunk length of the chunked prefill. 32, not 64: |Γ| stays ≤ 19.4 and T's substitution 32 rows deep, and the kernel
 * tests' error against the f64 reference is 2–3× smaller (wide decays: D 64 1.2e-6 vs 2.9e-6, D 128 6.3e-7 vs 2.1e-6);
 * the state pass's serial chain per chunk is about a third as long, so twice the chunks cost no more. kjv-rwkv7's
 * 2-window NLL moves with every build at the 1e-8 level (chunk 32: 4.4e-9; 3.7e-8 before the fused prologue landed).
 */
export const CHUNK = 32;

/** rwkv7_red.wgsl's defines for a workgroup of D threads summing through workgroup memory (the D-thread kernels). */
export const RED_D = (D: number) => ({ WG: D, SG_RED: false, SGS: 1 });
/** Steps whose longest sequence has more tokens than this take the chunked prefill (the house rule of 64). */
export const CHUNK_MIN_LEN = 64;
/** Channels per staged tile of wkv7_chunk_mats: seven CHUNK × KC f32 blocks (14 KiB) within WebGPU's default 16 KiB. */
const MATS_KC = 8;

/**
 * Geometry of wkv7_chunk_state: BV columns × G row groups (G = min(256 threads or the adapter's limit / BV, CHUNK));
 * the S block (D × BV) and three CHUNK × BV token blocks must fit 24 KiB of workgroup memory (and wkv7_chunk_solve's
 * CHUNK × CHUNK block the adapter's limit). null: none fits.
 */
export function chunkGeometry(D: number, maxInvocations = 256, maxWorkgroupStorage = 32768): { BV: number; G: number } | null {
  const tpb = Math.min(256, maxInvocations);
  const budget = Math.min(24576, maxWorkgroupStorage);
  const forced = Number(knob('FLA_WKV7_CHUNK_BV') ?? 0);   // benchmarking knob: columns per workgroup
  let BV = forced > 0 ? Math.min(forced, D) : 8;   // 8 as delta_chunk_state (fastest there on an H100); 4 = one chunk row per thread
  const bytes = (bv: number) => (D + 4 + 3 * CHUNK) * bv * 4;   // S transposed (each column padded by a vec4), v, x, u
  while (BV > 4 && (D % BV !== 0 || bytes(BV) > budget)) BV >>= 1;
  const G = Math.min(tpb / BV, CHUNK);
  if (D % BV !== 0 || D % 4 !== 0 || bytes(BV) > budget || tpb % BV !== 0 || CHUNK % G !== 0) return null;
  // prep/out: D threads; mats: 256 threads; solve stages A_ab (CHUNK² f32)
  if (D > maxInvocations || maxInvocations < 256 || CHUNK * CHUNK * 4 > maxWorkgroupStorage || D % MATS_KC !== 0) return null;
  return { BV, G };
}

export const chunkFits = (a: Wkv7Op, c: Ctx): boolean => chunkGeometry(a.D, c.adapter.maxInvocations, c.adapter.maxWorkgroupStorage) !== null;

export const chunkVariant: Variant<Wkv7Op> = {
  supports: chunkFits,
  scratch: a => {
    const C = a.out.cols;
    return { pre: { cols: C, planes: 6 }, gk: { cols: C, planes: 5 }, bon: { cols: C / a.D }, mat: { cols: (C / a.D) * CHUNK, planes: 5 } };
  },
  launches: (a, c): Launch[] => {
    const C = a.out.cols, D = a.D, H = C / D, n = c.step.n;
    const geo = chunkGeometry(D, c.adapter.maxInvocations, c.adapter.maxWorkgroupStorage);
    if (!geo) throw new ShapeError(`wkv7: no chunk geometry for head dim ${D}`);
    const pre = scratch('pre'), gk = scratch('gk'), bon = scratch('bon'), mat = scratch('mat');
    const dimsC = u32(C, 0, 0, 0), chunkGrid: [number, number, number] = [H, c.step.b, Math.max(1, Math.ceil(c.step.maxLen / CHUNK))];
    return [
      { kernel: CHUNK_KERNELS.prep, grid: grid(n * H),
        defines: { D, CH: CHUNK, FIRST: a.vmix === null, FUSE_NORM: a.fuseNorm, ...RED_D(D) },
        bind: { proj: a.proj, vfirst: a.vfirst, vmix: a.vmix, params: a.params, pre, gk, bon, dims: f32(C, 1, 0, 0) } },
      { kernel: CHUNK_KERNELS.mats, grid: chunkGrid, defines: { D, CH: CHUNK, KC: MATS_KC }, bind: { proj: a.proj, pre, gk, mat, dims: dimsC },
        cost: { flops: 4 * n * Math.min(CHUNK, c.step.maxLen) * C, bytes: 4 * n * (6 * C + 4 * H * CHUNK) } },
      { kernel: CHUNK_KERNELS.solve, grid: chunkGrid, defines: { CH: CHUNK }, bind: { mat, dims: u32(H, 0, 0, 0) } },
      { kernel: CHUNK_KERNELS.state, grid: [H * D / geo.BV, c.step.b, 1], defines: { D, BV: geo.BV, G: geo.G, CH: CHUNK, QPT: CHUNK / geo.G },
        bind: { pre, gk, mat, state: a.state, dims: dimsC },
        cost: { flops: 8 * n * C * D + 8 * n * CHUNK * C, bytes: 4 * n * (7 * C + 5 * H * CHUNK) + 8 * c.step.b * C * D } },
      { kernel: CHUNK_KERNELS.out, grid: grid(n * H), defines: { D, ...RED_D(D) },
        bind: { proj: a.proj, params: a.params, pre, bon, y: a.out, dims: f32(C, a.gnEps, 0, 0) } },
    ];
  },
};
