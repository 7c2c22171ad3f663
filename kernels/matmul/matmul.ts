// matmul op wrapper: y = act(x·Wᵀ + bias) (+ y). select() picks GEMV for few rows, the tiled GEMM otherwise.
import type { Gpu, Dispatch } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, weightDefines, type StepCtx, type View, type WeightDtype } from '../../src/gpu/launch.ts';
import { ShapeError, UsageError } from '../../src/util/errors.ts';
import gemv from './matmul_gemv.wgsl' with { type: 'text' };
import gemm from './matmul_gemm.wgsl' with { type: 'text' };
import blocked from './matmul_blocked.wgsl' with { type: 'text' };
import * as gemvVec from './matmul_gemv_vec.ts';
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

export type MatmulKernel = 'gemv_vec' | 'gemv_vec_wg' | 'gemv' | 'gemm' | 'blocked';
const KERNELS: readonly MatmulKernel[] = ['gemv_vec', 'gemv_vec_wg', 'gemv', 'gemm', 'blocked'];

/**
 * 'gemv_vec' (16-byte loads, subgroup reductions where the adapter has a fixed subgroup size; workgroup memory
 * otherwise) up to 16 rows; else the workgroup-tiled 'gemm' on GPUs, and 'blocked' (no workgroup memory or
 * barriers, which a CPU adapter emulates slowly) on CPU adapters. FLA_KERNEL_MATMUL forces one: 'gemv_vec_wg' is
 * gemv_vec with the portable reduction, 'gemv' the previous 4-row GEMV.
 */
export function select(gpu: Gpu, rows: number): MatmulKernel {
  const forced = process.env.FLA_KERNEL_MATMUL;
  if (forced) {
    if (!(KERNELS as readonly string[]).includes(forced)) throw new UsageError(`FLA_KERNEL_MATMUL must be one of ${KERNELS.join(', ')}, got ${forced}`);
    return forced as MatmulKernel;
  }
  if (rows <= gemvVec.GEMV_VEC_RMAX) return 'gemv_vec';
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
  const kernel = select(gpu, rows);
  if (kernel === 'gemv_vec' || kernel === 'gemv_vec_wg') {
    const p = gemvVec.plan(gpu, rows, a.IN, a.OUT, a.wdtype, a.x.offset % 16 === 0, kernel === 'gemv_vec');
    return gemvVec.build(gpu, p, defines, entries, a.IN, a.OUT);   // past 16 rows (forced): W is read once per 16
  }
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
