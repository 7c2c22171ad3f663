// The f16 variants of the matmul op, for f16 weights (bf16 checkpoints are converted at load where these run):
// 'sgmat' (subgroup matrices, x split into two f16 halves: f32-grade, the default from 16 rows), 'sgmat_f16'
// (subgroup matrices, one f16 product: faster, rtol 1e-3), and 'f16split' / 'f16single', the same arithmetic
// without subgroup matrices (any adapter with shader-f16; lavapipe tests the arithmetic with them). Every variant
// first runs matmul_sgmat_prep (x scaled per row and split into f16 once, into a scratch), then its GEMM — but 'sgmat'
// where its plan fuses the split (SgmatPlan.fused, FLA_SGMAT_FUSE): the GEMM then reads x as f32 and splits it while
// it stages it, scaled per row and per restart block (matmul_f16.ref.ts blockScale).
import { F16_MATMULS, sgmatByDefault, sgmatConfig, type SubgroupMatrixConfig } from '../../src/util/f16.ts';
import { grid } from '../../src/util/grid.ts';
import { knob } from '../../src/util/knobs.ts';
import { kernel, rowsOf, scratch, u32, weightDefines, type Ctx, type Kernel, type Launch, type ScratchSpec, type Variant } from '../lib.ts';
import type { MatmulArgs } from './matmul.ts';
import { ACT, type Act } from './matmul.ref.ts';
import sgmatSrc from './matmul_sgmat.wgsl' with { type: 'text' };
import prepSrc from './matmul_sgmat_prep.wgsl' with { type: 'text' };
import reduceSrc from './matmul_sgmat_reduce.wgsl' with { type: 'text' };
import f16Src from './matmul_f16.wgsl' with { type: 'text' };

export type F16Matmul = Exclude<typeof F16_MATMULS[number], 'sgmv'>;   // sgmv: matmul_sgmv.ts

const BINDINGS = ['step', 'xq', 'W', 'bias', 'y', 'dims'] as const;
const FUSED_BINDINGS = ['step', 'x', 'W', 'bias', 'y', 'dims'] as const;
export const F16_KERNELS = {
  prep: kernel('matmul_sgmat_prep', prepSrc, ['step', 'x', 'xq', 'dims']),
  reduce: kernel('matmul_sgmat_reduce', reduceSrc, ['step', 'part', 'xq', 'bias', 'y', 'dims']),
  f16: kernel('matmul_f16', f16Src, BINDINGS),
};

/**
 * Fewest rows the subgroup-matrix GEMM takes by default (unless FLA_TENSOR_CORES=0): 17. H200, llama-1b batched decode: at 16
 * rows gemv_vec 1 682 t/s vs sgmat 1 315; at 64 rows sgmat 5 288 vs gemv_vec 2 308 (BENCHMARKS.md, 2026-12-02).
 */
export const SGMAT_MIN_ROWS = 17;

/** WM×WN subgroups per workgroup, each TM×TN result matrices; K tiles of BK; DB: two workgroup buffers (one barrier a K tile). */
export interface SgmatTile { name: string; WM: number; WN: number; TM: number; TN: number; BK: number; DB: boolean }

/**
 * The tiles (sizes for the 16×16×16 config; FLA_SGMAT_TILE forces one, scripts/bench_sgmat.ts sweeps them all).
 * w: 8 subgroups, q: 4, o: 1; the number is the tile's rows × columns; k16/k64: K tiles of 16/64 (else 32); d: DB;
 * c: a subgroup's block 2×4 matrices instead of 4×2 (w128c, q64x128: for the split with its sums, 8 matrices a
 * subgroup, where x's two halves make rows dearer than columns: 8 fragment loads for 16 products instead of 10).
 */
export const SGMAT_TILES: readonly SgmatTile[] = [
  { name: 'w128x256', WM: 2, WN: 4, TM: 4, TN: 4, BK: 32, DB: false },
  { name: 'w256x128', WM: 4, WN: 2, TM: 4, TN: 4, BK: 32, DB: false },
  { name: 'w128', WM: 2, WN: 4, TM: 4, TN: 2, BK: 32, DB: false },
  { name: 'w128d', WM: 2, WN: 4, TM: 4, TN: 2, BK: 32, DB: true },
  { name: 'w128k64', WM: 2, WN: 4, TM: 4, TN: 2, BK: 64, DB: false },
  { name: 'w128c', WM: 4, WN: 2, TM: 2, TN: 4, BK: 32, DB: false },
  { name: 'w128x64', WM: 2, WN: 4, TM: 4, TN: 1, BK: 32, DB: false },
  { name: 'w64x128k64', WM: 2, WN: 4, TM: 2, TN: 2, BK: 64, DB: false },
  { name: 'q128', WM: 2, WN: 2, TM: 4, TN: 4, BK: 32, DB: false },
  { name: 'q128k64', WM: 2, WN: 2, TM: 4, TN: 4, BK: 64, DB: false },
  { name: 'q128x64', WM: 2, WN: 2, TM: 4, TN: 2, BK: 32, DB: false },
  { name: 'q128x64d', WM: 2, WN: 2, TM: 4, TN: 2, BK: 32, DB: true },
  { name: 'q128x64k64', WM: 2, WN: 2, TM: 4, TN: 2, BK: 64, DB: false },
  { name: 'q64x128', WM: 2, WN: 2, TM: 2, TN: 4, BK: 32, DB: false },
  { name: 'q64x128k64', WM: 2, WN: 2, TM: 2, TN: 4, BK: 64, DB: false },
  { name: 'q64', WM: 2, WN: 2, TM: 2, TN: 2, BK: 32, DB: false },
  { name: 'q64d', WM: 2, WN: 2, TM: 2, TN: 2, BK: 32, DB: true },
  { name: 'q64k64', WM: 2, WN: 2, TM: 2, TN: 2, BK: 64, DB: false },
  { name: 'q64k64d', WM: 2, WN: 2, TM: 2, TN: 2, BK: 64, DB: true },
  // thin tiles for batched decode (17..64 rows): one subgroup row, the subgroups side by side along the output
  // (x's fragments shared by all, each W fragment loaded by one); n32: 32 rows, n64: 64; w8: 8 subgroups
  { name: 'n32', WM: 1, WN: 4, TM: 2, TN: 2, BK: 64, DB: false },
  { name: 'n32d', WM: 1, WN: 4, TM: 2, TN: 2, BK: 32, DB: true },
  { name: 'n32x64', WM: 1, WN: 4, TM: 2, TN: 1, BK: 64, DB: false },
  { name: 'n64', WM: 1, WN: 4, TM: 4, TN: 2, BK: 32, DB: false },
  { name: 'n64d', WM: 1, WN: 4, TM: 4, TN: 2, BK: 32, DB: true },
  { name: 'n64k64', WM: 1, WN: 4, TM: 4, TN: 2, BK: 64, DB: false },
  { name: 'n64x64', WM: 1, WN: 4, TM: 4, TN: 1, BK: 64, DB: false },
  { name: 'n64w8d', WM: 1, WN: 8, TM: 4, TN: 1, BK: 32, DB: true },
];

/** Workgroup bytes: x hi (+ lo) and W staged as f16 in rows of BK + 8 (one vec4<u32> of padding), twice with DB; fused: + 1/s a row. */
export function sgmatTileBytes(m: SubgroupMatrixConfig, t: SgmatTile, split: boolean, fused = false): number {
  const BM = t.WM * t.TM * m.M, BN = t.WN * t.TN * m.N, row = 2 * (t.BK + 8);
  return (t.DB ? 2 : 1) * (BM * row * (split ? 2 : 1) + BN * row) + (fused ? 4 * BM : 0);
}

/**
 * K elements between restarts of the split variant's accumulators (0: none). The tensor cores add each 16-product
 * block into the f32 accumulator with truncation, not round-to-nearest (Fasi et al. 2021; Khattak & Mikaitis 2025):
 * a bias that grows linearly with the chain — H200, against the f32 GEMM: 5.4e-6 at K 2048, 1.3e-5 at 4096, 2.3e-5 at
 * 8192 (BENCHMARKS.md, 2026-12-01), reproduced by the CPU model of scripts/sgmat_error.ts. Restarting every 256 K
 * elements and adding each chunk into f32 sums (round-to-nearest) brings the model to 0.5–1e-6 at every K, below
 * the f32 GEMM's own 2–5e-6. The sums take as many registers as the accumulators. H200 (2026-12-02, GPU.sh of
 * engineer tc): against the f32 GEMM 2.1e-6 at 512×2048×2048 and 3.3e-6 at 4096³ (were 5.4e-6 / 1.3e-5); against f64
 * at K 4096 6.5–6.9e-7, the f32 GEMM 2.1e-6; 4096³ 87.7 TFLOP/s (w128; the one-chain w128x256 100.9–107.7).
 */
export const SGMAT_FLUSH_K = 256;

/** Whether tile `t` runs on this adapter with config `m` (flush: with the f32 sums of SGMAT_FLUSH_K). */
export function sgmatFits(c: Ctx, m: SubgroupMatrixConfig, t: SgmatTile, split: boolean, flush = false): boolean {
  const A = c.adapter, SG = A.subgroupSize ?? 0;
  if (!SG) return false;
  const BM = t.WM * t.TM * m.M, BN = t.WN * t.TN * m.N, NT = t.WM * t.WN * SG, KS = t.BK / 8, KP = KS + 1;
  return t.BK % m.K === 0 && m.K % 8 === 0 && m.N % 4 === 0 && (m.M * m.N) % SG === 0
    && NT % KS === 0 && (BM * KS) % NT === 0 && (BN * KS) % NT === 0   // every thread copies whole slots, as many each
    && t.WM * t.WN * m.M * m.N * 4 <= (t.DB ? 2 : 1) * BM * KP * 16       // the epilogue's result matrices fit in x hi's memory
    && sgmatTileBytes(m, t, split, flush) <= A.maxWorkgroupStorage && NT <= A.maxInvocations
    && (!flush || SG % 4 === 0)
    && (flush ? 2 : 1) * t.TM * t.TN <= 16;   // accumulators (and sums): 16 matrices of 16×16 f32 are 128 registers a lane
}

/** A tile (split-K count, flush on/off) forced by fla's own scripts (scripts/bench_sgmat.ts sweeps them); FLA_SGMAT_TILE otherwise. */
let tileOverride: SgmatTile | null = null, splitOverride: number | null = null, flushOverride: boolean | null = null;
export function sgmatTileOverride(t: SgmatTile | null, sk: number | null = null, flush: boolean | null = null): void { tileOverride = t; splitOverride = sk; flushOverride = flush; }

/**
 * The default tile for R×OUT outputs: the first of SGMAT_ORDER[flush, split or single] that still gives ≥ SGMAT_MIN_WG
 * workgroups (the H200 has 132 compute units), else the one giving most workgroups; up to 64 rows (batched decode)
 * the first of SGMAT_THIN[32 or 64 rows] that fits. Where the tile gives fewer than SGMAT_MIN_WG workgroups, K is
 * split into slices (workgroup z of the grid sums slice z; matmul_sgmat_reduce adds them): enough for
 * SGMAT_SPLITK_TARGET workgroups up to 64 rows (SGMAT_MIN_WG past that), each slice ≥ SGMAT_SLICE_K (the split's
 * restart block: a slice is summed into f32 exactly as a block is, so splitting costs no accuracy), at most
 * SGMAT_SK_MAX. Rows k (a step's last tokens) never split. H200 (2026-12-02, scripts/sgmat_sweep.ts, µs per call with
 * the pre-pass and reduce): 64×3072×2048 n64 k1 70.7, k4 30.7, k8 27.6 (29 TFLOP/s; the 64×64 tile of before, q64
 * k1, 241); 32×2048×8192 n32 k1 133, k4 48.5, k8 34.0, k16 43.9 (gemv_vec 87.7); 32×3072×2048 n32 k4 19.2, k8 22.2
 * (gemv_vec 29.2); 16 rows: gemv_vec 12.9, n32x64 k4 11.5 (so 16 rows stay on gemv_vec). At 512 rows split-K did
 * not pay where the tile gives 128 workgroups (512×2048×2048 q128x64k64 k1 54.8 TFLOP/s, k2 51.7, k4 44.9).
 * Restarting every 512 instead of 256 gained nothing (32×2048×8192 31.4 vs 31.6 TFLOP/s) for 1.7× the error.
 * From the H200 sweep (scripts/bench_sgmat.ts, 2026-12-01; TFLOP/s split / single): 512×8192×2048 and larger outputs
 * w128x256 90.8 / 122.0 (best: 90.8 / w256x128 125.5), 4096³ 100.9 / 155.0; 512×2048×2048 q128x64k64 52.1 (best) /
 * q64k64 70.0 (best); 512×2048×8192 q128x64k64 68.4 (best) / q64k64 101.9 (best).
 */
// flush (the split with its sums, 8 matrices a subgroup), H200 2026-12-02: 4096³ w128 87.7, w128c 82.9, q64x128 79.2,
// q128x64k64 54.5, q64x128k64 53.1; 512×2048×2048 q128x64k64 43.8, q64x128 41.8, q64x128k64 39.9, w128 34.7, w128c 31.1
export const SGMAT_ORDER = { split: ['w128x256', 'q128x64k64', 'q64'], flush: ['w128', 'q128x64k64', 'q64'], single: ['w128x256', 'q64k64', 'q64'] } as const;
export const SGMAT_THIN = { 32: ['n32', 'q64'], 64: ['n64', 'q64'] } as const;
export const SGMAT_MIN_WG = 120;
export const SGMAT_SPLITK_TARGET = 264;
export const SGMAT_SLICE_K = 256;
export const SGMAT_SK_MAX = 8;
/** Partial sums a row at most (slices × OUT): the scratch is planes × the step capacity × OUT, 96 KiB a row here. */
export const SGMAT_PART_COLS = 24576;
/**
 * sk: K slices (split-K); fl: K tiles between accumulator restarts (0: none; the split variant's SGMAT_FLUSH_K);
 * fused: x split into f16 inside the GEMM (no pre-pass; the split with restarts only: the scale is per restart block).
 */
export interface SgmatPlan { m: SubgroupMatrixConfig; t: SgmatTile; sk: number; fl: number; fused: boolean }

/**
 * Whether the split GEMM (with restarts every fl K tiles) splits x itself for K tiles NK in sk slices: FLA_SGMAT_FUSE=0|1
 * forces; by default where every workgroup sums at most SGMAT_FUSE_BLOCKS restart blocks (split-K decode), else the
 * pre-pass (its main loop is faster: longer K ranges pay more than the pre-pass costs).
 */
function fuses(fl: number, NK: number, sk: number): boolean {
  if (!fl) return false;
  const f = knob('FLA_SGMAT_FUSE');
  return f ? f === '1' : Math.ceil(NK / sk) <= SGMAT_FUSE_BLOCKS * fl;
}
/**
 * H200 (2026-12-02, scripts/sgmat_ab.ts, one process, µs a call with every pass; pre-pass / fused): 4096³ w128 1 592 /
 * 2 327 (86.3 / 59.1 TFLOP/s), 512×2048×2048 q128x64k64 322 / 550, 512×2048×8192 1 187 / 2 446, 512×8192×2048 w128
 * 694 / 934; batch-64 decode (n64, K slices): 64×3072×2048 (k8: one block a workgroup) 125 / 113, 64×2048×2048 (k8)
 * 103 / 89, 64×2048×8192 (k8: four blocks) 287 / 278, 64×8192×2048 (k3: three) 252 / 256 (that run's small shapes were
 * ~4× slower than other runs'; the ratios are the measure). The maxima read one block ahead (spread over the K steps)
 * was slower still (4096³ 2 727). llama-1b `fla bench -b 1,64` (one process each): batch 64 6 966 t/s with this
 * default, 4 446 with the pre-pass everywhere, 6 360 fused everywhere (whose pp512 falls: 5 796).
 */
export const SGMAT_FUSE_BLOCKS = 1;

/** The config, tile and split-K count `split` uses on this adapter for R rows × OUT × IN, or null where subgroup matrices cannot run it. */
export function sgmatPlan(c: Ctx, split: boolean, R = 4096, OUT = 4096, IN = 4096, rowsN = true): SgmatPlan | null {
  const A = c.adapter, m = sgmatConfig(A.subgroupMatrix);
  if (!A.f16 || !m || !A.subgroupSize) return null;
  const flush = split && SGMAT_FLUSH_K > 0 && flushOverride !== false;
  const fits = (t: SgmatTile) => sgmatFits(c, m, t, split, flush);
  const flushK = Number(knob('FLA_SGMAT_FLUSH_K') ?? SGMAT_FLUSH_K);
  const fl = (t: SgmatTile) => flush ? Math.max(1, Math.round(flushK / t.BK)) : 0;
  const wgs = (t: SgmatTile) => Math.ceil(R / (t.WM * t.TM * m.M)) * Math.ceil(OUT / (t.WN * t.TN * m.N));
  const area = (t: SgmatTile) => t.WM * t.TM * t.WN * t.TN;   // ties (R or OUT below one tile): the smaller tile
  const maxSk = (t: SgmatTile) => Math.max(1, Math.min(SGMAT_SK_MAX, Math.floor(IN / Math.max(SGMAT_SLICE_K, t.BK)), Math.floor(SGMAT_PART_COLS / OUT)));
  const forced = knob('FLA_SGMAT_SPLITK');
  const skFor = (t: SgmatTile) => !rowsN || R > 65535 ? 1 : forced ? Math.min(Number(forced), Math.ceil(IN / t.BK))
    : wgs(t) >= SGMAT_MIN_WG ? 1 : Math.min(maxSk(t), Math.ceil((R <= 64 ? SGMAT_SPLITK_TARGET : SGMAT_MIN_WG) / wgs(t)));
  const plan = (t: SgmatTile, sk: number): SgmatPlan => {
    return { m, t, sk, fl: fl(t), fused: fuses(fl(t), Math.ceil(IN / t.BK), sk) };
  };
  if (tileOverride) return fits(tileOverride) ? plan(tileOverride, rowsN ? Math.min(splitOverride ?? 1, Math.ceil(IN / tileOverride.BK)) : 1) : null;
  const named = knob('FLA_SGMAT_TILE');
  if (named) { const t = SGMAT_TILES.find(t => t.name === named)!; if (fits(t)) return plan(t, skFor(t)); }
  const byName = (ns: readonly string[]) => ns.map(n => SGMAT_TILES.find(t => t.name === n)!).filter(fits);
  const thin = R <= 64 ? byName(SGMAT_THIN[R <= 32 ? 32 : 64])[0] : undefined;
  const cands = byName(SGMAT_ORDER[flush ? 'flush' : split ? 'split' : 'single']);
  const t = thin ?? cands.find(t => wgs(t) >= SGMAT_MIN_WG) ?? cands.sort((a, b) => wgs(b) - wgs(a) || area(a) - area(b))[0] ?? SGMAT_TILES.find(fits);
  return t ? plan(t, skFor(t)) : null;
}

/** The default f16 variant: 'sgmat' for f16 weights past 16 rows where subgroup matrices run it (unless FLA_TENSOR_CORES=0), else none. */
export function selectF16(c: Ctx, a: MatmulArgs): F16Matmul | null {
  return sgmatByDefault() && a.w?.dtype === 'f16' && rowsOf(a.x, c) >= SGMAT_MIN_ROWS && sgmatPlan(c, true) ? 'sgmat' : null;
}

const sources = new Map<string, Kernel>();

/** matmul_sgmat.wgsl with its `//@ NAME` lines filled for tile t (straight-line code: every matrix a named value). */
export function sgmatKernel(t: SgmatTile, split: boolean, SG: number, m: SubgroupMatrixConfig, WV: boolean, FL = 0, fused = false, XV = false): Kernel {
  if (fused && !(split && FL)) throw new Error('matmul_sgmat: the fused x split needs the split variant with its restarts (FL > 0)');
  const key = `${t.WM},${t.WN},${t.TM},${t.TN},${t.BK},${split},${SG},${m.M}x${m.N}x${m.K},${WV},${FL},${fused},${XV}`;
  let k = sources.get(key);
  if (k) return k;
  const BM = t.WM * t.TM * m.M, BN = t.WN * t.TN * m.N, NT = t.WM * t.WN * SG, RS = NT / (t.BK / 8);
  const LX = BM / RS, LW = BN / RS;
  const I = (n: number) => Array.from({ length: n }, (_, i) => i);
  const acc = (i: number, j: number) => `acc${i}_${j}`, sum = (i: number, j: number) => `s${i}_${j}`, MQ = m.M * m.N / SG;
  const each = <T>(f: (i: number, j: number) => T[]) => I(t.TM).flatMap(i => I(t.TN).flatMap(j => f(i, j)));
  const decl = [
    ...I(LX).flatMap(q => fused ? [`let xo${q} = min(row0 + tr + ${q * RS}u, rows - 1u) * IN;`, `var px${q}: mat2x4<f32>;`, `var sc${q} = 1.0;`]
      : [`let xo${q} = min(row0 + tr + ${q * RS}u, rows - 1u) * XR + tc;`, `var px${q}: vec4<u32>;`, ...(split ? [`var pl${q}: vec4<u32>;`] : [])]),
    ...I(LW).flatMap(q => [`let wn${q} = min(col0 + tr + ${q * RS}u, OUT - 1u);`, `var pw${q}: vec4<u32>;`]),
    ...I(t.TM).flatMap(i => I(t.TN).map(j => `var ${acc(i, j)}: subgroup_matrix_result<f32, SM_N, SM_M>;`)),
    ...(FL ? each((i, j) => [`var ${sum(i, j)}: array<f32, MQ>;`]) : []),
  ];
  const fetch = [
    ...I(LX).flatMap(q => fused ? [`px${q} = xSlot(xo${q}, k0 + 8u * tc, IN);`] : [`px${q} = xq[xo${q} + k0 / 8u];`, ...(split ? [`pl${q} = xq[xo${q} + KH + k0 / 8u];`] : [])]),
    ...I(LW).map(q => `pw${q} = wSlot(wn${q}, k0 + 8u * tc, IN);`),
  ];
  // FUSED: at the first K tile of a restart block, each row's largest |x| over the block (the FL tiles' slots this thread
  // stages, clamped to the last tile: no branches, the loads independent; then over the KS lanes that share the row),
  // its scale s (sc) and 1/s for the flushes and the epilogue (isc; the last flush's barriers finished its readers)
  const KS = t.BK / 8;
  const scan = (b: number) => !fused ? [] : [
    `if ((kt + ${b}u - klo) % ${FL}u == 0u) {`,
    ...I(LX).map(q => `  var mx${q} = 0.0;`),
    ...I(FL).flatMap(i => I(LX).map(q => `  mx${q} = max(mx${q}, absMax(xSlot(xo${q}, min(kt + ${b + i}u, NK - 1u) * BK + 8u * tc, IN)));`)),
    ...I(Math.log2(KS)).flatMap(l => I(LX).map(q => `  mx${q} = max(mx${q}, subgroupShuffleXor(mx${q}, ${1 << l}u));`)),
    ...I(LX).flatMap(q => [`  sc${q} = rowScale(mx${q});`, `  if (tc == 0u) { isc[tr + ${q * RS}u] = 1.0 / sc${q}; }`]),
    '}',
  ];
  const stage = (b: number) => [
    ...scan(b),
    ...I(LX).flatMap(q => fused ? [`{`, `  let hl = splitX(px${q}, sc${q});`, `  xh[${b}u * XB + (tr + ${q * RS}u) * KP + tc] = hl[0];`, `  xl[${b}u * XB + (tr + ${q * RS}u) * KP + tc] = hl[1];`, `}`]
      : [`xh[${b}u * XB + (tr + ${q * RS}u) * KP + tc] = px${q};`, ...(split ? [`xl[${b}u * XB + (tr + ${q * RS}u) * KP + tc] = pl${q};`] : [])]),
    ...I(LW).map(q => `ws[${b}u * WB + (tr + ${q * RS}u) * KP + tc] = pw${q};`),
  ];
  const L = (M: string, arr: string, off: string, layout: string) => `subgroupMatrixLoad<${M}, ${layout}>(&${arr}, ${off}, KP)`;
  const mma = (b: number) => {
    const out: string[] = [];
    const xb = `${b}u * XB + `, wb = `${b}u * WB + `;
    for (let kk = 0; kk < t.BK / m.K; kk++) {
      const s = `${kk * m.K / 8}u`;
      out.push('{');
      for (const j of I(t.TN)) out.push(`  let b${j} = ${L('subgroup_matrix_right<f16, SM_N, SM_K>', 'ws', `${wb}(n0 + ${j * m.N}u) * KP + ${s}`, 'col_major')};`);
      for (const i of I(t.TM)) {
        out.push(`  let a${i} = ${L('subgroup_matrix_left<f16, SM_K, SM_M>', 'xh', `${xb}(m0 + ${i * m.M}u) * KP + ${s}`, 'row_major')};`);
        for (const j of I(t.TN)) out.push(`  ${acc(i, j)} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, ${acc(i, j)});`);
        if (split) {
          out.push(`  let l${i} = ${L('subgroup_matrix_left<f16, SM_K, SM_M>', 'xl', `${xb}(m0 + ${i * m.M}u) * KP + ${s}`, 'row_major')};`);
          for (const j of I(t.TN)) out.push(`  ${acc(i, j)} = subgroupMatrixMultiplyAccumulate(l${i}, b${j}, ${acc(i, j)});`);
        }
      }
      out.push('}');
    }
    return out;
  };
  // every FL K tiles: each accumulator through this subgroup's slice of a workgroup array into its f32 sums (round-to-
  // nearest adds), then restarted; as many at once as arrays hold every subgroup's slice (xh; xl with the split; ws
  // where its W tile is big enough), two barriers a round (DB: no barrier ends the multiply, so one comes first)
  const NB = t.DB ? 2 : 1, slots = t.WM * t.WN * m.M * m.N / 4;
  const places = ['xh', ...(split ? ['xl'] : []), ...(NB * BN * (t.BK / 8 + 1) >= slots ? ['ws'] : [])];
  const mats = each((i, j) => [[i, j] as const]);
  const flush = (b: number) => !FL ? [] : [
    `if ((kt + ${b + 1}u - klo) % ${FL}u == 0u && kt + ${b + 1}u < NK) {`,   // the last: the epilogue adds acc + sums itself
    ...(t.DB ? ['  workgroupBarrier();'] : []),
    ...I(Math.ceil(mats.length / places.length)).flatMap(r => {
      const group = mats.slice(r * places.length, (r + 1) * places.length);
      return [
        ...group.map(([i, j], p) => `  subgroupMatrixStore<row_major>(&${places[p]}, c0, ${acc(i, j)}, SM_N / 4u);`),
        '  workgroupBarrier();',
        ...group.flatMap(([i, j], p) => I(MQ).map(q => `  ${sum(i, j)}[${q}u] += bitcast<f32>(${places[p]}[fq + ${q * SG / 4}u][fr])${fused ? ` * isc[m0 + ${i * m.M}u + (lane + ${q * SG}u) / SM_N]` : ''};`)),
        '  workgroupBarrier();',
        ...group.map(([i, j]) => `  ${acc(i, j)} = subgroup_matrix_result<f32, SM_N, SM_M>();`),
      ];
    }),
    '}',
  ];
  // K tile kt + b: stage it into buffer b, fetch the next one, multiply
  const stepOf = (b: number) => [
    ...stage(b), 'workgroupBarrier();',
    `if (kt + ${b + 1}u < NK) {`, `  k0 = (kt + ${b + 1}u) * BK;`, ...fetch.map(l => '  ' + l), '}',
    ...mma(b), ...(t.DB ? [] : ['workgroupBarrier();']), ...flush(b),
  ];
  const epilogue = each((i, j) => [
    `subgroupMatrixStore<row_major>(&xh, c0, ${acc(i, j)}, SM_N / 4u);`,
    'workgroupBarrier();',
    `emit(c0, lane, row0 + m0 + ${i * m.M}u, m0 + ${i * m.M}u, col0 + n0 + ${j * m.N}u, rows, OUT, XR, g.z, ${FL ? sum(i, j) : 'array<f32, MQ>()'});`,
    'workgroupBarrier();',
  ]);
  const wdecl = [`@group(0) @binding(2) var<storage, read> W: array<${WV ? 'vec4<u32>' : 'u32'}>;`];
  const xdecl = [fused ? `@group(0) @binding(1) var<storage, read> x: array<${XV ? 'vec4<f32>' : 'f32'}>;` : '@group(0) @binding(1) var<storage, read> xq: array<vec4<u32>>;'];
  const gen: Record<string, string[]> = { xdecl, wdecl, decl, fetch, step0: stepOf(0), step1: stepOf(1), epilogue };
  const src = sgmatSrc.replace(/^(\s*)\/\/@ (\w+)\s*$/gm, (_, ind: string, name: string) => {
    const g = gen[name];
    if (!g) throw new Error(`matmul_sgmat.wgsl: no generator for //@ ${name}`);
    return g.map(l => ind + l).join('\n');
  });
  k = kernel('matmul_sgmat', src, fused ? FUSED_BINDINGS : BINDINGS);
  sources.set(key, k);
  return k;
}

/** Activation layout of the pre-pass: KPAD = IN rounded up to 64; a row holds hi (+ lo) as f16 pairs, then 1/s and 3 zero words. */
export function prepLayout(IN: number, split: boolean): { KPAD: number; RW: number } {
  const KPAD = Math.ceil(IN / 64) * 64;
  return { KPAD, RW: (split ? KPAD : KPAD / 2) + 4 };
}

function epilogueDefines(a: MatmulArgs): Record<string, number | boolean> {
  return { ACT: ACT[a.act as Act], HAS_BIAS: a.bias !== null, ACCUM: a.accumulate, ROWS_K: a.x.rows === 'k' };
}

function launches(a: MatmulArgs, c: Ctx, kind: F16Matmul): Launch[] {
  const [OUT, IN] = a.w.shape as [number, number];
  const split = kind === 'sgmat' || kind === 'f16split', R = rowsOf(a.x, c), { KPAD, RW } = prepLayout(IN, split);
  const prep: Launch = {
    kernel: F16_KERNELS.prep, defines: { ROWS_K: a.x.rows === 'k', SPLIT: split }, grid: grid(R),
    bind: { x: a.x, xq: scratch('xq'), dims: u32(IN, RW, KPAD) }, cost: { flops: 0, bytes: 4 * R * (IN + RW) },
  };
  const bind = { xq: scratch('xq'), W: a.w, bias: a.bias, y: a.y };
  const cost = { flops: 2 * R * IN * OUT, bytes: 2 * OUT * IN + 4 * R * (RW + OUT) };
  if (kind === 'f16split' || kind === 'f16single')
    return [prep, { kernel: F16_KERNELS.f16, defines: { ...epilogueDefines(a), ...weightDefines(a.w.dtype), SPLIT: split }, bind: { ...bind, dims: u32(IN, OUT, RW, KPAD) }, cost, grid: [Math.ceil(OUT / 64), Math.ceil(R / 64), 1] }];
  const p = planOf(a, c, split), t = p.t, SG = c.adapter.subgroupSize!, part = scratch(partName(OUT, p.sk));
  const BM = t.WM * t.TM * p.m.M, BN = t.WN * t.TN * p.m.N, XV = IN % 4 === 0;
  // fused: x itself in place of the pre-pass's xq (f32: as many bytes as hi + lo), no pre-pass
  const gemm: Launch = {
    kernel: sgmatKernel(t, split, SG, p.m, IN % 8 === 0, p.fl, p.fused, XV),
    bind: { ...(p.fused ? { x: a.x, W: a.w, bias: a.bias, y: a.y } : bind), ...(p.sk > 1 ? { y: part } : {}), dims: u32(IN, OUT, RW / 4, KPAD / 8) },
    cost: p.fused ? { flops: cost.flops, bytes: 2 * OUT * IN + 4 * R * (IN + OUT) } : cost, grid: [Math.ceil(OUT / BN), Math.ceil(R / BM), p.sk],
    defines: { ...epilogueDefines(a), SPLIT: split, WV: IN % 8 === 0, DB: t.DB, SM_M: p.m.M, SM_N: p.m.N, SM_K: p.m.K, WM: t.WM, WN: t.WN, TM: t.TM, TN: t.TN, BK: t.BK, SG, SPLITK: p.sk > 1,
      FUSED: p.fused, XV, FL: p.fl },   // FL shapes only the generated source, but pipelines are cached by label and defines
  };
  if (p.sk === 1) return p.fused ? [gemm] : [prep, gemm];
  const reduce: Launch = {
    kernel: F16_KERNELS.reduce, defines: { ...epilogueDefines(a), SCALED: p.fused }, grid: [Math.ceil(OUT / 256), R, 1],
    bind: { part, xq: p.fused ? a.x : scratch('xq'), bias: a.bias, y: a.y, dims: u32(OUT, RW, p.sk) }, cost: { flops: 0, bytes: 4 * R * OUT * (p.sk + 1) },
  };
  return p.fused ? [gemm, reduce] : [prep, gemm, reduce];
}

/**
 * `ls` without a pre-pass that repeats one already in `done` (same x, same layout into the same scratch xq): ops that
 * run several matmuls on one x (matmul_multi's split: q, k, v; gate, up) split x into f16 once. x is not written
 * between them (each part writes its own output).
 */
export function sharePrep(done: readonly Launch[], ls: Launch[]): Launch[] {
  const same = (a: Launch, b: Launch) => a.kernel === b.kernel && a.bind.x === b.bind.x && JSON.stringify([a.bind.dims, a.defines, a.grid]) === JSON.stringify([b.bind.dims, b.defines, b.grid]);
  return ls.filter(l => l.kernel !== F16_KERNELS.prep || !done.some(d => same(d, l)));
}

/** The split-K partial sums' scratch, named by its size: ops that run several matmuls (matmul_multi) merge their scratch by name. */
const partName = (OUT: number, sk: number) => `part${sk}x${OUT}`;

function planOf(a: MatmulArgs, c: Ctx, split: boolean): SgmatPlan {
  const [OUT, IN] = a.w.shape as [number, number];
  return sgmatPlan(c, split, rowsOf(a.x, c), OUT, IN, a.x.rows === 'n')!;
}

const variant = (kind: F16Matmul): Variant<MatmulArgs> => ({
  supports: (a, c) => a.w.dtype === 'f16' && c.adapter.f16 && (kind.startsWith('f16') || sgmatPlan(c, kind === 'sgmat') !== null),
  scratch: (a, c): Record<string, ScratchSpec> => {
    const split = kind === 'sgmat' || kind === 'f16split', rows = a.x.rows === 'k' ? 'k' as const : 'n' as const;
    const p = kind.startsWith('sgmat') && sgmatPlan(c, split) ? planOf(a, c, split) : null, sk = p?.sk ?? 1;
    const xq: Record<string, ScratchSpec> = p?.fused ? {} : { xq: { cols: prepLayout(a.w.shape[1]!, split).RW, rows } };
    return sk > 1 ? { ...xq, [partName(a.w.shape[0]!, sk)]: { cols: a.w.shape[0]!, planes: sk, rows } } : xq;
  },
  launches: (a, c) => launches(a, c, kind),
});

export const F16_VARIANTS: Record<F16Matmul, Variant<MatmulArgs>> = {
  sgmat: variant('sgmat'), sgmat_f16: variant('sgmat_f16'), f16split: variant('f16split'), f16single: variant('f16single'),
};
