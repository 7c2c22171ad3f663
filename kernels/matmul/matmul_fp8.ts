// matmul_fp8 op: y = act(x·Wᵀ + bias) (+ y) for an F8_E4M3 weight (fp8 checkpoints) with its block scales, both as
// stored, decoded inside the kernel (wquad.wgsl). Variants: gemv for decode-sized steps, the tiled gemm otherwise;
// FLA_KERNEL_MATMUL_FP8=gemv|gemm forces one. matmul() routes fp8 weights here; the CPU backend holds them
// dequantized, so the reference is the f32 matmul of the dequantized weight (matmul_fp8.ref.ts).
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, op, rowsOf, u32, weightDefines, type Ctx, type Launch } from '../lib.ts';
import { ACT } from './matmul.ref.ts';
import { matmulFp8Ref } from './matmul_fp8.ref.ts';
import type { MatmulArgs } from './matmul.ts';
import gemvSrc from './matmul_fp8_gemv.wgsl' with { type: 'text' };
import gemmSrc from './matmul_fp8_gemm.wgsl' with { type: 'text' };

const BINDINGS = ['step', 'x', 'W', 'bias', 'y', 'dims', 'S'] as const;
export const KERNELS = { gemv: kernel('matmul_fp8_gemv', gemvSrc, BINDINGS), gemm: kernel('matmul_fp8_gemm', gemmSrc, BINDINGS) };

const RMAX = 4;

export function cost(R: number, IN: number, OUT: number) {
  return { flops: 2 * R * IN * OUT, bytes: OUT * IN + 4 * R * (IN + OUT) };
}

function base(a: MatmulArgs, c: Ctx, k: keyof typeof KERNELS, extra: Record<string, number> = {}): Omit<Launch, 'grid'> {
  const [OUT, IN] = a.w.shape as [number, number], f = a.w.fp8!;
  return {
    kernel: KERNELS[k], cost: cost(rowsOf(a.x, c), IN, OUT),
    defines: { ACT: ACT[a.act], HAS_BIAS: a.bias !== null, ACCUM: a.accumulate, ROWS_K: a.x.rows === 'k', ...weightDefines('fp8'), ...extra },
    bind: { x: a.x, W: a.w, bias: a.bias, y: a.y, dims: u32(IN, OUT, 0, 0, 0, Math.ceil(IN / f.bc), 0, 0, f.rp, Math.ceil(f.rp / f.br), f.br, f.bc), S: f.scales },
  };
}

export const matmulFp8Op = op<MatmulArgs>({
  name: 'matmul_fp8',
  check(a) {
    const [OUT, IN] = a.w.shape as [number, number];
    if (a.w.dtype !== 'fp8' || !a.w.fp8) throw new ShapeError('matmul_fp8: the weight is not fp8');
    if (IN % 4 !== 0) throw new ShapeError(`matmul_fp8: IN=${IN} must be a multiple of 4`);
    if (a.x.cols !== IN || a.y.cols !== OUT || a.x.rows !== a.y.rows) throw new ShapeError(`matmul_fp8: x ${a.x.cols} columns, weight [${OUT}, ${IN}], out ${a.y.cols}`);
  },
  select: (c, a) => rowsOf(a.x, c) <= 2 * RMAX ? 'gemv' : 'gemm',
  variants: {
    gemv: {
      launches: (a, c) => {
        const IN = a.w.shape[1]!, OUT = a.w.shape[0]!;
        const TPR = IN / 4 >= 256 ? 64 : 32;
        const RPW = Math.max(1, Math.min(8, Math.floor(c.adapter.maxInvocations / TPR), 256 / TPR));
        const [x, y] = grid(Math.ceil(OUT / RPW));
        return [{ ...base(a, c, 'gemv', { TPR, RPW, RMAX }), grid: [x, y, Math.ceil(rowsOf(a.x, c) / RMAX)] }];
      },
    },
    gemm: { launches: (a, c) => [{ ...base(a, c, 'gemm'), grid: [Math.ceil(a.w.shape[0]! / 64), Math.ceil(rowsOf(a.x, c) / 64), 1] }] },
  },
  // the CPU backend's fp8 weights are already dequantized (dequantFp8): the f32 formula
  ref: (a, h) => matmulFp8Ref(h.data(a.x), h.data(a.w), a.bias ? h.data(a.bias) : null, h.data(a.y), h.cap(a.x), a.w.shape[1]!, a.w.shape[0]!, a.act, a.accumulate),
});
