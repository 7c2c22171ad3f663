// moe_experts op: y += Σ_j w_j · SwiGLU_{e_j}(h) over each token's K routed experts (sel from moe_topk), plus, with a
// shared expert, s · SwiGLU_shared(h) (s = sel's last column, the sigmoid gate); only the chosen experts' weights are
// read. Variants: 'gemv' for decode-sized steps: two launches per layer, moe_gu (gate|up of the K routed experts and
// of the shared expert, SwiGLU fused) and moe_down (every down projection, weighted, summed and added to y), 16-byte
// weight loads and subgroup reductions where the adapter has subgroups; 'gemv_wg' the same reducing through workgroup
// memory (portable; chosen only when forced); 'grouped' for prefill (moe_group sorts the token·expert assignments by
// expert, moe_gemm runs each expert segment's tiles for gate|up and for down, the shared expert as one dense segment,
// moe_combine weights and adds them). With `norm`, h is first RMSNorm(h)·w: in moe_gu's prologue (gemv), by rms_norm
// into norm.h (grouped). FLA_KERNEL_MOE_EXPERTS=gemv|gemv_wg|grouped forces one.
// Given the router's logits instead of a selection, the op routes itself: 'gemv' on adapters with subgroups selects
// each token's top-k inside moe_gu's and moe_down's prologue (moe_route_sg.wgsl: a decode layer's MoE is then the
// router GEMV and these two launches), the other variants launch moe_topk into sel first.
// Expert weights are one tensor per layer and projection (gate|up [E, 2I, C]: per expert I gate rows then I up rows;
// down [E, C, I]), bf16/f16/f32 or fp8 with block scales; past the adapter's largest binding they are cut into parts
// of whole experts, one launch per part.
import type { Backend, HostWeight, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, ONLY, op, scratch, u32, unrollFor, weightDefines, type Ctx, type Host, type Launch, type ScratchSpec, type Variant } from '../lib.ts';
import { knob } from '../../src/util/knobs.ts';
import { rmsNormOp } from '../norm/rms_norm.ts';
import { rmsNormRef } from '../norm/rms_norm.ref.ts';
import { moeExpertsRef } from './moe_experts.ref.ts';
import guSrc from './moe_gu.wgsl' with { type: 'text' };
import downSrc from './moe_down.wgsl' with { type: 'text' };
import unitSrc from './moe_unit.wgsl' with { type: 'text' };
import groupSrc from './moe_group.wgsl' with { type: 'text' };
import gemmSrc from './moe_gemm.wgsl' with { type: 'text' };
import combineSrc from './moe_combine.wgsl' with { type: 'text' };
import routeSrc from './moe_route_sg.wgsl' with { type: 'text' };
import { moeTopkOp, rtK } from './moe_topk.ts';
import { moeTopkRef } from './moe_topk.ref.ts';

export const KERNELS = {
  gu: kernel('moe_gu', guSrc, ['step', 'x', 'sel', 'W', 'Ws', 'act', 'dims', 'S', 'Ss', 'gn']),
  down: kernel('moe_down', downSrc, ['step', 'x', 'sel', 'W', 'Ws', 'y', 'dims', 'S', 'Ss']),
  group: kernel('moe_group', groupSrc, ['step', 'sel', 'grp', 'dims']),
  gemm: kernel('moe_gemm', gemmSrc, ['step', 'A', 'grp', 'W', 'out', 'dims', 'S']),
  combine: kernel('moe_combine', combineSrc, ['step', 'yk', 'ys', 'sel', 'y', 'dims']),
};

/** One layer's routed experts: E experts of intermediate size I over hidden size C, in parts of `per` experts. */
export interface ExpertWeights { E: number; I: number; C: number; per: number; gu: Weight[]; down: Weight[] }

/** Per backend: bytes of all routed-expert tensors and the expert count (fla bench counts what a token really reads). */
export const expertTally = new WeakMap<Backend, { bytes: number; E: number }>();

/** Largest expert count of the grouping kernel (workgroup counters). */
export const EMAX = 1024;
/** Steps of at most this many tokens take the GEMV variant. */
export const GEMV_MAX_TOKENS = 8;
const BM = 64;

const BYTES: Record<HostWeight['dtype'], number> = { f32: 4, bf16: 2, f16: 2, fp8: 1 };

/** Experts [e0, e0 + n) of a host tensor [E, R, C]. */
function sliceExperts(w: HostWeight, e0: number, n: number, R: number, C: number, seed: number): HostWeight {
  const shape = [n, R, C], per = R * C;
  if (w.synthetic) return { shape, dtype: w.dtype, synthetic: { seed: w.synthetic.seed * 4099 + seed, scale: w.synthetic.scale }, fp8Parts: w.fp8Parts };
  if (w.fp8) {
    const srE = w.fp8.scale.length / w.shape[0]!;
    return { shape, dtype: 'fp8', fp8: { ...w.fp8, bytes: w.fp8.bytes.subarray(e0 * per, (e0 + n) * per), scale: w.fp8.scale.subarray(e0 * srE, (e0 + n) * srE) } };
  }
  if (w.bits16) return { shape, dtype: w.dtype, bits16: w.bits16.subarray(e0 * per, (e0 + n) * per) };
  return { shape, dtype: 'f32', f32: w.f32!.subarray(e0 * per, (e0 + n) * per) };
}

/**
 * Upload one layer's experts: gate|up [E, 2I, C] (per expert I gate rows then I up rows) and down [E, C, I], cut into
 * parts that each fit one binding (`maxPartBytes` lowers the limit, for tests).
 */
export function expertWeights(o: Backend, name: string, gu: HostWeight, down: HostWeight, E: number, I: number, C: number, maxPartBytes = Infinity): ExpertWeights {
  if (C % 4 || I % 4) throw new ShapeError(`${name}: experts need hidden (${C}) and intermediate (${I}) sizes divisible by 4`);
  if (E > EMAX) throw new ShapeError(`${name}: ${E} experts, at most ${EMAX}`);
  const maxBytes = Math.min(maxPartBytes, o.adapter.maxBinding);
  const perExpert = 2 * I * C * Math.max(BYTES[gu.dtype], BYTES[down.dtype]);
  const per = o.kind === 'gpu' ? Math.max(1, Math.min(E, Math.floor(maxBytes / perExpert))) : E;
  const out: ExpertWeights = { E, I, C, per, gu: [], down: [] };
  for (let e0 = 0, p = 0; e0 < E; e0 += per, p++) {
    const n = Math.min(per, E - e0);
    out.gu.push(o.weight(`${name}.gate_up[${e0}:${e0 + n}]`, sliceExperts(gu, e0, n, 2 * I, C, 2 * p), true));
    out.down.push(o.weight(`${name}.down[${e0}:${e0 + n}]`, sliceExperts(down, e0, n, C, I, 2 * p + 1), true));
  }
  const t = expertTally.get(o) ?? { bytes: 0, E };
  t.bytes += E * 3 * I * C * BYTES[gu.dtype] + 4 * ((gu.fp8?.scale.length ?? 0) + (down.fp8?.scale.length ?? 0));
  expertTally.set(o, t);
  return out;
}

/** The shared expert (Qwen3-Next): gate|up [2I, C] (I gate rows, then I up rows) and down [C, I], one storage dtype. */
export interface SharedExpert { I: number; gu: Weight; down: Weight }

/** Upload a shared expert from its stacked gate|up [2I, C] and down [C, I] host weights. */
export function sharedExpert(o: Backend, name: string, gu: HostWeight, down: HostWeight, I: number, C: number): SharedExpert {
  if (C % 4 || I % 4) throw new ShapeError(`${name}: the shared expert needs hidden (${C}) and intermediate (${I}) sizes divisible by 4`);
  return { I, gu: o.weight(`${name}.gate_up`, gu, true), down: o.weight(`${name}.down`, down, true) };
}

/**
 * h [N, C] ('n' rows); sel [N, 2K] from moe_topk (with `shared`: [N, 2K + 1], the shared gate last); y [N, C] += the
 * routed experts (and the shared expert times its gate).
 */
export interface MoeExpertsArgs {
  h: Tensor; sel: Tensor; w: ExpertWeights; y: Tensor; k: number; shared: SharedExpert | null;
  /**
   * The router's logits [N, E (+ 1: the shared gate's)]: the op routes itself (softmax top-k, renormalised with
   * normTopk) — inside the fused GEMVs where the adapter has subgroups, else moe_topk into sel first; null: sel
   * holds moe_topk's selection already.
   */
  logits?: Tensor | null; normTopk?: boolean;
  /** h = RMSNorm(h)·norm.w first (f32 weight): in the GEMVs' prologue, or written to norm.h for the grouped GEMM */
  norm: { w: Weight; eps: number; h: Tensor } | null;
}

/** fp8 scale layout of a weight as the kernels' dims: (RP, SRP, BR, SC) and BC. */
function fp8Layout(w: Weight, cols: number): { fq: number[]; bc: number } {
  const f = w.fp8;
  return f ? { fq: [f.rp, Math.ceil(f.rp / f.br), f.br, Math.ceil(cols / f.bc)], bc: f.bc } : { fq: [1, 1, 1, 1], bc: 4 };
}

/** Weight defines (common.wgsl / wquad.wgsl) of a part, with its fp8 scale layout. */
function partOf(w: Weight, cols: number) {
  const f = w.fp8;
  const defines = weightDefines(w.dtype);
  return { defines, S: f ? f.scales : null, SC: f ? Math.ceil(cols / f.bc) : 0, fq: f ? [f.rp, Math.ceil(f.rp / f.br), f.br, f.bc] : [1, 1, 1, 4] };
}

const wbytes = (w: Weight) => BYTES[w.dtype];

function parts(w: ExpertWeights): { e0: number; n: number; p: number }[] {
  return w.gu.map((_, p) => ({ e0: p * w.per, n: Math.min(w.per, w.E - p * w.per), p }));
}

/** u32 words of moe_group's output for n tokens (layout in moe_group.wgsl). */
export function groupWords(n: number, E: number, K: number): number {
  return E + 2 + 2 * (Math.ceil(n * K / BM) + E) + n * K;
}

export function select(c: Ctx): 'gemv' | 'grouped' { return c.step.n <= GEMV_MAX_TOKENS ? 'gemv' : 'grouped'; }

/** Largest top-k (+ 1 for the shared gate) of the fused GEMVs' per-token tables (workgroup memory). */
export const KMAX = 64;
/** Workgroup memory moe_gu may give to its staged input row (XS). */
const XS_BYTES = 16384;
/** Threads a fused GEMV should launch to keep enough loads in flight on a large GPU (132 SMs × 1024). */
const TARGET_THREADS = 1 << 17;
const pow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
const EPU_VEC: Record<HostWeight['dtype'], number> = { f32: 4, bf16: 8, f16: 8, fp8: 16 };

/** Elements per load unit for weights `ws` with rows of `lens` elements: 16 bytes where every row and fp8 block allows. */
function unitOf(ws: Weight[], lens: number[]): { VEC: boolean; EPU: number } {
  const EPU = EPU_VEC[ws[0]!.dtype];
  const VEC = lens.every(n => n % EPU === 0) && ws.every(w => !w.fp8 || w.fp8.bc % EPU === 0);
  return { VEC, EPU: VEC ? EPU : 4 };
}

/** Lanes per output: from 32, widened (split-K) while the grid is small and each lane keeps ≥ 4 units, narrowed on short rows (and to 16 behind a staged row where the grid allows). */
function lanes(WG: number, outputs: number, units: number, staged = false): number {
  let TPR = Math.min(32, WG);
  while (TPR < WG && outputs * TPR < TARGET_THREADS && 4 * TPR <= units) TPR *= 2;
  // a staged input row (moe_gu XS): narrower lane groups where the grid stays large (more rows a workgroup per staging and routing)
  if (staged) while (TPR > 16 && (outputs * TPR) / 2 >= TARGET_THREADS / 2) TPR /= 2;
  const forced = knob('FLA_FP8_LANES');
  if (forced) TPR = Math.min(WG, Number(forced));
  while (TPR > 1 && TPR > units) TPR /= 2;
  return TPR;
}

/**
 * The fused decode launches: one moe_gu and one moe_down per part of the routed experts, the shared expert folded into
 * part 0's (or launched on its own when its dtype or load unit differs). `subgroups`: reduce with subgroup operations
 * where the adapter has them.
 */
function fusedLaunches(a: MoeExpertsArgs, c: Ctx, subgroups: boolean): Launch[] {
  const { E, I, C } = a.w, K = a.k, N = c.step.n, SW = a.sel.cols, sh = a.shared, Ish = sh?.I ?? 0, AW = actCols(K, I, Ish);
  const touched = Math.min(E, N * K), ad = c.adapter, WG = Math.min(Number(knob('FLA_FP8_WG') ?? 256), ad.maxInvocations);
  const SGS = ad.subgroupSize, SG_RED = subgroups && ad.subgroups && SGS > 0 && SGS <= WG && (SGS & (SGS - 1)) === 0;
  const red = { WG, SG_RED, SGS: SG_RED ? SGS : 1, KMAX };
  // what each launch runs: a routed part and/or the shared expert, with one dtype and one load unit
  type Job = { p: number | null; withShared: boolean };
  const jobs: Job[] = parts(a.w).map(q => ({ p: q.p, withShared: false }));
  if (sh) {
    const w0gu = a.w.gu[0]!, w0dn = a.w.down[0]!;
    const fold = sh.gu.dtype === w0gu.dtype && sh.down.dtype === w0dn.dtype
      && unitOf([w0gu, sh.gu], [C]).VEC === unitOf([w0gu], [C]).VEC && unitOf([w0dn, sh.down], [I, Ish]).VEC === unitOf([w0dn], [I]).VEC;
    if (fold) jobs[0]!.withShared = true;
    else jobs.push({ p: null, withShared: true });
  }
  const ls: Launch[] = [];
  // routing: in the GEMVs' prologue (subgroups), else moe_topk first
  const route = !!a.logits && SG_RED && WG >= 64 && EMAX % WG === 0;
  // moe_down takes moe_gu's selection (act's last columns) unless FLA_MOE_DOWN_ROUTE=self has it route again
  const routeOnce = route && knob('FLA_MOE_DOWN_ROUTE') !== 'self';
  // moe_gu stages each workgroup's token row in workgroup memory where it fits (FLA_FP8_XS=0: read by every lane group)
  const xs = knob('FLA_FP8_XS') !== '0' && 4 * C <= Math.min(XS_BYTES, ad.maxWorkgroupStorage / 2);
  if (a.logits && !route) ls.push(...topkLaunches(a, c));
  const SWb = route ? a.logits!.cols : SW;
  for (const down of [false, true]) {
    for (const j of jobs) {
      const q = j.p === null ? null : parts(a.w)[j.p]!;
      const Wr = q ? (down ? a.w.down : a.w.gu)[q.p]! : null, Ws = j.withShared ? (down ? sh!.down : sh!.gu) : null;
      const ws = [Wr, Ws].filter((w): w is Weight => w !== null);
      const IN = down ? [...(Wr ? [I] : []), ...(Ws ? [Ish] : [])] : [C];
      const { VEC, EPU } = unitOf(ws, IN);
      const lr = Wr ? fp8Layout(Wr, down ? I : C) : { fq: [1, 1, 1, 1], bc: 4 }, lsh = Ws ? fp8Layout(Ws, down ? Ish : C) : { fq: [1, 1, 1, 1], bc: 4 };
      const Ur = (down ? I : C) / EPU, Us = (down ? Ish : C) / EPU;
      const nR = q ? q.n : 0, readRows = q ? touched * q.n / E : 0;
      const defines: Record<string, number | boolean> = { ...weightDefines(ws[0]!.dtype), WDT: 0, ...red, VEC, UNROLL: Number(knob('FLA_MOE_UNROLL') ?? unrollFor(ad, 4)), ROUTED: q !== null, SHARED: Ws !== null,
        NORM: !down && !!a.norm, WSR: down ? 1 : 2, MOE_GEMV: true, NORM_TOPK: !!a.normTopk, EMAX, RT_K: rtK(K),
        ...(down ? { ROUTE: route && !routeOnce, ROUTE_IN: routeOnce, SEL_IN: !route } : { ROUTE: route, ROUTE_OUT: routeOnce, XS: xs, XQ: C / 4 }) };
      let TPR: number, grid3: [number, number, number], cost: Launch['cost'];
      if (!down) {
        const rows = Math.max(q ? I : 0, Ws ? Ish : 0), outs = N * ((q ? K * I : 0) + (Ws ? Ish : 0));
        TPR = lanes(WG, outs, Ur, xs);
        const [gx, gy] = grid(Math.ceil(rows / (WG / TPR)));
        grid3 = [gx, gy, (q ? N * K : 0) + (Ws ? N : 0)];
        cost = { flops: 4 * N * ((q ? K * I * nR / E : 0) + Ish) * C, bytes: (readRows * 2 * I + (Ws ? 2 * Ish : 0)) * C * wbytes(ws[0]!) + 4 * N * (C + AW) };
      } else {
        TPR = lanes(WG, N * C, (q ? K * Ur : 0) + (Ws ? Us : 0));
        const [gx, gy] = grid(Math.ceil(C / (WG / TPR)));
        grid3 = [gx, gy, N];
        cost = { flops: 2 * N * ((q ? K * I * nR / E : 0) + Ish) * C, bytes: (readRows * I + (Ws ? Ish : 0)) * C * wbytes(ws[0]!) + 4 * N * (AW + 2 * C) };
      }
      const eps = new Uint32Array(new Float32Array([a.norm?.eps ?? 0]).buffer)[0]!;
      // fp8 scale columns: a shift by log2(units per block) where both sets' blocks hold a power of two of units
      const COL_POW2 = ws.every(w => w.fp8 && pow2(w.fp8.bc / EPU)), col = (l: { bc: number }) => COL_POW2 ? Math.log2(l.bc / EPU) : l.bc;
      defines.COL_POW2 = COL_POW2;
      defines.ROW_FAST = down && Wr?.fp8?.rp === C;   // one scale part per expert: moe_down's per-expert scale offsets
      const dims = u32(C, I, K, q ? q.e0 : 0, nR, SWb, Ish, AW, ...lr.fq, ...lsh.fq, col(Wr ? lr : lsh), col(Ws ? lsh : lr), TPR, down ? 0 : eps, Ur, Us, E, 0);
      const sel = route ? a.logits! : a.sel;
      ls.push({ kernel: down ? KERNELS.down : KERNELS.gu, grid: grid3, defines, cost,
        bind: down ? { x: scratch('act'), sel, W: Wr, Ws, y: a.y, dims, S: Wr?.fp8?.scales ?? null, Ss: Ws?.fp8?.scales ?? null }
          : { x: a.h, sel, W: Wr, Ws, act: scratch('act'), dims, S: Wr?.fp8?.scales ?? null, Ss: Ws?.fp8?.scales ?? null, gn: a.norm?.w ?? null } });
    }
  }
  return ls;
}

/** moe_topk's launches writing sel from the logits (where the op routes and the GEMVs cannot). */
function topkLaunches(a: MoeExpertsArgs, c: Ctx): Launch[] {
  const t = { logits: a.logits!, sel: a.sel, k: a.k, norm: !!a.normTopk, shared: a.shared !== null };
  return moeTopkOp.variants[moeTopkOp.select(c, t)]!.launches(t, c);
}

/** Columns of the fused GEMVs' act rows: the K routed and the shared SwiGLU outputs, then moe_gu's selection (2K + 1, padded to 4). */
const actCols = (K: number, I: number, Ish: number) => K * I + Ish + 4 * Math.ceil((2 * K + 1) / 4);

const fused = (subgroups: boolean): Variant<MoeExpertsArgs> => ({
  scratch: a => ({ act: { cols: actCols(a.k, a.w.I, a.shared?.I ?? 0) } }),
  launches: (a, c) => fusedLaunches(a, c, subgroups),
});

export const moeExpertsOp = op<MoeExpertsArgs>({
  name: 'moe_experts',
  includes: { 'moe_unit.wgsl': unitSrc, 'moe_route_sg.wgsl': routeSrc },
  check(a) {
    const { E, I, C } = a.w, K = a.k, SW = 2 * K + (a.shared ? 1 : 0);
    if (a.h.cols !== C || a.y.cols !== C || a.sel.cols !== SW || !Number.isInteger(K) || K < 1 || K > E || K + 1 > KMAX || a.h.rows !== 'n' || a.sel.rows !== 'n' || a.y.rows !== 'n')
      throw new ShapeError(`moe_experts: h of ${a.h.cols} columns, selection of ${a.sel.cols} (expected ${SW}), output of ${a.y.cols}, for top-${K} (at most ${KMAX - 1}) of ${E} experts of ${C}→${I}`);
    if (a.logits && (a.logits.cols !== E + (a.shared ? 1 : 0) || a.logits.rows !== 'n'))
      throw new ShapeError(`moe_experts: router logits of ${a.logits.cols} columns, expected ${E + (a.shared ? 1 : 0)} (${E} experts${a.shared ? ' and the shared gate' : ''})`);
    if (a.norm && (a.norm.w.dtype !== 'f32' || a.norm.w.shape[0] !== C || a.norm.h.cols !== C || a.norm.h.rows !== 'n'))
      throw new ShapeError(`moe_experts: norm weight [${a.norm.w.shape}] ${a.norm.w.dtype} and normed rows of ${a.norm.h.cols} columns, expected f32 [${C}] and ${C}`);
    if (a.shared && (a.shared.gu.shape.join() !== `${2 * a.shared.I},${C}` || a.shared.down.shape.join() !== `${C},${a.shared.I}`))
      throw new ShapeError(`moe_experts: shared expert gate|up [${a.shared.gu.shape}] and down [${a.shared.down.shape}], expected [${2 * a.shared.I}, ${C}] and [${C}, ${a.shared.I}]`);
  },
  select: c => select(c),
  variants: {
    gemv: fused(true),
    gemv_wg: fused(false),
    grouped: {
      scratch: (a, c) => {
        const n = Math.max(c.step.n, 1), need = Math.ceil(groupWords(n, a.w.E, a.k) / n), Ish = a.shared?.I ?? 0;
        return { act: { cols: a.k * a.w.I }, grp: { cols: 2 ** Math.ceil(Math.log2(need)) }, yk: { cols: a.k * a.w.C },
          acts: { cols: Math.max(Ish, 4) }, ys: { cols: a.shared ? a.w.C : 4 } } satisfies Record<string, ScratchSpec>;
      },
      launches: (a, c) => {
        const { E, I, C } = a.w, K = a.k, N = c.step.n, touched = Math.min(E, N * K), SW = a.sel.cols, sh = a.shared;
        const ls: Launch[] = a.logits ? topkLaunches(a, c) : [];
        if (a.norm) ls.push(...rmsNormOp.variants[ONLY]!.launches({ x: a.h, w: a.norm.w, g: null, y: a.norm.h, C, G: 1, eps: a.norm.eps, plusOne: false }, c));
        const hin = a.norm ? a.norm.h : a.h;
        ls.push({ kernel: KERNELS.group, grid: [1, 1, 1], defines: { EMAX }, bind: { sel: a.sel, grp: scratch('grp'), dims: u32(E, K, BM, SW) }, cost: { flops: 0, bytes: 12 * N * K } });
        for (const [gateUp, ws, IN, OUT] of [[true, a.w.gu, C, I], [false, a.w.down, I, C]] as const) {
          for (const q of parts(a.w)) {
            const W = ws[q.p]!, x = partOf(W, IN);
            ls.push({ kernel: KERNELS.gemm, grid: [Math.ceil(OUT / (gateUp ? 32 : 64)), Math.ceil(N * K / BM) + E, 1], defines: { GATE_UP: gateUp, DENSE: false, ...x.defines },
              bind: { A: gateUp ? hin : scratch('act'), grp: scratch('grp'), W, out: scratch(gateUp ? 'act' : 'yk'), dims: u32(IN, OUT, K, q.e0, q.n, x.SC, E, 0, ...x.fq), S: x.S },
              cost: { flops: (gateUp ? 4 : 2) * N * K * I * C * q.n / E, bytes: touched * q.n / E * (gateUp ? 2 : 1) * I * C * wbytes(W) + 4 * N * K * (IN + OUT) } });
          }
          if (sh) {
            // the shared expert: every token, as one dense expert
            const W = gateUp ? sh.gu : sh.down, IN2 = gateUp ? C : sh.I, OUT2 = gateUp ? sh.I : C, x = partOf(W, IN2);
            ls.push({ kernel: KERNELS.gemm, grid: [Math.ceil(OUT2 / (gateUp ? 32 : 64)), Math.ceil(N / BM), 1], defines: { GATE_UP: gateUp, DENSE: true, ...x.defines },
              bind: { A: gateUp ? hin : scratch('acts'), grp: null, W, out: scratch(gateUp ? 'acts' : 'ys'), dims: u32(IN2, OUT2, 1, 0, 1, x.SC, 1, 0, ...x.fq), S: x.S },
              cost: { flops: (gateUp ? 4 : 2) * N * sh.I * C, bytes: (gateUp ? 2 : 1) * sh.I * C * wbytes(W) + 4 * N * (IN2 + OUT2) } });
          }
        }
        ls.push({ kernel: KERNELS.combine, grid: grid(Math.ceil(N * C / 256)), defines: { SHARED: sh !== null },
          bind: { yk: scratch('yk'), ys: sh ? scratch('ys') : null, sel: a.sel, y: a.y, dims: u32(C, K, SW, 0) }, cost: { flops: 2 * N * (K + 1) * C, bytes: 4 * N * ((K + 1) * C + 2 * C) } });
        return ls;
      },
    },
  },
  ref: (a, h) => {
    if (a.logits) moeTopkRef(h.data(a.logits), h.data(a.sel), h.step.ids.length, a.w.E, a.k, !!a.normTopk, a.shared !== null);
    refExperts(a, h);
  },
});

const refExperts = (a: MoeExpertsArgs, h: Host) => moeExpertsRef(a.norm ? normed(a, h) : h.data(a.h), h.data(a.sel), h.data(a.w.gu[0]!), h.data(a.w.down[0]!), h.data(a.y), h.step.ids.length, a.k, a.w.C, a.w.I,
    a.sel.cols, a.shared ? { gu: h.data(a.shared.gu), down: h.data(a.shared.down), I: a.shared.I } : null);

/** The CPU reference's normed rows (into norm.h). */
function normed(a: MoeExpertsArgs, h: Host): Float32Array {
  const out = h.data(a.norm!.h);
  rmsNormRef(h.data(a.h), h.data(a.norm!.w), out, h.cap(a.h), a.w.C, { eps: a.norm!.eps });
  return out;
}

/**
 * y += the routed experts of h ([N, C] 'n' rows) for the top-k selection sel (moe_topk), and with `shared` the shared
 * expert times its gate (sel's last column).
 */
export function moeExperts(o: Backend, h: Tensor, sel: Tensor, w: ExpertWeights, y: Tensor, k: number, shared: SharedExpert | null = null,
  norm: MoeExpertsArgs['norm'] = null, route: { logits: Tensor; normTopk: boolean } | null = null): Promise<void> {
  return o.run(moeExpertsOp, { h, sel, w, y, k, shared, norm, logits: route?.logits ?? null, normTopk: route?.normTopk ?? false });
}
