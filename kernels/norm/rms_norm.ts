// rms_norm op: RMSNorm over rows (optionally per head), zero-centred weight, SiLU gate.
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, op, only, ONLY, f32, rowsOf, type Ctx, type Launch, type Resource } from '../lib.ts';
import { rmsNormRef } from './rms_norm.ref.ts';
import source from './rms_norm.wgsl' with { type: 'text' };

export const KERNEL = kernel('rms_norm', source, ['step', 'x', 'w', 'g', 'y', 'dims']);

/**
 * x, y [rows, G·C]; w [C] or null; g null for no gate, else its G·C columns from gOff (default 0) of its rows (a part
 * of a wider packed projection).
 */
export interface RmsNormArgs { x: Tensor; w: Weight | null; g: Tensor | null; y: Tensor; C: number; G: number; eps: number; plusOne: boolean; gOff?: number }

export const rmsNormOp = op<RmsNormArgs>({
  name: 'rms_norm',
  check(a) {
    if (a.x.cols !== a.C * a.G) throw new ShapeError(`rms_norm: head dim ${a.C} does not divide ${a.x.cols}`);
    if (a.g && (a.gOff ?? 0) + a.C * a.G > a.g.cols) throw new ShapeError(`rms_norm: gate columns [${a.gOff ?? 0}, ${(a.gOff ?? 0) + a.C * a.G}) do not fit its ${a.g.cols}`);
  },
  select: only(),
  variants: {
    [ONLY]: { launches: (a, c) => [rmsNormLaunch(a, c)] },
  },
  ref: (a, h) => rmsNormRef(h.data(a.x), a.w ? h.data(a.w) : null, h.data(a.y), h.cap(a.x) * a.G, a.C,
    { eps: a.eps, plusOne: a.plusOne, gate: a.g ? h.data(a.g) : null, gS: a.g?.cols, gOff: a.gOff, G: a.G }),
});

/** The launch of rms_norm; `x` binds another resource of a.x's shape in its place (another op's scratch). */
export function rmsNormLaunch(a: RmsNormArgs, c: Ctx, x: Resource = a.x): Launch {
  const WG = Math.min(c.adapter.maxInvocations, a.C >= 256 ? 256 : a.C >= 128 ? 128 : 64);
  const rows = rowsOf(a.x, c) * a.G;
  return {
    kernel: KERNEL, grid: grid(rows), cost: cost(rows, a.C),
    defines: { WG, HAS_W: a.w !== null, PLUS_ONE: a.plusOne, HAS_GATE: a.g !== null, ROWS_K: a.x.rows === 'k' },
    bind: { x, w: a.w, g: a.g, y: a.y, dims: f32(a.C, a.G, a.eps, 0, a.g?.cols ?? 0, a.gOff ?? 0, 0, 0) },
  };
}

export interface RmsNormOp { eps: number; headDim?: number; plusOne?: boolean; gate?: Tensor | null; gateOff?: number }

/**
 * out = RMSNorm(x)·w over rows of x.cols, or per head of `headDim` columns (w then has headDim entries).
 * x and out share the layout [rows, cols], the gate too unless gateOff says where its columns start in its rows;
 * w may be null.
 */
export function rmsNorm(o: Backend, x: Tensor, w: Weight | null, out: Tensor, opts: RmsNormOp): Promise<void> {
  const C = opts.headDim ?? x.cols;
  if (x.cols % C !== 0) throw new ShapeError(`rms_norm: head dim ${C} does not divide ${x.cols}`);
  return o.run(rmsNormOp, { x, w, g: opts.gate ?? null, y: out, C, G: x.cols / C, eps: opts.eps, plusOne: opts.plusOne ?? false, gOff: opts.gateOff });
}

export function cost(R: number, C: number) {
  return { flops: 5 * R * C, bytes: 4 * (3 * R * C + C) };
}
