// matmul op: y (+)= act(x·Wᵀ + bias). Variants: gemv (few rows), gemm (workgroup-tiled), blocked (CPU adapters),
// and for f16 weights those of matmul_sgmat.ts (subgroup matrices; the same arithmetic without them).
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, op, rowsOf, shadersOnCpu, u32, weightDefines, type Ctx, type Launch } from '../lib.ts';
import blocked from './matmul_blocked.wgsl' with { type: 'text' };
import gemm from './matmul_gemm.wgsl' with { type: 'text' };
import gemv from './matmul_gemv.wgsl' with { type: 'text' };
import { GEMV_VEC, GEMV_VEC_RMAX, gemvVecVariants } from './matmul_gemv_vec.ts';
import { ACT, matmulRef, type Act } from './matmul.ref.ts';
import { F16_VARIANTS, selectF16 } from './matmul_sgmat.ts';
import { sgmvByDefault, sgmvLaunches, sgmvScratch, sgmvSupports } from './matmul_sgmv.ts';
import { matmulFp8Op } from './matmul_fp8.ts';

export const BINDINGS = ['step', 'x', 'W', 'bias', 'y', 'dims'] as const;
export const KERNELS = {
  gemv: kernel('matmul_gemv', gemv, BINDINGS),
  gemm: kernel('matmul_gemm', gemm, BINDINGS),
  blocked: kernel('matmul_blocked', blocked, BINDINGS),
  gemv_vec: GEMV_VEC,
};

export interface MatmulArgs { x: Tensor; w: Weight; bias: Weight | null; y: Tensor; act: Act; accumulate: boolean }

const GEMV_RMAX = 4;

/** Rows gemv_vec takes by default: up to 16 everywhere, up to 64 on GPUs (not on CPU adapters: blocked wins there). */
export const GEMV_VEC_GPU_ROWS = 64;
export function gemvRows(c: Ctx, rows: number): boolean {
  return rows <= GEMV_VEC_RMAX || (rows <= GEMV_VEC_GPU_ROWS && c.adapter.type !== 'cpu');
}

export type MatmulKernel = 'gemv_vec' | 'gemv_vec_wg' | 'gemv' | 'gemm' | 'blocked';

function base(a: MatmulArgs, c: Ctx, k: keyof typeof KERNELS, extra: Record<string, number> = {}): Omit<Launch, 'grid'> {
  const [OUT, IN] = a.w.shape as [number, number];
  return {
    kernel: KERNELS[k], cost: cost(rowsOf(a.x, c), IN, OUT, a.w.dtype === 'f32' ? 4 : 2),
    defines: { ACT: ACT[a.act], HAS_BIAS: a.bias !== null, ACCUM: a.accumulate, ROWS_K: a.x.rows === 'k', ...weightDefines(a.w.dtype), ...extra },
    bind: { x: a.x, W: a.w, bias: a.bias, y: a.y, dims: u32(IN, OUT) },
  };
}

export const matmulOp = op<MatmulArgs>({
  name: 'matmul',
  check(a) {
    const [OUT, IN] = a.w.shape as [number, number];
    if (IN % 2 !== 0) throw new ShapeError(`matmul: IN=${IN} must be even`);
    if (a.x.cols !== IN || a.y.cols !== OUT || a.x.rows !== a.y.rows) throw new ShapeError(`matmul: x ${a.x.cols} columns, weight [${OUT}, ${IN}], out ${a.y.cols}`);
  },
  /**
   * 'gemv_vec' up to 16 rows (16-byte loads, weights read once for all rows, subgroup reductions where the adapter
   * has subgroups) unless 'sgmat' takes f16 weights on subgroup matrices (from 16 rows); else the workgroup-tiled
   * 'gemm' on GPUs, and 'blocked' (no workgroup memory or barriers, which a CPU adapter emulates slowly) on CPU
   * adapters. Forced only: 'gemv_vec_wg' (gemv_vec reducing through workgroup memory), 'gemv' (the previous 4-row GEMV).
   * On GPUs gemv_vec also takes 17..64 rows (batched decode): blocks of 16 rows, each a register tile of 16 rows × 4
   * output columns per lane group (x bytes per FMA 4 / 4, W bytes 2 / 16), where the 64×64-tile GEMM's grid for a
   * 2048-wide output is 32 workgroups on 132 SMs. Before all of these, 'sgmv' (matmul_sgmv.ts: the decode GEMV on
   * subgroup matrices, f32-grade) takes f16 weights at SGMV_MIN_ROWS..16 rows where the adapter has the configs, with
   * FLA_SGMV=1 (off by default until it beats gemv_vec on the H200).
   */
  select: (c, a) => (sgmvByDefault(rowsOf(a.x, c)) && sgmvSupports(a, c) ? 'sgmv' : null) ?? selectF16(c, a)
    ?? (gemvRows(c, rowsOf(a.x, c)) ? 'gemv_vec' : shadersOnCpu(c.adapter) ? 'blocked' : 'gemm'),
  variants: {
    ...gemvVecVariants((a, c) => cost(rowsOf(a.x, c), a.w.shape[1]!, a.w.shape[0]!, a.w.dtype === 'f32' ? 4 : 2)),
    gemv: {
      launches: (a, c) => {
        const IN = a.w.shape[1]!, OUT = a.w.shape[0]!;
        const TPR = IN >= 1024 ? 64 : 32;
        const RPW = Math.max(1, Math.min(8, Math.floor(c.adapter.maxInvocations / TPR), 256 / TPR));
        const [x, y] = grid(Math.ceil(OUT / RPW));
        return [{ ...base(a, c, 'gemv', { TPR, RPW, RMAX: GEMV_RMAX }), grid: [x, y, Math.ceil(rowsOf(a.x, c) / GEMV_RMAX)] }];
      },
    },
    gemm: { launches: (a, c) => [{ ...base(a, c, 'gemm'), grid: [Math.ceil(a.w.shape[0]! / 64), Math.ceil(rowsOf(a.x, c) / 64), 1] }] },
    blocked: { launches: (a, c) => [{ ...base(a, c, 'blocked'), grid: grid(Math.ceil(Math.ceil(rowsOf(a.x, c) / 4) * Math.ceil(a.w.shape[0]! / 4) / 64)) }] },
    ...F16_VARIANTS,
    sgmv: { supports: (a, c) => sgmvSupports(a, c), scratch: (a, c) => sgmvScratch(a, c), launches: (a, c) => sgmvLaunches(a, c) },
  },
  ref: (a, h) => matmulRef(h.data(a.x), h.data(a.w), a.bias ? h.data(a.bias) : null, h.data(a.y), h.cap(a.x), a.w.shape[1]!, a.w.shape[0]!, a.act, a.accumulate),
});

export function cost(R: number, IN: number, OUT: number, wbytes: number) {
  return { flops: 2 * R * IN * OUT, bytes: OUT * IN * wbytes + 4 * R * (IN + OUT) };
}

/** out (+)= act(x·wᵀ + bias): nn.Linear with a fused activation; rows of x are 'n' or 'k'. */
export function matmul(o: Backend, x: Tensor, w: Weight, bias: Weight | null, act: Act, out: Tensor, accumulate = false): Promise<void> {
  return o.run(w.dtype === 'fp8' ? matmulFp8Op : matmulOp, { x, w, bias, y: out, act, accumulate });   // fp8: checkpoints' F8_E4M3
}
