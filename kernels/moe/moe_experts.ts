// moe_experts op: y += Σ_j w_j · SwiGLU_{e_j}(h) over each token's K routed experts (sel from moe_topk); only the
// chosen experts' weights are read. Variants (select): 'gemv' for decode-sized steps (moe_gemv_gu fused with SwiGLU,
// then moe_gemv_down summing the K experts into y), 'grouped' for prefill (moe_group sorts the token·expert
// assignments by expert, moe_gemm runs each expert's segment tiles for gate|up and for down, moe_combine weights and
// adds them). FLA_KERNEL_MOE=gemv|grouped forces one.
// Expert weights are one tensor per layer and projection (gate|up [E, 2I, C], down [E, C, I]), bf16/f16/f32 or fp8
// with block scales; past the adapter's largest binding they are cut into parts of whole experts, one dispatch each.
import type { Backend, HostWeight, Tensor, Weight } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import type { Binding, Dispatch, Gpu } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, weightDefines, type StepCtx, type View, type WeightDtype } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { moeExpertsRef } from './moe_experts.ref.ts';
import wquad from './wquad.wgsl' with { type: 'text' };
import gemvGu from './moe_gemv_gu.wgsl' with { type: 'text' };
import gemvDown from './moe_gemv_down.wgsl' with { type: 'text' };
import groupSrc from './moe_group.wgsl' with { type: 'text' };
import gemmSrc from './moe_gemm.wgsl' with { type: 'text' };
import combineSrc from './moe_combine.wgsl' with { type: 'text' };

/** One layer's routed experts: E experts of intermediate size I over hidden size C, in parts of `per` experts. */
export interface ExpertWeights { E: number; I: number; C: number; per: number; gu: Weight[]; down: Weight[] }

/** Per backend: bytes of all routed-expert tensors and the expert count (fla bench counts what a token really reads). */
export const expertTally = new WeakMap<Backend, { bytes: number; E: number }>();

/** Largest expert count of the grouping kernel (workgroup counters). */
export const EMAX = 1024;
/** Steps of at most this many tokens take the GEMV variant. */
export const GEMV_MAX_TOKENS = 8;
const BM = 64;

export type MoeKernel = 'gemv' | 'grouped';

export function select(rows: number): MoeKernel {
  const forced = process.env.FLA_KERNEL_MOE;
  if (forced === 'gemv' || forced === 'grouped') return forced;
  if (forced !== undefined && forced !== '') throw new ShapeError(`FLA_KERNEL_MOE=${forced}: expected gemv or grouped`);
  return rows <= GEMV_MAX_TOKENS ? 'gemv' : 'grouped';
}

const BYTES: Record<HostWeight['dtype'], number> = { f32: 4, bf16: 2, f16: 2, fp8: 1 };

/** Experts [e0, e0 + n) of a host tensor [E, R, C] (rp: rows per fp8 scale part). */
function sliceExperts(w: HostWeight, e0: number, n: number, R: number, C: number, seed: number): HostWeight {
  const shape = [n, R, C], per = R * C;
  if (w.synthetic) return { shape, dtype: w.dtype, synthetic: { seed: w.synthetic.seed * 4099 + seed, scale: w.synthetic.scale }, fp8Parts: w.fp8Parts };
  if (w.fp8) {
    const srE = w.fp8.scale.length / (w.shape[0]! * 1);
    return { shape, dtype: 'fp8', fp8: { ...w.fp8, bytes: w.fp8.bytes.subarray(e0 * per, (e0 + n) * per), scale: w.fp8.scale.subarray(e0 * srE, (e0 + n) * srE) } };
  }
  if (w.bits16) return { shape, dtype: w.dtype, bits16: w.bits16.subarray(e0 * per, (e0 + n) * per) };
  return { shape, dtype: 'f32', f32: w.f32!.subarray(e0 * per, (e0 + n) * per) };
}

/**
 * Upload one layer's experts: gate|up [E, 2I, C] (per expert I gate rows then I up rows) and down [E, C, I]
 * (fp8 scale parts: rp = I and rp = C), cut into parts that each fit one binding.
 */
export function expertWeights(o: Backend, name: string, gu: HostWeight, down: HostWeight, E: number, I: number, C: number, maxPartBytes = Infinity): ExpertWeights {
  if (C % 4 || I % 4) throw new ShapeError(`${name}: experts need hidden (${C}) and intermediate (${I}) sizes divisible by 4`);
  if (E > EMAX) throw new ShapeError(`${name}: ${E} experts, at most ${EMAX}`);
  const maxBytes = Math.min(maxPartBytes, o instanceof GpuBackend ? o.gpu.maxBinding : Infinity);
  const perExpert = 2 * I * C * Math.max(BYTES[gu.dtype], BYTES[down.dtype]);
  const per = o instanceof GpuBackend ? Math.max(1, Math.min(E, Math.floor(maxBytes / perExpert))) : E;
  const out: ExpertWeights = { E, I, C, per, gu: [], down: [] };
  const t = expertTally.get(o) ?? { bytes: 0, E };
  t.bytes += E * 3 * I * C * BYTES[gu.dtype] + (gu.fp8 ? 4 * (gu.fp8.scale.length + (down.fp8?.scale.length ?? 0)) : 0);
  expertTally.set(o, t);
  for (let e0 = 0, p = 0; e0 < E; e0 += per, p++) {
    const n = Math.min(per, E - e0);
    out.gu.push(o.weight(`${name}.gate_up[${e0}:${e0 + n}]`, sliceExperts(gu, e0, n, 2 * I, C, 2 * p), true));
    out.down.push(o.weight(`${name}.down[${e0}:${e0 + n}]`, sliceExperts(down, e0, n, C, I, 2 * p + 1), true));
  }
  return out;
}

interface PartArgs { W: View; wdtype: WeightDtype; scale: View | null; fq: [number, number, number, number]; SC: number; E0: number; EP: number }

function part(o: GpuBackend, w: Weight, e0: number, n: number, cols: number): PartArgs {
  const f = o.weightFp8(w);
  return {
    W: o.weightView(w), wdtype: o.weightDtype(w), scale: f ? f.scale : null, E0: e0, EP: n,
    fq: f ? [f.rp, Math.ceil(f.rp / f.br), f.br, f.bc] : [1, 1, 1, 4], SC: f ? Math.ceil(cols / f.bc) : 0,
  };
}

function dimsOf(gpu: Gpu, a: PartArgs, x0: number, x1: number, K: number, extra = 0): GPUBuffer {
  return gpu.uniform(new Uint32Array([x0, x1, K, a.E0, a.EP, a.SC, extra, 0, ...a.fq]));
}

function withScale(entries: Binding[], a: PartArgs): Binding[] {
  return a.scale ? [...entries, binding(a.scale)] : entries;
}

function gemvShape(gpu: Gpu, len: number) {
  const TPR = len / 4 >= 256 ? 64 : 32;
  return { TPR, RPW: Math.max(1, Math.min(8, Math.floor(gpu.maxInvocations / TPR), 256 / TPR)) };
}

export function buildGemvGu(gpu: Gpu, s: StepCtx, h: View, sel: View, act: View, a: PartArgs, K: number, C: number, I: number): Promise<Dispatch> {
  const { TPR, RPW } = gemvShape(gpu, C);
  const [x, y] = grid(Math.ceil(I / RPW));
  return dispatch(gpu, { label: 'moe_gemv_gu', source: wquad + gemvGu, defines: { TPR, RPW, ...weightDefines(a.wdtype) } },
    withScale([{ buffer: s.uniform }, binding(h), binding(sel), binding(a.W), binding(act), { buffer: dimsOf(gpu, a, C, I, K) }], a), [x, y, s.n * K]);
}

export function buildGemvDown(gpu: Gpu, s: StepCtx, act: View, sel: View, y: View, a: PartArgs, K: number, C: number, I: number): Promise<Dispatch> {
  const { TPR, RPW } = gemvShape(gpu, I);
  const [gx, gy] = grid(Math.ceil(C / RPW));
  return dispatch(gpu, { label: 'moe_gemv_down', source: wquad + gemvDown, defines: { TPR, RPW, ...weightDefines(a.wdtype) } },
    withScale([{ buffer: s.uniform }, binding(act), binding(sel), binding(a.W), binding(y), { buffer: dimsOf(gpu, a, C, I, K) }], a), [gx, gy, s.n]);
}

/** u32 words of moe_group's output for n tokens (layout in moe_group.wgsl). */
export function groupWords(n: number, E: number, K: number): number {
  return E + 2 + 2 * (Math.ceil(n * K / BM) + E) + n * K;
}

export function buildGroup(gpu: Gpu, s: StepCtx, sel: View, grp: View, E: number, K: number): Promise<Dispatch> {
  return dispatch(gpu, { label: 'moe_group', source: groupSrc, defines: { EMAX } },
    [{ buffer: s.uniform }, binding(sel), binding(grp), { buffer: gpu.uniform(new Uint32Array([E, K, BM, 0])) }], [1, 1, 1]);
}

export function buildGemm(gpu: Gpu, s: StepCtx, A: View, grp: View, out: View, a: PartArgs, gateUp: boolean, K: number, E: number, IN: number, OUT: number): Promise<Dispatch> {
  const BN = gateUp ? 32 : 64;
  return dispatch(gpu, { label: gateUp ? 'moe_gemm_gu' : 'moe_gemm_down', source: wquad + gemmSrc.replace('fn moe_gemm(', `fn ${gateUp ? 'moe_gemm_gu' : 'moe_gemm_down'}(`), defines: { GATE_UP: gateUp, ...weightDefines(a.wdtype) } },
    withScale([{ buffer: s.uniform }, binding(A), binding(grp), binding(a.W), binding(out), { buffer: dimsOf(gpu, a, IN, OUT, K, E) }], a),
    [Math.ceil(OUT / BN), Math.ceil(s.n * K / BM) + E, 1]);
}

export function buildCombine(gpu: Gpu, s: StepCtx, yk: View, sel: View, y: View, C: number, K: number): Promise<Dispatch> {
  return dispatch(gpu, { label: 'moe_combine', source: combineSrc },
    [{ buffer: s.uniform }, binding(yk), binding(sel), binding(y), { buffer: gpu.uniform(new Uint32Array([C, K, 0, 0])) }], grid(Math.ceil(s.n * C / 256)));
}

function wbytes(o: GpuBackend, w: Weight): number {
  const d = o.weightDtype(w);
  return d === 'f32' ? 4 : d === 'fp8' ? 1 : 2;
}

/** y += routed experts of h ([N, C] 'n' rows) for the selection sel [N, 2K] (moe_topk). */
export async function moeExperts(o: Backend, h: Tensor, sel: Tensor, w: ExpertWeights, y: Tensor): Promise<void> {
  const { E, I, C } = w, K = sel.cols / 2;
  if (h.cols !== C || y.cols !== C || !Number.isInteger(K) || K < 1 || K > E || h.rows !== 'n' || sel.rows !== 'n' || y.rows !== 'n')
    throw new ShapeError(`moe_experts: h of ${h.cols} columns, selection of ${sel.cols}, output of ${y.cols}, for ${E} experts of ${C}→${I}`);
  if (!(o instanceof GpuBackend)) {
    const c = o as CpuBackend;
    moeExpertsRef(c.data(h), c.data(sel), c.weightData(w.gu[0]!), c.weightData(w.down[0]!), c.data(y), c.step.ids.length, K, C, I);
    return;
  }
  const s = o.step, N = s.n;
  const parts = w.gu.map((_, p) => ({ e0: p * w.per, n: Math.min(w.per, E - p * w.per) }));
  const gu = parts.map((q, p) => part(o, w.gu[p]!, q.e0, q.n, C)), dn = parts.map((q, p) => part(o, w.down[p]!, q.e0, q.n, I));
  const act = o.act('moe_act', K * I), vh = o.view(h), vs = o.view(sel), vy = o.view(y), va = o.view(act);
  const wb = wbytes(o, w.gu[0]!);
  if (select(N) === 'gemv') {
    // bytes: the weights of the experts the step reads (at most N·K distinct), counted as N·K
    const touched = Math.min(E, N * K);
    for (const a of gu) o.push(await buildGemvGu(o.gpu, s, vh, vs, va, a, K, C, I), { flops: 4 * N * K * I * C, bytes: touched * 2 * I * C * wb / gu.length + 4 * N * (C + K * I) });
    for (const a of dn) o.push(await buildGemvDown(o.gpu, s, va, vs, vy, a, K, C, I), { flops: 2 * N * K * I * C, bytes: touched * I * C * wb / dn.length + 4 * N * (K * I + 2 * C) });
    return;
  }
  const cols = Math.ceil(groupWords(s.cap, E, K) / s.cap);
  const grp = o.view(o.act('moe_grp', cols)), yk = o.view(o.act('moe_yk', K * C));
  o.push(await buildGroup(o.gpu, s, vs, grp, E, K), { flops: 0, bytes: 4 * N * K * 3 });
  const touched = Math.min(E, N * K);
  for (const a of gu) o.push(await buildGemm(o.gpu, s, vh, grp, va, a, true, K, E, C, I), { flops: 4 * N * K * I * C, bytes: touched * 2 * I * C * wb / gu.length + 4 * N * (C + K * I) });
  for (const a of dn) o.push(await buildGemm(o.gpu, s, va, grp, yk, a, false, K, E, I, C), { flops: 2 * N * K * I * C, bytes: touched * I * C * wb / dn.length + 4 * N * K * (I + C) });
  o.push(await buildCombine(o.gpu, s, yk, vs, vy, C, K), { flops: 2 * N * K * C, bytes: 4 * N * (K * C + 2 * C) });
}
