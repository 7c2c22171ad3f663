// embed and gather_rows ops (kernels/embed/*.wgsl): token embedding lookup, and the kept rows of a step.
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { knob } from '../../src/util/knobs.ts';
import { grid, kernel, only, ONLY, op, u32, weightDefines } from '../lib.ts';
import { embedRef, gatherRowsRef } from './embed.ref.ts';
import embedSrc from './embed.wgsl' with { type: 'text' };
import gatherSrc from './gather_rows.wgsl' with { type: 'text' };

export const KERNEL = kernel('embed', embedSrc, ['step', 'stepmeta', 'W', 'x', 'dims']);
export const GATHER_KERNEL = kernel('gather_rows', gatherSrc, ['step', 'stepmeta', 'x', 'y', 'dims']);

export interface EmbedArgs { table: Weight; out: Tensor }

export const embedOp = op<EmbedArgs>({
  name: 'embed',
  check(a) { if (a.out.rows !== 'n' || a.table.shape[1] !== a.out.cols) throw new ShapeError(`embed: table [${a.table.shape}] into ${a.out.cols} columns`); },
  select: only(),
  variants: {
    [ONLY]: {
      launches: (a, c) => [{
        kernel: KERNEL, grid: grid(Math.ceil(c.step.n * a.out.cols / 2 / 64)), defines: weightDefines(a.table.dtype),
        cost: { flops: 0, bytes: (a.table.dtype === 'f32' ? 8 : 6) * c.step.n * a.out.cols },
        bind: { W: a.table, x: a.out, dims: u32(a.out.cols) },
      }],
    },
  },
  ref: (a, h) => embedRef(h.step.ids, h.data(a.table), h.data(a.out), a.out.cols),
});

export interface GatherArgs { x: Tensor; y: Tensor }

export const gatherRowsOp = op<GatherArgs>({
  name: 'gather_rows',
  check(a) { if (a.x.rows !== 'n' || a.y.rows !== 'k' || a.x.cols !== a.y.cols) throw new ShapeError(`gather_rows: ${a.x.rows} rows of ${a.x.cols} → ${a.y.rows} rows of ${a.y.cols}`); },
  select: only(),
  variants: {
    [ONLY]: {
      launches: (a, c) => [{
        kernel: GATHER_KERNEL, grid: grid(Math.ceil(c.step.k * a.x.cols / 64)), cost: { flops: 0, bytes: 8 * c.step.k * a.x.cols },
        bind: { x: a.x, y: a.y, dims: u32(a.x.cols) },
      }],
    },
  },
  ref: (a, h) => gatherRowsRef(h.data(a.x), h.step.keep, h.data(a.y), a.x.cols),
});

/** out[t] = table[ids[t]] for the step's tokens. */
export function embed(o: Backend, table: Weight, out: Tensor): Promise<void> {
  return o.run(embedOp, { table, out });
}

/**
 * x's kept rows as a 'k' tensor: x itself where the step keeps all its rows in order (Backend.keptView: k = n, every
 * decode step of one token a sequence), no dispatch; else gather_rows into `out` (always with FLA_KEPT_VIEW=0).
 */
export async function keptRows(o: Backend, x: Tensor, out: () => Tensor): Promise<Tensor> {
  const v = knob('FLA_KEPT_VIEW') === '0' ? null : o.keptView(x);
  if (v) return v;
  const y = out();
  await gatherKept(o, x, y);
  return y;
}

/** out[j] = x[keep[j]]: the rows whose logits are kept ('n' rows → 'k' rows). */
export function gatherKept(o: Backend, x: Tensor, out: Tensor): Promise<void> {
  return o.run(gatherRowsOp, { x, y: out });
}
