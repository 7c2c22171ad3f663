// matmul's decode GEMV family (1..16 rows held in registers, weights read once for all of them; blocks of 16 rows past
// that): plan() picks the load width, lanes per lane group (split-K), batch rows per pass and output columns per lane
// group (the register tile: each x load serves CB columns) from the shape and the adapter; matmul.ts lists the variants.
import { grid, kernel, rowsOf, u32, unrollFor, weightDefines, type Adapter, type Ctx, type Defines, type Launch, type Variant } from '../lib.ts';
import { ACT, type Act } from './matmul.ref.ts';
import source from './matmul_gemv_vec.wgsl' with { type: 'text' };
import type { Tensor, Weight } from '../../src/backend/backend.ts';
import { knob } from '../../src/util/knobs.ts';

/** Rows one dispatch holds in registers at most: matmul selects these variants up to here. */
export const GEMV_VEC_RMAX = 16;

export const GEMV_VEC = kernel('matmul_gemv_vec', source, ['step', 'x', 'W', 'bias', 'y', 'dims']);
/** The same GEMV whose residual is the token's embedding row (EMB: a decoder's first o_proj, matmul_gemv_comb.ts). */
export const GEMV_EMB = kernel('matmul_gemv_emb', source, ['step', 'x', 'W', 'bias', 'y', 'dims', 'stepmeta', 'emb']);

export interface GemvVecPlan {
  WG: number; TPR: number; RB: number; CB: number; E: number; TS: number; UNROLL: number; VEC: boolean; SG_RED: boolean; SGS: number;
  U: number;                          // load units per W row
  groups: number;                     // lane groups: ceil(OUT / CB) (ceil(OUT / (CB / 2)) of gate|up pairs)
  workgroups: [number, number, number];
}

/** Threads a dispatch should launch to keep enough loads in flight on a large GPU (132 SMs × 1024). */
const TARGET_THREADS = 1 << 17;
/** Threads of a register-tiled (CB > 1) dispatch: about one wave of a large GPU at ~128 registers a thread. */
const TILED_THREADS = 1 << 16;

/**
 * Output columns a lane group holds for `rb` register rows: 1 at one row (bandwidth-bound: nothing to reuse), else
 * 2 at two rows, 4 from three (x bytes per FMA 4 / CB, W bytes 2 / RB: 1.25 B/FMA at 8 rows, 1.1 at 16, against 4.1
 * for one column, whose x re-reads from L1 held batched decode to ~4 TFLOP/s on an H200). FLA_GEMV_COLS overrides.
 */
export function gemvCols(rb: number, env: Record<string, string | undefined> = process.env): number {
  const k = knob('FLA_GEMV_COLS', env);
  if (k !== undefined) return Number(k);
  return rb <= 1 ? 1 : rb <= 2 ? 2 : 4;
}

/**
 * Geometry for `rows` rows of x [rows, IN] times W [OUT, IN]. subgroups: reduce with subgroup operations where the
 * adapter has them (SGS = its smallest subgroup size; the kernel reads the real one); else through workgroup memory.
 * pairs: the columns come in gate|up pairs (CB ≥ 2, half from each; OUT counts both). rmax: rows a lane holds at most
 * (FLA_GEMV_ROWS overrides). ruled: take gemvRule's geometry where it applies. Activation rows start at
 * multiples of 64 rows of 4-byte values, so x is always 16-byte aligned.
 */
export function plan(ad: Adapter, rows: number, IN: number, OUT: number, dtype: 'f32' | 'bf16' | 'f16', subgroups: boolean, pairs = false,
  rmax = GEMV_VEC_RMAX, ruled = true): GemvVecPlan {
  const epw = dtype === 'f32' ? 1 : 2;                  // elements per u32 word
  const VEC = IN % (4 * epw) === 0;
  const U = VEC ? IN / (4 * epw) : IN / epw;
  const E = VEC ? 4 * epw : epw;
  const SGS = ad.subgroupSize;
  const SG_RED = subgroups && ad.subgroups && SGS > 0 && SGS <= Math.min(256, ad.maxInvocations) && (SGS & (SGS - 1)) === 0;
  const rbMax = Number(knob('FLA_GEMV_ROWS') ?? rmax);
  const RB = Math.min(rbMax, rows <= 1 ? 1 : rows <= 2 ? 2 : rows <= 4 ? 4 : rows <= 8 ? 8 : GEMV_VEC_RMAX);
  // measured per-shape geometry (gemvRule) on the subgroup path, 16-byte loads, one block of 1 or 8 rows; the
  // portable path and the other cases keep the geometry below
  const r: GemvRule = ruled && SG_RED && VEC && (RB === 1 || RB === 8) && rows <= RB && knob('FLA_GEMV_TUNED') !== '0' ? gemvRule(RB as 1 | 8, U, OUT, pairs) : {};
  const wgKnob = knob('FLA_GEMV_WG');
  const WG = SG_RED ? Math.max(SGS, Math.min(Number(wgKnob ?? r.WG ?? 256), ad.maxInvocations)) : Math.min(256, ad.maxInvocations);
  let CB = Math.max(pairs ? 2 : 1, knob('FLA_GEMV_COLS') === undefined && r.CB !== undefined ? r.CB : gemvCols(RB));
  // the subgroup reduction keeps RB·CB sums per subgroup in workgroup memory (matmul_multi: plus RB sums of squares)
  while (SG_RED && CB > (pairs ? 2 : 1) && (WG / SGS) * RB * (CB + 1) * 4 > ad.maxWorkgroupStorage) CB /= 2;
  const N = RB * CB, z = Math.ceil(rows / RB);
  const groups = Math.ceil(OUT / CB);
  // lanes per group: start at 32, widen (split-K) while the grid is small and each lane keeps enough units (8 for
  // one column, bandwidth-bound; 2 for a register tile, FMA-bound), narrow while lanes would idle on a short row
  // (gate|up pairs at one row start at 16 lanes: 16 units a lane in flight; H200, 2026-12-02: llama-1b gate|up 30.4 →
  // 27.6 µs, gated_deltanet-1.3b 24.3 → 20.8; 16 lanes were slower for every one-column shape)
  let TPR = Math.min(pairs && RB === 1 ? 16 : 32, WG);
  if (N === 1) while (TPR < WG && groups * TPR < TARGET_THREADS && 8 * TPR <= U) TPR *= 2;
  else while (TPR < WG && groups * z * TPR < TILED_THREADS && 4 * TPR <= U) TPR *= 2;
  const lanes = knob('FLA_GEMV_LANES') ?? r.TPR;
  if (lanes !== undefined) TPR = Math.min(Number(lanes), WG);
  while (TPR > 1 && TPR > U) TPR /= 2;
  // transposing reduction steps: at most 3, each needs a stride bit inside the group and the subgroup
  let TS = 0;
  if (SG_RED) while (TS < 3 && 2 << TS <= Math.min(N, TPR, SGS)) TS++;
  const [gx, gy] = grid(Math.ceil(groups / (WG / TPR)));
  // units in flight per lane: 4 for a few sums, fewer as the register tile grows (keeps the registers ≲ 128); 1 where
  // a CPU runs the shader (unrollFor)
  const UNROLL = Number(knob('FLA_GEMV_UNROLL') ?? unrollFor(ad, r.UNROLL ?? (N <= 4 ? 4 : N <= 16 ? 2 : 1)));
  return { WG, TPR, RB, CB, E, TS, UNROLL, VEC, SG_RED, SGS: SG_RED ? SGS : 0, U, groups, workgroups: [gx, gy, z] };
}

/** Geometry a rule sets (unset: plan's own choice): threads a workgroup, columns a lane group, lanes a group, units in flight. */
export interface GemvRule { WG?: number; CB?: number; TPR?: number; UNROLL?: number }

/**
 * The decode GEMVs' geometry by shape where subgroups reduce, from the H200 sweep of `bun bench/gemv_probe.ts
 * --sweep` (2026-12-02, every decode GEMV of llama-1b, rwkv7-1.5b and gated_deltanet-1.3b, weights streamed from
 * HBM; µs a dispatch, previous → rule). rb: register rows (one block: rows ≤ rb); units: 16-byte load units of a W
 * row; OUT counts both halves of gate|up pairs.
 * - One row: 2 columns a lane group (4 for gate|up pairs: 2 outputs), lanes from 16 doubled while the grid stays
 *   within 2^17 threads and each lane keeps 2 units (16 on the heads, 128 on 2048-wide outputs), 8 units in flight
 *   (2 for pairs): llama-1b head 176.6 → 133.9 (3.9 TB/s), q|k|v 12.8 → 11.1, gate|up 25.6 → 23.1, down 19.3 → 17.5;
 *   rwkv7 head 79 → 72, key 20.2 → 17.6; gated_deltanet head 53.9 → 40.8, q|k|v|z|a|b 25.2 → 20.6, gate|up 22.4 →
 *   18.9, down 13.6 → 12.7, o 11.6 → 11.0; o (2048 × 2048) 9.2 either way.
 * - Eight rows (5..8 rows): 4 columns, 2 units in flight (was 1), lanes from 8 doubled while the grid stays within
 *   2^16 threads and each lane keeps 4 units, 128 threads a workgroup on outputs up to 16 K wide (more workgroups a
 *   multiprocessor): llama-1b head 248.6 → 228.7, q|k|v 22.9 → 16.5, down 30.4 → 27.8, o 12.7 → 11.6; rwkv7 head
 *   114.6 → 101.1, key 26.7 → 21.8; gated_deltanet head 72.9 → 61.6, q|k|v|z|a|b 38.6 → 34.0, gate|up 35.5 → 30.7,
 *   down 19.7 → 17.0, o 16.0 → 15.0. Not llama-1b's gate|up (8192 pairs): 40–42 µs as before, 50–69 with the rule.
 */
export function gemvRule(rb: 1 | 8, units: number, OUT: number, pairs: boolean): GemvRule {
  if (rb === 1) {
    const CB = pairs ? 4 : 2, groups = Math.ceil(OUT / CB);
    let TPR = 16;
    while (TPR < 256 && groups * 2 * TPR <= 1 << 17 && 4 * TPR <= units) TPR *= 2;
    return { CB, TPR, UNROLL: pairs ? 2 : 8 };
  }
  if (pairs && OUT >= 16384) return {};                  // llama-1b's gate|up: 40-42 µs as before, 50-69 with the rule
  const groups = Math.ceil(OUT / 4);
  let TPR = 8;
  while (TPR < 256 && groups * 2 * TPR <= 1 << 16 && 8 * TPR <= units) TPR *= 2;
  return { CB: 4, TPR, UNROLL: 2, ...(OUT <= 16384 ? { WG: 128 } : {}) };
}

/** FLA_GEMV_ROW_LOOP=1: a tile's batch rows as a loop for the driver to unroll instead of explicit calls (A/B). */
export function rowLoop(): boolean { return knob('FLA_GEMV_ROW_LOOP') === '1'; }

/** Rows matmul_multi's fused GEMV holds at most: its norm sums and part selection cost registers (H200, 64 rows,
 * llama-1b gate|up: 16 rows a lane 401 µs, 8 rows 265 µs; q|k|v 145 vs 70 µs). */
export const GEMV_MULTI_RMAX = 8;

interface Args { x: Tensor; w: Weight; bias: Weight | null; y: Tensor; act: Act; accumulate: boolean }

/**
 * One gemv_vec dispatch; `emb` (an embedding table [V, OUT]): y = act(x·Wᵀ + bias) + emb[token] instead of the
 * accumulate (matmul_gemv_emb).
 */
export function gemvLaunch(a: Args, c: Ctx, subgroups: boolean, cost: Launch['cost'], emb: Weight | null = null): Launch {
  const [OUT, IN] = a.w.shape as [number, number];
  const p = plan(c.adapter, rowsOf(a.x, c), IN, OUT, a.w.dtype as 'f32' | 'bf16' | 'f16', subgroups);
  // WDT 0 leaves out common.wgsl's wpair(), which reads W as array<u32>; W_F32 / W_F16 pick the unpacking
  const defines: Defines = {
    ACT: ACT[a.act], HAS_BIAS: a.bias !== null, ACCUM: a.accumulate && !emb, ROWS_K: a.x.rows === 'k', HAS_STEPMETA: emb !== null,
    EMB: emb !== null, EMB_F32: emb?.dtype === 'f32', EMB_F16: emb?.dtype === 'f16', ...weightDefines(a.w.dtype as 'f32' | 'bf16' | 'f16'), WDT: 0,
    WG: p.WG, RB: p.RB, ROW_LOOP: rowLoop(), CB: p.CB, CV2: p.CB === 2, CV4: p.CB === 4, E: p.E, TS: p.TS, UNROLL: p.UNROLL, VEC: p.VEC, SG_RED: p.SG_RED, SGS: Math.max(p.SGS, 1),
  };
  const bind: Launch['bind'] = { x: a.x, W: a.w, bias: a.bias, y: a.y, dims: u32(IN, OUT, p.U, p.TPR) };
  if (emb) bind.emb = emb;
  return { kernel: emb ? GEMV_EMB : GEMV_VEC, defines, cost, grid: p.workgroups, bind };
}

/**
 * The two variants: 'gemv_vec' (subgroup reductions where the adapter has subgroups) and 'gemv_vec_wg' (portable:
 * workgroup memory). Past 16 rows W is read once per block of 16 rows (from L2 after the first).
 */
export function gemvVecVariants(cost: (a: Args, c: Ctx) => Launch['cost']): { gemv_vec: Variant<Args>; gemv_vec_wg: Variant<Args> } {
  return {
    gemv_vec: { launches: (a, c) => [gemvLaunch(a, c, true, cost(a, c))] },
    gemv_vec_wg: { launches: (a, c) => [gemvLaunch(a, c, false, cost(a, c))] },
  };
}
