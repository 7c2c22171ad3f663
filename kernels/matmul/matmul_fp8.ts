// matmul op on F8_E4M3 weights (fp8 checkpoints): y = act(x·Wᵀ + bias) (+ y) with the bytes and block scales as
// stored, decoded inside the kernel. select(): the GEMV for decode-sized steps, the tiled GEMM otherwise
// (FLA_KERNEL_MATMUL=gemv|gemm forces one; 'blocked' maps to the GEMM). matmul() routes fp8 weights here; the CPU
// backend holds them dequantized (matmul_fp8.ref.ts is the same formula).
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import type { GpuBackend } from '../../src/backend/gpu.ts';
import type { Dispatch, Gpu } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, type StepCtx, type View } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import wquad from '../moe/wquad.wgsl' with { type: 'text' };
import { ACT, type Act } from './matmul.ref.ts';
import gemvSrc from './matmul_fp8_gemv.wgsl' with { type: 'text' };
import gemmSrc from './matmul_fp8_gemm.wgsl' with { type: 'text' };

export const BINDINGS = ['step', 'x', 'W', 'bias', 'y', 'dims', 'S'] as const;

const RMAX = 4;

export type MatmulFp8Kernel = 'gemv' | 'gemm';

export function select(rows: number): MatmulFp8Kernel {
  const forced = process.env.FLA_KERNEL_MATMUL;
  if (forced === 'gemv') return 'gemv';
  if (forced === 'gemm' || forced === 'blocked') return 'gemm';
  return rows <= 2 * RMAX ? 'gemv' : 'gemm';
}

export interface MatmulFp8Args {
  x: View; w: View; scale: View; fq: [number, number, number, number]; SC: number; bias: View | null; y: View;
  IN: number; OUT: number; act: Act; accumulate: boolean; rowsK: boolean;
}

export function build(gpu: Gpu, s: StepCtx, a: MatmulFp8Args): Promise<Dispatch> {
  if (a.IN % 4 !== 0) throw new ShapeError(`matmul_fp8: IN=${a.IN} must be a multiple of 4`);
  const rows = a.rowsK ? s.k : s.n;
  const defines = { ACT: ACT[a.act], HAS_BIAS: a.bias !== null, ACCUM: a.accumulate, ROWS_K: a.rowsK, WDT: 4, W_FP8: true, W_F32: false, W_F16: false };
  const entries = [{ buffer: s.uniform }, binding(a.x), binding(a.w), a.bias ? binding(a.bias) : { buffer: s.dummy }, binding(a.y),
    { buffer: gpu.uniform(new Uint32Array([a.IN, a.OUT, 0, 0, 0, a.SC, 0, 0, ...a.fq])) }, binding(a.scale)];
  if (select(rows) === 'gemv') {
    const TPR = a.IN / 4 >= 256 ? 64 : 32;
    const RPW = Math.max(1, Math.min(8, Math.floor(gpu.maxInvocations / TPR), 256 / TPR));
    const [x, y] = grid(Math.ceil(a.OUT / RPW));
    return dispatch(gpu, { label: 'matmul_fp8_gemv', source: wquad + gemvSrc, defines: { ...defines, TPR, RPW, RMAX } }, entries, [x, y, Math.ceil(rows / RMAX)]);
  }
  return dispatch(gpu, { label: 'matmul_fp8_gemm', source: wquad + gemmSrc, defines }, entries, [Math.ceil(a.OUT / 64), Math.ceil(rows / 64), 1]);
}

export function cost(R: number, IN: number, OUT: number) {
  return { flops: 2 * R * IN * OUT, bytes: OUT * IN + 4 * R * (IN + OUT) };
}

/** out (+)= act(x·wᵀ + bias) for an fp8 weight on the GPU backend. */
export async function matmulFp8(o: Backend, x: Tensor, w: Weight, bias: Weight | null, act: Act, out: Tensor, accumulate = false): Promise<void> {
  const g = o as GpuBackend, f = g.weightFp8(w);
  if (!f) throw new ShapeError('matmul_fp8: the weight is not fp8');
  const [OUT, IN] = w.shape as [number, number];
  const rows = x.rows === 'k' ? g.step.k : g.step.n;
  g.push(await build(g.gpu, g.step, {
    x: g.view(x), w: g.weightView(w), scale: f.scale, fq: [f.rp, Math.ceil(f.rp / f.br), f.br, f.bc], SC: Math.ceil(IN / f.bc),
    bias: bias ? g.weightView(bias) : null, y: g.view(out), IN, OUT, act, accumulate, rowsK: x.rows === 'k',
  }), cost(rows, IN, OUT));
}
