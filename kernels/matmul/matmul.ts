// matmul op wrapper: y = act(x·Wᵀ + bias) (+ y). select() picks GEMV for few rows, the tiled GEMM otherwise.
import type { Gpu, Dispatch } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, weightDefines, type StepCtx, type View, type WeightDtype } from '../../src/gpu/launch.ts';
import { ShapeError, UsageError } from '../../src/util/errors.ts';
import { buildF16, f16Unavailable, isF16Matmul, selectF16, type F16Matmul } from './matmul_sgmat.ts';
import gemv from './matmul_gemv.wgsl' with { type: 'text' };
import gemm from './matmul_gemm.wgsl' with { type: 'text' };
import blocked from './matmul_blocked.wgsl' with { type: 'text' };
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { ACT, matmulRef, type Act } from './matmul.ref.ts';

export const BINDINGS = ['step', 'x', 'W', 'bias', 'y'] as const;

export interface MatmulArgs {
  x: View; w: View; wdtype: WeightDtype; bias: View | null; y: View;
  IN: number; OUT: number; act: Act; accumulate: boolean; rowsK: boolean;
}

const GEMV_RMAX = 4;

export type MatmulKernel = 'gemv' | 'gemm' | 'blocked' | F16Matmul;
const KERNELS = ['gemv', 'gemm', 'blocked', 'sgmat', 'sgmat_f16', 'f16split', 'f16single'];

/**
 * 'gemv' while the rows fit a few GEMV passes; else for f16 weights 'sgmat' (matmul_sgmat.ts) where the adapter has
 * subgroup matrices; else the workgroup-tiled 'gemm' on GPUs, and 'blocked' (no workgroup memory or barriers, which
 * a CPU adapter emulates slowly) on CPU adapters. FLA_KERNEL_MATMUL forces one (an f16 variant only for f16 weights).
 */
export function select(gpu: Gpu, rows: number, wdtype: WeightDtype = 'f32'): MatmulKernel {
  const forced = process.env.FLA_KERNEL_MATMUL;
  if (forced) {
    if (!KERNELS.includes(forced)) throw new UsageError(`FLA_KERNEL_MATMUL=${forced}: expected one of ${KERNELS.join(', ')}`);
    if (!isF16Matmul(forced)) return forced as MatmulKernel;
    const why = f16Unavailable(gpu, forced);
    if (why) throw new UsageError(`FLA_KERNEL_MATMUL=${forced}: ${why}`);
    if (wdtype === 'f16') return forced;   // tensors kept bf16 (values beyond f16) take the default below
  }
  if (rows <= 2 * GEMV_RMAX) return 'gemv';
  if (wdtype === 'f16') { const f = selectF16(gpu, rows); if (f) return f; }
  return gpu.summary.type === 'cpu' ? 'blocked' : 'gemm';
}

export function build(gpu: Gpu, s: StepCtx, a: MatmulArgs): Promise<Dispatch> {
  if (a.IN % 2 !== 0) throw new ShapeError(`matmul: IN=${a.IN} must be even`);
  const rows = a.rowsK ? s.k : s.n;
  const defines = {
    ACT: ACT[a.act], HAS_BIAS: a.bias !== null, ACCUM: a.accumulate, ROWS_K: a.rowsK,
    ...weightDefines(a.wdtype),
  };
  const entries = [{ buffer: s.uniform }, binding(a.x), binding(a.w), a.bias ? binding(a.bias) : { buffer: s.dummy }, binding(a.y),
    { buffer: gpu.uniform(new Uint32Array([a.IN, a.OUT])) }];
  const kernel = select(gpu, rows, a.wdtype);
  if (isF16Matmul(kernel)) return buildF16(gpu, s, kernel, rows, a.OUT, defines, entries);
  if (kernel === 'blocked')
    return dispatch(gpu, { label: 'matmul_blocked', source: blocked, defines }, entries, grid(Math.ceil(Math.ceil(rows / 4) * Math.ceil(a.OUT / 4) / 64)));
  if (kernel === 'gemv') {
    const TPR = a.IN >= 1024 ? 64 : 32;
    const RPW = Math.max(1, Math.min(8, Math.floor(gpu.maxInvocations / TPR), 256 / TPR));
    const [x, y] = grid(Math.ceil(a.OUT / RPW));
    return dispatch(gpu, { label: 'matmul_gemv', source: gemv, defines: { ...defines, TPR, RPW, RMAX: GEMV_RMAX } },
      entries, [x, y, Math.ceil(rows / GEMV_RMAX)]);
  }
  return dispatch(gpu, { label: 'matmul_gemm', source: gemm, defines }, entries, [Math.ceil(a.OUT / 64), Math.ceil(rows / 64), 1]);
}

export function cost(R: number, IN: number, OUT: number, wbytes: number) {
  return { flops: 2 * R * IN * OUT, bytes: OUT * IN * wbytes + 4 * R * (IN + OUT) };
}

/** out (+)= act(x·wᵀ + bias): nn.Linear with a fused activation; rows of x are 'n' or 'k'. */
export async function matmul(o: Backend, x: Tensor, w: Weight, bias: Weight | null, act: Act, out: Tensor, accumulate = false): Promise<void> {
  const [OUT, IN] = w.shape as [number, number];
  if (o instanceof GpuBackend) {
    const rows = x.rows === 'k' ? o.step.k : o.step.n;
    o.push(await build(o.gpu, o.step, {
      x: o.view(x), w: o.weightView(w), wdtype: o.weightDtype(w), bias: bias ? o.weightView(bias) : null, y: o.view(out),
      IN, OUT, act, accumulate, rowsK: x.rows === 'k',
    }), cost(rows, IN, OUT, o.weightDtype(w) === 'f32' ? 4 : 2));
    return;
  }
  const c = o as CpuBackend;
  matmulRef(c.data(x), c.weightData(w), bias ? c.weightData(bias) : null, c.data(out), c.capacity(x), IN, OUT, act, accumulate);
}
