// kv_store and sdpa ops: append this step's keys/values to each slot's cache, then causal GQA attention.
// The cache is stored as f32, f16 or bf16 (`KvDtype`, FLA_KV_CACHE): 16-bit pairs packed in u32 words halve the
// bytes a long-context decode step reads. sdpa has five variants: `flash` (prefill-shaped steps, past
// SPLIT_MAX_LEN tokens: tiles of query rows — tokens × the query heads of a KV head — walk the causal keys in tiles
// held in workgroup memory, online softmax, f32; where its tiles fit the adapter), `flash_sgmat` (flash's two
// products on subgroup matrices, each operand split into f16 hi + lo: f32-grade, 3.9e-7 / 5.4e-7 at D 64 / 128 over
// 512 tokens on an H200; forced only, FLA_KERNEL_SDPA: flash with 16 threads a row group was faster there, 87 vs 107 µs
// at llama-1b's pp512 layer, 250 vs 326 at D 128), `single` (one workgroup per query token and head, online softmax over
// the whole context: short steps over short caches, and the portable fallback), `split` (split-K /
// flash-decoding: each query's context cut into S splits, one workgroup per (token, KV head, split) reading each K/V
// row once for the H/KV query heads that share it, then a combine pass; chosen for decode-shaped steps over a long
// cache; subgroup reductions where the adapter has subgroups) and `split_wg` (the same reducing through workgroup
// memory: the portable fallback).
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { knob } from '../../src/util/knobs.ts';
import { grid, kernel, only, ONLY, op, scratch, shadersOnCpu, u32, uniformOf, type Adapter, type Ctx, type Cursor, type Defines, type Launch } from '../lib.ts';
import { kvStoreRef, sdpaRef, type KvDtype } from './sdpa.ref.ts';
import { sgmatFlashKernel, sgmatFlashPlan } from './sdpa_sgmat.ts';
import sdpaSrc from './sdpa.wgsl' with { type: 'text' };
import splitSrc from './sdpa_split.wgsl' with { type: 'text' };
import splitKpSrc from './sdpa_split_kp.wgsl' with { type: 'text' };
import combineSrc from './sdpa_combine.wgsl' with { type: 'text' };
import flashSrc from './sdpa_flash.wgsl' with { type: 'text' };
import storeSrc from './kv_store.wgsl' with { type: 'text' };
import tileSrc from './sdpa_tile.wgsl' with { type: 'text' };
import treeSrc from './sdpa_tree.wgsl' with { type: 'text' };
import unpackSrc from './sdpa_unpack.wgsl' with { type: 'text' };

/** The WGSL pieces the sdpa kernels share (#include). */
export const SDPA_INCLUDES = { 'sdpa_tile.wgsl': tileSrc, 'sdpa_tree.wgsl': treeSrc, 'sdpa_unpack.wgsl': unpackSrc };

export type { KvDtype };

export const KERNEL = kernel('sdpa', sdpaSrc, ['step', 'stepmeta', 'q', 'kc', 'vc', 'out', 'dims']);
export const SPLIT_KERNEL = kernel('sdpa_split', splitSrc, ['step', 'stepmeta', 'q', 'kc', 'vc', 'part', 'dims']);
export const SPLIT_KP_KERNEL = kernel('sdpa_split_kp', splitKpSrc, ['step', 'stepmeta', 'q', 'kc', 'vc', 'part', 'dims']);
export const FLASH_KERNEL = kernel('sdpa_flash', flashSrc, ['step', 'stepmeta', 'q', 'kc', 'vc', 'out', 'dims']);
export const COMBINE_KERNEL = kernel('sdpa_combine', combineSrc, ['step', 'part', 'out', 'dims']);
export const STORE_KERNEL = kernel('kv_store', storeSrc, ['step', 'stepmeta', 'x', 'cache', 'dims']);

/**
 * The KV-cache storage of this process: FLA_KV_CACHE, else f32 (the 16-bit caches move the fixtures' logits by
 * more than the golden tests' 1e-4: see test/regular/kernels/attention_kv16.test.ts for the measured errors).
 */
export function kvCacheDtype(): KvDtype { return (knob('FLA_KV_CACHE') as KvDtype | undefined) ?? 'f32'; }

/** Per-slot state columns (f32 words) of a cache of ctx rows of KVD values stored as `dt`. */
export function kvCols(ctx: number, KVD: number, dt: KvDtype): number {
  if (dt !== 'f32' && KVD % 2) throw new ShapeError(`kv cache: ${dt} storage needs an even KV·D (got ${KVD})`);
  return dt === 'f32' ? ctx * KVD : ctx * KVD / 2;
}

/** Context rows of a cache tensor of KVD values per row stored as `dt` (the inverse of kvCols). */
export function kvCtx(cache: Tensor, KVD: number, dt: KvDtype): number { return dt === 'f32' ? cache.cols / KVD : 2 * cache.cols / KVD; }

const KVDT = { f32: 1, bf16: 2, f16: 3 } as const;
export function kvDefines(dt: KvDtype): Defines { return { KVDT: KVDT[dt], KV16: dt !== 'f32', KV_F16: dt === 'f16' }; }
const bytesPer = (dt: KvDtype) => (dt === 'f32' ? 4 : 2);

export interface KvStoreArgs { x: Tensor; cache: Tensor; ctx: number; dtype?: KvDtype }

export const kvStoreOp = op<KvStoreArgs>({
  name: 'kv_store',
  check(a) {
    const want = kvCols(a.ctx, a.x.cols, a.dtype ?? 'f32');
    if (a.cache.cols !== want) throw new ShapeError(`kv_store: cache width ${a.cache.cols} ≠ ${want} (ctx ${a.ctx} × ${a.x.cols} as ${a.dtype ?? 'f32'})`);
  },
  select: only(),
  variants: {
    [ONLY]: {
      launches: (a, c) => {
        const dt = a.dtype ?? 'f32', words = dt === 'f32' ? a.x.cols : a.x.cols / 2;
        return [{
          kernel: STORE_KERNEL, grid: grid(Math.ceil(c.step.n * words / 64)), defines: kvDefines(dt),
          cost: { flops: 0, bytes: (4 + bytesPer(dt)) * c.step.n * a.x.cols },
          bind: { x: a.x, cache: a.cache, dims: u32(a.x.cols, a.ctx) },
        }];
      },
    },
  },
  ref: (a, h) => kvStoreRef(h.data(a.x), h.data(a.cache), h.step.cursors, a.x.cols, a.ctx, a.dtype ?? 'f32'),
});

/** cache [slots, ctx·KV·D] ← x [N, KV·D] at each token's position, stored as `dtype` (default: kvCacheDtype()). */
export function kvStore(o: Backend, x: Tensor, cache: Tensor, ctx: number, dtype: KvDtype = kvCacheDtype()): Promise<void> {
  return o.run(kvStoreOp, { x, cache, ctx, dtype });
}

/** FLOPs and bytes of attention for the step's queries: 4·D per (query, key), K and V rows read once per query head group. */
function sdpaCost(cursors: readonly Cursor[], a: SdpaOp) {
  let pairs = 0;
  for (const c of cursors) for (let t = 0; t < c.len; t++) {
    const p = (c.pos ?? 0) + t;
    pairs += a.window ? Math.min(a.window, p + 1) : p + 1;
  }
  return { flops: 4 * a.D * a.H * pairs, bytes: bytesPer(a.kv ?? 'f32') * 2 * a.D * a.KV * pairs + 8 * a.H * a.D * cursors.reduce((n, c) => n + c.len, 0) };
}

export interface SdpaOp { H: number; KV: number; D: number; ctx: number; window?: number; scale?: number; kv?: KvDtype }
export interface SdpaArgs extends SdpaOp { q: Tensor; k: Tensor; v: Tensor; out: Tensor }

function dimsOf(a: SdpaArgs, S: number, RS = 0) {
  const dims = new ArrayBuffer(32);
  new Uint32Array(dims).set([a.H, a.KV, a.D, a.ctx, a.window ?? 0, 0, S, RS]);
  new Float32Array(dims)[5] = a.scale ?? 1 / Math.sqrt(a.D);
  return uniformOf(new Uint32Array(dims));
}

/**
 * Decode-shaped steps (every sequence ≤ SPLIT_MAX_LEN tokens) take `direct` over a cache of at most directMaxCtx
 * rows, `split` over a longer one. The capacity, not the position, decides, so replayed decode steps agree.
 * directMaxCtx: FLA_SDPA_DIRECT_MAX_CTX, else ctx·D ≤ DIRECT_MAX_CTX_D times min(4, n·H / 64) (at least 1): the
 * crossover measured on an H200 (bench_attn --cross, H 32 KV 8, f32 cache, 2026-12-02) was 2048 keys at D 64 and
 * ~1024 at D 128 for one sequence (direct 16.7 / 18.5 µs a layer against split + combine 16.6 / 17.5); at batch 8
 * direct was still ahead at 4096 keys (57 / 130 µs against 94 / 177; D 64 / 128), the longest measured.
 */
export const SPLIT_MAX_LEN = 16;
export const DIRECT_MAX_CTX_D = 1 << 17;
export function directMaxCtx(a: SdpaOp, c: Ctx): number {
  const forced = knob('FLA_SDPA_DIRECT_MAX_CTX');
  if (forced !== undefined) return Number(forced);
  return Math.floor(DIRECT_MAX_CTX_D * Math.min(4, Math.max(1, Math.floor(c.step.n * a.H / 64))) / a.D);
}
const MAX_SPLITS = 512;

/** The split kernel's thread layout (sdpa_split.wgsl's header says what each define does). */
export interface SplitPlan {
  WG: number; TPK: number; UPL: number; U: number; KU: number; SG_RED: boolean;
  /** query heads a lane holds (q, acc and the scores of each in its registers) */
  G: number;
  /** head groups of G query heads a KV head: H / KV / G (the kernel's HG) */
  HG: number;
  /** KV heads a workgroup (1, or all KV: each key's cache row read whole by one workgroup; split only) */
  KW: number;
  /**
   * head groups of one KV head a workgroup runs side by side (split only): key groups of its QS head groups take the
   * same keys in the same subgroup, so each cache row comes from memory once for the KV head's H / KV query heads;
   * HG / QS workgroups a (KV head, split). The kernel's KW is KW · QS head-group slots.
   */
  QS: number;
  /** the end-of-split merge starts inside each subgroup (SGS lanes: the adapter's smallest), with SG_RED, TPK·KW·QS < SGS */
  SG_MERGE: boolean; SGS: number;
  /** the grid's head groups fastest (KH_FAST), else its splits */
  KHF: boolean;
  /** prefetch: the next iteration's K/V loads issued before this one's arithmetic (twice the load registers) */
  PF: boolean;
  /** keys one iteration of a workgroup takes (its splits are multiples of this) */
  KB: number;
  /** workgroup floats: the merge buffer, and the dot products when reducing without subgroups */
  SMF: number;
  /** key-parallel: sdpa_split_kp.wgsl (one key a thread for the scores, one (head, 16-byte unit) for the values) */
  KP: boolean;
}

/**
 * Lanes per key TPK: a power of two, the fewest that hold q's share of a lane (G·D / TPK floats, and as many of
 * acc) in 32 floats, at most 32 and the U 16-byte units of a key row (and, reducing with subgroups, the adapter's
 * smallest subgroup): fewer lanes per key mean fewer shuffle steps and fewer lanes repeating each key's softmax.
 * Each lane takes UPL = ceil(U / TPK) units of KU keys per iteration, KU·UPL·G ≤ 16 (f32 cache) or ≤ 8 with the
 * next iteration's loads prefetched (PF; 16-bit caches), ≥ 1, bounding the registers of the loads in flight and the
 * scores; WG = 64 threads (f32 cache; at least 4 key groups) or 128 (16-bit), fewer where the workgroup memory of
 * the merge would pass 16 KiB.
 * Measured on an H200 at llama-1b's 32 K-context decode (H 32, KV 8, D 64: scripts/bench_attn.ts, µs a layer for
 * split + combine): f32 cache 260 with KU 2 at WG 128 → 105 at WG 64 (KU 1 with PF 115, WG 256 108; TPK 16 200);
 * f16 160 with KU 4 → 90 with KU 2 and PF (bf16 149 → 92); more splits than 512 workgroups' worth were slower.
 * PF is on for the f32 cache too where a lane's loads are at most 4 units (KU·UPL ≤ 4) and the workgroup takes one KV
 * head: 109 → 102 µs there, split alone 103 → 96 (the same process, 2026-12-02); with all 8 KV heads a workgroup
 * (KW 8, 512 splits) 114.9 with it, 101.4 without (one process, one sample each). SG_MERGE (the end-of-split merge through subgroup butterflies first: one
 * state a subgroup through workgroup memory) where the workgroup has more than 16 key groups a head group; below, the shuffles
 * cost more than they save (split at 32 K: 100.1 µs without, 102.6 with).
 * `direct` (one split, one query head a workgroup) takes at least 4 lanes a key and 256 threads: on the H200 at
 * llama-1b's shape and batch 1, 5.0 / 6.8 / 10.6 / 16.7 µs a layer over 128 / 512 / 1024 / 2048 keys, against
 * 5.3 / 14.9 / 33.2 / 63.0 with split's plan (2 lanes, 64 threads) and 9.8 / 10.9 / 12.5 / 16.6 for split + combine.
 * Query heads a lane (G) and head groups side by side (QS): `split` takes splitLaneHeads(a) heads a lane and QS = HG
 * (all the KV head's head groups in one workgroup, WG scaled by QS), unless the tweak says otherwise; `direct` takes
 * the G it is given, QS 1.
 */
export function splitPlan(ad: Adapter, a: SdpaOp, subgroups: boolean, G?: number, direct = false): SplitPlan {
  if (!direct && splitKp(a)) { const p = kpPlan(ad, a, subgroups); if (p) return p; }
  const g = G ?? (direct ? a.H / a.KV : splitLaneHeads(a));
  const HG = a.H / a.KV / g, tw = splitTweak ?? {};
  // head groups side by side: all HG of them (tweak QS where it divides HG); direct: its own head groups, 1
  const QS = direct ? 1 : tw.QS !== undefined && HG % tw.QS === 0 ? tw.QS : HG;
  // KV heads a workgroup: the most up to the wanted number that divide KV and whose plan fits the adapter (with head
  // groups of one KV head across workgroups, QS < HG, one)
  for (let kw = direct || QS < HG ? 1 : Math.min(a.KV, splitKvHeads(a)); kw > 1; kw--) {
    const p = a.KV % kw === 0 ? splitPlanKw(ad, a, subgroups, g, kw, QS) : null;
    if (p) return p;
  }
  for (let qs = QS; qs >= 1; qs--) {   // the most head groups side by side up to QS that divide HG and fit
    const p = HG % qs === 0 ? splitPlanKw(ad, a, subgroups, g, 1, qs, direct) : null;
    if (p) return p;
  }
  throw new Error('sdpa split: no plan fits');   // qs 1 always fits (its WG halves down to one key group)
}

/** `split` key-parallel (sdpa_split_kp.wgsl): the plan tweak's KP, else FLA_SDPA_SPLIT_KP=1. */
function splitKp(_a: SdpaOp): boolean {
  return splitTweak?.KP ?? knob('FLA_SDPA_SPLIT_KP') === '1';
}

/**
 * The key-parallel plan: WG threads (the tweak's WG, else 128; at least the G·D/4 (head, unit) pairs of the value
 * pass, a power of two), a block of WG keys an iteration, KU = 8 V units in flight a thread (the kernel's VB: each
 * thread takes G·D/4 keys of a block in the value pass); null where the adapter's invocations or workgroup memory
 * do not fit it (then the lane plan).
 */
function kpPlan(ad: Adapter, a: SdpaOp, subgroups: boolean): SplitPlan | null {
  const epu = (a.kv ?? 'f32') === 'f32' ? 4 : 8, U = a.D / epu;
  const G = a.H / a.KV, NQ = G * U, SGS = ad.subgroupSize;
  if (a.D % epu) return null;
  let WG = splitTweak?.WG ?? 128;
  while (WG < NQ) WG *= 2;
  const SG_RED = subgroups && ad.subgroups && SGS >= 2 && pow2(SGS) && SGS <= WG;
  const SMF = G * a.D + 2 * G * WG + 4 * (epu / 4) * WG;
  if (WG > ad.maxInvocations || 4 * SMF > ad.maxWorkgroupStorage) return null;
  // KU: the V units a thread has in flight in the value pass (its VB)
  return { WG, TPK: 1, UPL: U, U, G, HG: 1, KU: splitTweak?.KU ?? 8, SG_RED, KW: 1, QS: 1, SG_MERGE: false, SGS: Math.max(1, SGS), KHF: false, PF: false, KB: WG, SMF, KP: true };
}

/**
 * Query heads a lane of `split` holds (G): the plan tweak's G, else FLA_SDPA_SPLIT_LANE_HEADS, else 1 over an f32
 * cache (the HG = H / KV head groups of a KV head side by side in its workgroup, QS) and all H / KV over a 16-bit
 * one; the most up to that which divide H / KV. FLA_SDPA_SPLIT_LANE_HEADS=H/KV (4 at llama-1b) is the plan before:
 * every query head of a KV head in each lane, one head group.
 * Why: with all 4 query heads a lane the f32 kernel was bound by its work per key and query head, not by the bytes
 * (H200, 32 K keys, H 32 KV 8 D 64: split alone 101.5 µs = 1.3 TB/s; 34.5 µs = 3.9 TB/s for the same cache and plan
 * at one query head a KV head).
 */
export function splitLaneHeads(a: SdpaOp): number {
  const GA = a.H / a.KV;
  const want = splitTweak?.G ?? Number(knob('FLA_SDPA_SPLIT_LANE_HEADS') ?? ((a.kv ?? 'f32') === 'f32' ? 1 : GA));
  let g = Math.max(1, Math.min(GA, want));
  while (GA % g) g--;
  return g;
}

/**
 * KV heads a workgroup of `split` wants: the plan tweak's KW, else FLA_SDPA_SPLIT_KV_HEADS, else all of them over a
 * 16-bit cache and one over an f32 cache. Measured on an H200 at llama-1b's 32 K-context decode (bench_attn, one
 * process, µs a layer for split + combine): f16 100.9 → 89.6 with all 8 KV heads a workgroup (split alone 96.0 →
 * 82.3), bf16 98.1 → 90.3 (93.4 → 82.8); `fla bench --ctx 32768` tg64 with an f16 cache 374.4 → 387.4 t/s. The f32
 * cache gains little: without the prefetch (PF, below) and with 512 splits 106.6 / 108.4 → 100.1 / 100.2 (tg64 at
 * 32 K 372.2 / 373.2 → 376.7 / 378.2 t/s, alternating processes), but 142.8 at 128 splits (a batch of 4) against
 * 110.2, so f32 keeps one head a workgroup. What bounds f32 there is the arithmetic per (key, query head), not the
 * bytes nor the 256-byte pieces of the rows: the same caches with G = 1 / 2 / 4 query heads a KV head (the same
 * plan, H 8 / 16 / 32) took 34.5 / 69.5 / 101.5 µs for split alone (3.9 / 1.9 / 1.3 TB/s).
 */
function splitKvHeads(a: SdpaOp): number {
  return splitTweak?.KW ?? Number(knob('FLA_SDPA_SPLIT_KV_HEADS') ?? ((a.kv ?? 'f32') === 'f32' ? 1 : a.KV));
}

const pow2 = (x: number) => x >= 1 && (x & (x - 1)) === 0;

function splitPlanKw(ad: Adapter, a: SdpaOp, subgroups: boolean, G: number, KW: number, QS = 1, direct = false): SplitPlan | null {
  const epu = (a.kv ?? 'f32') === 'f32' ? 4 : 8, U = a.D / epu, tw = splitTweak ?? {};
  const SGS = ad.subgroupSize;
  const SG_RED = subgroups && ad.subgroups && SGS >= 2 && pow2(SGS);
  // the fewest lanes (≥ 2: a 32-byte sector per key) that keep q's share of a lane within 32 floats (G·D / TPK)
  let TPK = tw.TPK ?? 2;
  if (tw.TPK === undefined) while ((TPK < G * a.D / 32 || (direct && TPK < 4)) && TPK * 2 <= Math.min(U, 32)) TPK *= 2;
  while (TPK > 1 && (TPK > U || (SG_RED && TPK > SGS))) TPK /= 2;
  const kv16 = (a.kv ?? 'f32') !== 'f32';
  const UPL = Math.ceil(U / TPK), KU = tw.KU ?? Math.max(1, Math.min(4, Math.floor((kv16 ? 8 : 16) / (UPL * G))));
  const NS = KW * QS;   // head-group slots a workgroup
  let WG = Math.min(tw.WG ?? (direct ? 256 : (kv16 ? 128 : Math.max(64, 4 * TPK)) * QS), ad.maxInvocations);
  // several slots: key groups a multiple of NS (at least one a slot)
  if (NS > 1) WG = Math.max(1, Math.floor(WG / (TPK * NS))) * TPK * NS;
  // the subgroup merge where it has butterflies to do: more than 16 key groups a slot, or several slots (each
  // (subgroup, slot) state through workgroup memory instead of each key group's)
  const SG_MERGE = SG_RED && pow2(TPK * NS) && TPK * NS < SGS && (tw.SGM ?? (NS > 1 || WG / TPK > 16));
  const nm = (wg: number) => (SG_MERGE ? Math.max(1, wg / SGS) * NS : wg / TPK);   // merge slots
  const smf = (wg: number) => Math.max(nm(wg) * a.D, SG_RED ? 1 : wg * KU * G);
  // the merge's workgroup memory: 16 KiB, 32 KiB with several query-head slots (QS > 1: up to 4× the threads)
  const fits = (wg: number) => 4 * (smf(wg) + 2 * nm(wg)) <= Math.min(QS > 1 ? 32768 : 16384, ad.maxWorkgroupStorage);
  while (WG > TPK * NS && !fits(WG)) WG /= 2;
  if (NS > 1 && (WG > ad.maxInvocations || !fits(WG) || (WG / TPK) % NS)) return null;
  // query-head slots: at least 4 key groups each (else fewer slots, more head groups across workgroups)
  if (QS > 1 && tw.WG === undefined && WG / TPK / NS < 4) return null;
  return {
    WG, TPK, UPL, U, G, HG: a.H / a.KV / G, KU, SG_RED, KW, QS, SG_MERGE, SGS: Math.max(1, SGS), KHF: tw.KHF ?? false,
    PF: tw.PF ?? (kv16 || (NS === 1 && KU * UPL <= 4)), KB: (WG / TPK / NS) * KU, SMF: smf(WG), KP: false,
  };
}

/** Plan fields scripts/bench_attn.ts sweeps on the GPU machine (null: the plan above). Not a user setting. */
export type SplitTweak = Partial<Pick<SplitPlan, 'TPK' | 'KU' | 'WG' | 'PF' | 'KHF' | 'KW' | 'G' | 'QS' | 'KP'>> & { SGM?: boolean };
let splitTweak: SplitTweak | null = null;
export function splitPlanOverride(t: SplitTweak | null): void { splitTweak = t; }

/** Workgroups of `split` a (token, split): KV · HG head groups, KW · QS of them a workgroup. */
export const splitGroups = (a: SdpaOp, p: SplitPlan) => a.KV * p.HG / (p.KW * p.QS);

/** Floats of one (token, head) row of the partials: m and l of the S splits (padded to 4), then S·D of acc. */
export function partRow(S: number, D: number): number { return Math.ceil(2 * S / 4) * 4 + S * D; }

/**
 * Splits per query token: enough workgroups (n · KV · S) to fill the card — 512 on a GPU (≥ 2 a multiprocessor on
 * a 132-SM H200, 4 on smaller cards), 16 on a CPU adapter, FLA_SDPA_SPLITS when set — and each split at least two
 * iterations (2·KB keys) of the cache's capacity ctx. Depends on (n, ctx) only, so replayed decode steps agree;
 * splits past a short context's end are empty and cost one early return.
 */
export function splitsOf(a: SdpaArgs | SdpaOp, c: Ctx, p: SplitPlan = splitPlan(c.adapter, a, true)): number {
  const forced = knob('FLA_SDPA_SPLITS');
  const target = shadersOnCpu(c.adapter) ? 16 : 512;
  // several head-group slots a workgroup (KW · QS > 1): the target as 64-thread workgroups' worth of threads; times
  // the HG head groups of a KV head (each lane doing 1 / HG of the work of a lane holding all its query heads)
  const wgs = (p.KW * p.QS > 1 ? Math.max(1, Math.round(target * 64 / p.WG)) : target) * p.HG;
  const want = forced ? Number(forced) : Math.ceil(wgs / (c.step.n * splitGroups(a, p)));
  // the flat partial buffer at an 8192-row capacity (scratch columns are ceil(need / 64))
  const budget = Math.floor(c.adapter.maxBinding / (4 * 128 * c.step.n * a.H * (a.D + 3)));
  return Math.max(1, Math.min(want, Math.ceil(a.ctx / (2 * p.KB)), MAX_SPLITS, budget));
}

/**
 * sdpa_flash's tiles (its header says what each define does): TX threads share a row group of 4 query rows (16
 * where D/4 is a multiple of 16, 8 where of 8, else 4; FLA_SDPA_TX where it divides D/4: on an H200 at llama-1b's
 * pp512, H 32 KV 8, TX 16 took 87 µs a layer at D 64 and 250 at D 128, TX 8 134 and 444); key tiles of BC = 32
 * keys (16 where 32 do not fit); BR query rows a workgroup, the most of 64, 32, 16 up to FLA_SDPA_BR (default 32:
 * twice the workgroups of 64, for the causal imbalance) whose Q, K/V, P and reduction tiles fit the adapter's
 * workgroup memory. null where D is not a multiple of 16 or past 256, or nothing fits: then `single`.
 */
export interface FlashPlan { D4: number; BR: number; BC: number; TX: number; WG: number; KPT: number; DV4: number; RS: number; PSF: number }
export function flashPlan(ad: Adapter, D: number): FlashPlan | null {
  if (D % 16 || D > 256) return null;
  const D4 = D / 4, tx = Number(knob('FLA_SDPA_TX') ?? 0), RS = D4 + 1;
  const TX = tx && D4 % tx === 0 ? tx : D4 % 16 === 0 ? 16 : D4 % 8 === 0 ? 8 : 4;
  const cap = Number(knob('FLA_SDPA_BR') ?? 32);
  for (const BC of [32, 16]) for (const BR of [64, 32, 16]) {
    if (BR > cap || BC < TX) continue;
    const WG = (BR / 4) * TX, PSF = BC + 1;
    const bytes = 4 * (4 * BR * RS + 4 * BC * RS + BR * PSF + BR * TX);
    if (bytes <= ad.maxWorkgroupStorage && WG <= ad.maxInvocations) return { D4, BR, BC, TX, WG, KPT: BC / TX, DV4: D4 / TX, RS, PSF };
  }
  return null;
}

/** Row tiles of BR rows a sequence: the longest sequence's tokens × the G query heads of a KV head. */
const flashTiles = (a: SdpaOp, c: Ctx, p: FlashPlan) => Math.ceil(c.step.maxLen * (a.H / a.KV) / p.BR);

function flashLaunches(a: SdpaArgs, c: Ctx): Launch[] {
  const p = flashPlan(c.adapter, a.D)!, TPS = flashTiles(a, c, p);
  return [{
    kernel: FLASH_KERNEL, grid: grid(c.step.b * TPS * a.KV), cost: sdpaCost(c.step.cursors, a),
    defines: { D4: p.D4, BR: p.BR, BC: p.BC, TX: p.TX, WG: p.WG, KPT: p.KPT, DV4: p.DV4, RS: p.RS, PSF: p.PSF, ...kvDefines(a.kv ?? 'f32') },
    bind: { q: a.q, kc: a.k, vc: a.v, out: a.out, dims: dimsOf(a, TPS) },
  }];
}

/** flash on subgroup matrices (sdpa_sgmat.wgsl): the same tiles' two products as three f16 products each (f32-grade). */
function sgmatLaunches(a: SdpaArgs, c: Ctx): Launch[] {
  const p = sgmatFlashPlan(c.adapter, a.D)!, TPS = Math.ceil(c.step.maxLen * (a.H / a.KV) / p.BR);
  return [{
    kernel: sgmatFlashKernel(a.D, p.BC), grid: grid(c.step.b * TPS * a.KV), cost: sdpaCost(c.step.cursors, a),
    defines: { D: a.D, NS: p.NS, BC: p.BC, ...kvDefines(a.kv ?? 'f32') },
    bind: { q: a.q, kc: a.k, vc: a.v, out: a.out, dims: dimsOf(a, TPS) },
  }];
}

/** The kernel's KW is the plan's head-group slots a workgroup: KW KV heads × QS head groups of each. */
const splitDefines = (p: SplitPlan): Defines =>
  ({ WG: p.WG, TPK: p.TPK, UPL: p.UPL, U: p.U, G: p.G, KU: p.KU, KW: p.KW * p.QS, SMF: p.SMF, SG_RED: p.SG_RED, SG_MERGE: p.SG_MERGE, SGS: p.SGS, KH_FAST: p.KHF, PF: p.PF });

/**
 * `direct`'s query heads a workgroup (a power of two dividing H/KV; FLA_SDPA_DIRECT_HEADS where it divides): the
 * most that keep n·H/GH ≥ DIRECT_WGS workgroups — one head a workgroup (each re-reading its KV head's rows, from
 * the L2 after the first) up to large batches. On an H200 (H 32, KV 8; bench_attn --cross, 2026-12-02) one head
 * was as fast as two at batch 8 and D 64 (20.6 / 21.7 µs at 512 tokens) and faster at D 128 (32.2 / 37.2); all
 * four heads of a KV head a workgroup took twice as long.
 */
export const DIRECT_WGS = 1024;
export function directHeads(a: SdpaOp, c: Ctx): number {
  const G = a.H / a.KV, forced = Number(knob('FLA_SDPA_DIRECT_HEADS') ?? 0);
  if (forced && G % forced === 0) return forced;
  let GH = 1;
  while (GH * 2 <= G && G % (GH * 2) === 0 && c.step.n * a.H / (GH * 2) >= DIRECT_WGS) GH *= 2;
  return GH;
}

/**
 * `direct`: sdpa_split's kernel with one split a query (DIRECT): one workgroup per (token, GH query heads) walks
 * the whole context and writes the attention output — no partials, no combine dispatch.
 */
export function directLaunches(a: SdpaArgs, c: Ctx, subgroups: boolean): Launch[] {
  const GH = directHeads(a, c), p = splitPlan(c.adapter, a, subgroups, GH, true);
  return [{
    kernel: SPLIT_KERNEL, grid: grid(c.step.n * (a.H / GH)), cost: sdpaCost(c.step.cursors, a),
    defines: { ...splitDefines(p), HG: a.H / a.KV / GH, DIRECT: true, ...kvDefines(a.kv ?? 'f32') },
    bind: { q: a.q, kc: a.k, vc: a.v, part: a.out, dims: dimsOf(a, 1, 0) },
  }];
}

/**
 * Threads of a combine workgroup (one per (token, head)): 128, and 256 / 512 from 128 / 256 splits, so the S·D
 * floats of a head's partials (128 KiB at 512 splits of D 64) have as many loads in flight per split as at 64.
 */
export const combineWg = (ad: Adapter, S: number) => Math.min(ad.maxInvocations, S >= 256 ? 512 : S >= 128 ? 256 : 128);

export function splitLaunches(a: SdpaArgs, c: Ctx, subgroups: boolean): Launch[] {
  const p = splitPlan(c.adapter, a, subgroups), S = splitsOf(a, c, p), RS = partRow(S, a.D), dims = dimsOf(a, S, RS);
  const cost = sdpaCost(c.step.cursors, a), part = 4 * c.step.n * a.H * RS;
  return [p.KP ? {
    kernel: SPLIT_KP_KERNEL, grid: grid(c.step.n * a.KV * S), cost: { flops: cost.flops, bytes: cost.bytes + part },
    defines: { WG: p.WG, G: p.G, U: p.U, VB: p.KU, SG_RED: p.SG_RED, SGS: p.SGS, ...kvDefines(a.kv ?? 'f32') },
    bind: { q: a.q, kc: a.k, vc: a.v, part: scratch('part'), dims },
  } : {
    kernel: SPLIT_KERNEL, grid: grid(c.step.n * splitGroups(a, p) * S), cost: { flops: cost.flops, bytes: cost.bytes + part },
    defines: { ...splitDefines(p), HG: p.HG, DIRECT: false, ...kvDefines(a.kv ?? 'f32') },
    bind: { q: a.q, kc: a.k, vc: a.v, part: scratch('part'), dims },
  }, {
    kernel: COMBINE_KERNEL, grid: grid(c.step.n * a.H), defines: { WG: combineWg(c.adapter, S), SMAX: MAX_SPLITS }, cost: { flops: 3 * part / 4, bytes: part + 4 * c.step.n * a.H * a.D },
    bind: { part: scratch('part'), out: a.out, dims },
  }];
}

/** The split variants run 16-byte units of a key row: D a multiple of 4 (f32 cache) or 8 (16-bit), up to 512. */
export const splitSupports = (a: SdpaArgs) => a.D % ((a.kv ?? 'f32') === 'f32' ? 4 : 8) === 0 && a.D <= 512;
// The partials are used as one flat array of n·H·RS floats: the scratch is at least 64 rows deep on the GPU
// backend (its row capacity is a multiple of 64), so ceil(need / 64) columns hold them.
export const splitScratch = (subgroups: boolean) => (a: SdpaArgs, c: Ctx) =>
  ({ part: { cols: Math.ceil(c.step.n * a.H * partRow(splitsOf(a, c, splitPlan(c.adapter, a, subgroups)), a.D) / 64) } });

export const sdpaOp = op<SdpaArgs>({
  name: 'sdpa',
  includes: SDPA_INCLUDES,
  check(a) {
    if (a.H % a.KV || a.q.cols !== a.H * a.D || a.k.cols !== kvCols(a.ctx, a.KV * a.D, a.kv ?? 'f32') || a.v.cols !== a.k.cols)
      throw new ShapeError(`sdpa: bad shapes (H ${a.H}, KV ${a.KV}, D ${a.D}, ctx ${a.ctx}, cache ${a.kv ?? 'f32'} of ${a.k.cols} columns)`);
  },
  select: (c, a) => {
    if (c.step.maxLen <= SPLIT_MAX_LEN && splitSupports(a)) return a.ctx > directMaxCtx(a, c) ? 'split' : 'direct';
    if (c.step.maxLen <= SPLIT_MAX_LEN) return 'single';
    return flashPlan(c.adapter, a.D) ? 'flash' : 'single';
  },
  variants: {
    flash: { supports: (a, c) => flashPlan(c.adapter, a.D) !== null, launches: flashLaunches },
    flash_sgmat: { supports: (a, c) => sgmatFlashPlan(c.adapter, a.D) !== null, launches: sgmatLaunches },
    single: {
      launches: (a, c) => {
        const WG = 64, DPT = Math.ceil(a.D / WG);
        return [{
          kernel: KERNEL, grid: grid(c.step.n * a.H), defines: { WG, DPT, ...kvDefines(a.kv ?? 'f32') }, cost: sdpaCost(c.step.cursors, a),
          bind: { q: a.q, kc: a.k, vc: a.v, out: a.out, dims: dimsOf(a, 0) },
        }];
      },
    },
    direct: { supports: splitSupports, launches: (a, c) => directLaunches(a, c, true) },
    split: { supports: splitSupports, scratch: splitScratch(true), launches: (a, c) => splitLaunches(a, c, true) },
    split_wg: { supports: splitSupports, scratch: splitScratch(false), launches: (a, c) => splitLaunches(a, c, false) },
  },
  ref: (a, h) => sdpaRef(h.data(a.q), h.data(a.k), h.data(a.v), h.data(a.out), h.step.cursors,
    { H: a.H, KV: a.KV, D: a.D, ctx: a.ctx, window: a.window ?? 0, scale: a.scale ?? 1 / Math.sqrt(a.D), kv: a.kv ?? 'f32' }),
});

/** out [N, H·D] = softmax attention of q over the slot caches k, v (stored as a.kv, default kvCacheDtype()). */
export function sdpa(o: Backend, q: Tensor, k: Tensor, v: Tensor, out: Tensor, a: SdpaOp): Promise<void> {
  return o.run(sdpaOp, { kv: kvCacheDtype(), ...a, q, k, v, out });
}
