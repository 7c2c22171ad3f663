// moe_experts op: y += Σ_j w_j · SwiGLU_{e_j}(h) over each token's K routed experts (sel from moe_topk); only the
// chosen experts' weights are read. Variants: 'gemv' for decode-sized steps (moe_gemv_gu fused with SwiGLU, then
// moe_gemv_down summing the K experts into y), 'grouped' for prefill (moe_group sorts the token·expert assignments by
// expert, moe_gemm runs each expert segment's tiles for gate|up and for down, moe_combine weights and adds them).
// FLA_KERNEL_MOE_EXPERTS=gemv|grouped forces one.
// Expert weights are one tensor per layer and projection (gate|up [E, 2I, C]: per expert I gate rows then I up rows;
// down [E, C, I]), bf16/f16/f32 or fp8 with block scales; past the adapter's largest binding they are cut into parts
// of whole experts, one launch per part.
import type { Backend, HostWeight, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, op, scratch, u32, weightDefines, type Ctx, type Launch, type ScratchSpec } from '../lib.ts';
import { moeExpertsRef } from './moe_experts.ref.ts';
import gemvGu from './moe_gemv_gu.wgsl' with { type: 'text' };
import gemvDown from './moe_gemv_down.wgsl' with { type: 'text' };
import groupSrc from './moe_group.wgsl' with { type: 'text' };
import gemmSrc from './moe_gemm.wgsl' with { type: 'text' };
import combineSrc from './moe_combine.wgsl' with { type: 'text' };

export const KERNELS = {
  gemvGu: kernel('moe_gemv_gu', gemvGu, ['step', 'h', 'sel', 'W', 'act', 'dims', 'S']),
  gemvDown: kernel('moe_gemv_down', gemvDown, ['step', 'act', 'sel', 'W', 'y', 'dims', 'S']),
  group: kernel('moe_group', groupSrc, ['step', 'sel', 'grp', 'dims']),
  gemm: kernel('moe_gemm', gemmSrc, ['step', 'A', 'grp', 'W', 'out', 'dims', 'S']),
  combine: kernel('moe_combine', combineSrc, ['step', 'yk', 'sel', 'y', 'dims']),
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

export interface MoeExpertsArgs { h: Tensor; sel: Tensor; w: ExpertWeights; y: Tensor }

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

function gemvShape(c: Ctx, len: number) {
  const TPR = len / 4 >= 256 ? 64 : 32;
  return { TPR, RPW: Math.max(1, Math.min(8, Math.floor(c.adapter.maxInvocations / TPR), 256 / TPR)) };
}

/** u32 words of moe_group's output for n tokens (layout in moe_group.wgsl). */
export function groupWords(n: number, E: number, K: number): number {
  return E + 2 + 2 * (Math.ceil(n * K / BM) + E) + n * K;
}

export function select(c: Ctx): 'gemv' | 'grouped' { return c.step.n <= GEMV_MAX_TOKENS ? 'gemv' : 'grouped'; }

const Kof = (a: MoeExpertsArgs) => a.sel.cols / 2;

export const moeExpertsOp = op<MoeExpertsArgs>({
  name: 'moe_experts',
  check(a) {
    const { E, I, C } = a.w, K = Kof(a);
    if (a.h.cols !== C || a.y.cols !== C || !Number.isInteger(K) || K < 1 || K > E || a.h.rows !== 'n' || a.sel.rows !== 'n' || a.y.rows !== 'n')
      throw new ShapeError(`moe_experts: h of ${a.h.cols} columns, selection of ${a.sel.cols}, output of ${a.y.cols}, for ${E} experts of ${C}→${I}`);
  },
  select: c => select(c),
  variants: {
    gemv: {
      scratch: a => ({ act: { cols: Kof(a) * a.w.I } }),
      launches: (a, c) => {
        const { E, I, C } = a.w, K = Kof(a), N = c.step.n, touched = Math.min(E, N * K), ls: Launch[] = [];
        for (const q of parts(a.w)) {
          const W = a.w.gu[q.p]!, x = partOf(W, C), { TPR, RPW } = gemvShape(c, C), [gx, gy] = grid(Math.ceil(I / RPW));
          ls.push({ kernel: KERNELS.gemvGu, grid: [gx, gy, N * K], defines: { TPR, RPW, ...x.defines },
            bind: { h: a.h, sel: a.sel, W, act: scratch('act'), dims: u32(C, I, K, q.e0, q.n, x.SC, 0, 0, ...x.fq), S: x.S },
            cost: { flops: 4 * N * K * I * C * q.n / E, bytes: touched * q.n / E * 2 * I * C * wbytes(W) + 4 * N * (C + K * I) } });
        }
        for (const q of parts(a.w)) {
          const W = a.w.down[q.p]!, x = partOf(W, I), { TPR, RPW } = gemvShape(c, I), [gx, gy] = grid(Math.ceil(C / RPW));
          ls.push({ kernel: KERNELS.gemvDown, grid: [gx, gy, N], defines: { TPR, RPW, ...x.defines },
            bind: { act: scratch('act'), sel: a.sel, W, y: a.y, dims: u32(C, I, K, q.e0, q.n, x.SC, 0, 0, ...x.fq), S: x.S },
            cost: { flops: 2 * N * K * I * C * q.n / E, bytes: touched * q.n / E * I * C * wbytes(W) + 4 * N * (K * I + 2 * C) } });
        }
        return ls;
      },
    },
    grouped: {
      scratch: (a, c) => {
        const n = Math.max(c.step.n, 1), need = Math.ceil(groupWords(n, a.w.E, Kof(a)) / n);
        return { act: { cols: Kof(a) * a.w.I }, grp: { cols: 2 ** Math.ceil(Math.log2(need)) }, yk: { cols: Kof(a) * a.w.C } } satisfies Record<string, ScratchSpec>;
      },
      launches: (a, c) => {
        const { E, I, C } = a.w, K = Kof(a), N = c.step.n, touched = Math.min(E, N * K);
        const ls: Launch[] = [{ kernel: KERNELS.group, grid: [1, 1, 1], defines: { EMAX }, bind: { sel: a.sel, grp: scratch('grp'), dims: u32(E, K, BM, 0) }, cost: { flops: 0, bytes: 12 * N * K } }];
        for (const [gateUp, ws, IN, OUT] of [[true, a.w.gu, C, I], [false, a.w.down, I, C]] as const) {
          for (const q of parts(a.w)) {
            const W = ws[q.p]!, x = partOf(W, IN);
            ls.push({ kernel: KERNELS.gemm, grid: [Math.ceil(OUT / (gateUp ? 32 : 64)), Math.ceil(N * K / BM) + E, 1], defines: { GATE_UP: gateUp, ...x.defines },
              bind: { A: gateUp ? a.h : scratch('act'), grp: scratch('grp'), W, out: scratch(gateUp ? 'act' : 'yk'), dims: u32(IN, OUT, K, q.e0, q.n, x.SC, E, 0, ...x.fq), S: x.S },
              cost: { flops: (gateUp ? 4 : 2) * N * K * I * C * q.n / E, bytes: touched * q.n / E * (gateUp ? 2 : 1) * I * C * wbytes(W) + 4 * N * K * (IN + OUT) } });
          }
        }
        ls.push({ kernel: KERNELS.combine, grid: grid(Math.ceil(N * C / 256)), bind: { yk: scratch('yk'), sel: a.sel, y: a.y, dims: u32(C, K, 0, 0) }, cost: { flops: 2 * N * K * C, bytes: 4 * N * (K * C + 2 * C) } });
        return ls;
      },
    },
  },
  ref: (a, h) => moeExpertsRef(h.data(a.h), h.data(a.sel), h.data(a.w.gu[0]!), h.data(a.w.down[0]!), h.data(a.y), h.step.ids.length, Kof(a), a.w.C, a.w.I),
});

/** y += routed experts of h ([N, C] 'n' rows) for the selection sel [N, 2K] (moe_topk). */
export function moeExperts(o: Backend, h: Tensor, sel: Tensor, w: ExpertWeights, y: Tensor): Promise<void> {
  return o.run(moeExpertsOp, { h, sel, w, y });
}
