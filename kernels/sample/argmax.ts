// argmax op (greedy sampling on the device): per kept row of logits, the token id and a non-finite flag, so a
// decode step reads back 8 bytes per row instead of the logits. out is an f32 [K, 2] tensor (id, flag); ids a [K, 1]
// tensor holding the same ids as u32 bits, which a pipelined decode step feeds to itself on the device.
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { kernel, only, ONLY, op, scratch, u32, type Ctx, type Launch, type Resource } from '../lib.ts';
import { argmaxRef } from './argmax.ref.ts';
import source from './argmax.wgsl' with { type: 'text' };

export const KERNEL = kernel('argmax', source, ['logits', 'part', 'out', 'ids', 'dims']);

const WG = 256;
/** Segments per row: each lane of a segment reads about 4 values; at most 1024 segments. */
export function segments(V: number): number {
  return Math.max(1, Math.min(1024, Math.ceil(V / (4 * WG))));
}

export interface ArgmaxArgs { logits: Tensor; out: Tensor; ids: Tensor }

/**
 * The final pass over G partials of each row in `part` ([K, 3G]: from the first pass, or from the head GEMV's
 * epilogue, matmul_gemv_multi ARGMAX): 1024 threads a row where the adapter has them and G is past 1024 (an
 * output head writes one partial a workgroup: 4 008 for llama-1b's), else WG.
 */
export function argmaxFinal(c: Ctx, logits: Tensor, part: Resource, out: Tensor, ids: Tensor, G: number): Launch {
  const wg = G > 4 * WG && c.adapter.maxInvocations >= 1024 ? 1024 : WG;
  return { kernel: KERNEL, defines: { WG: wg, FINAL: true }, bind: { logits, part, out, ids, dims: u32(logits.cols, G) }, grid: [1, c.step.k, 1] };
}

export const argmaxOp = op<ArgmaxArgs>({
  name: 'argmax',
  check({ logits, out, ids }) {
    if (logits.rows !== 'k' || out.rows !== 'k' || out.cols !== 2) throw new ShapeError(`argmax: logits and out must be kept-row tensors, out [K, 2] (got ${out.cols} columns)`);
    if (ids.rows !== 'k' || ids.cols !== 1) throw new ShapeError(`argmax: ids must be a kept-row tensor [K, 1] (got ${ids.cols} columns)`);
  },
  select: only(),
  variants: {
    [ONLY]: {
      scratch: a => ({ part: { cols: 3 * segments(a.logits.cols), rows: 'k' } }),
      launches: (a, c) => {
        const V = a.logits.cols, G = segments(V);
        const bind = { logits: a.logits, part: scratch('part'), out: a.out, ids: a.ids, dims: u32(V, G) };
        return [
          { kernel: KERNEL, defines: { WG, FINAL: false }, bind, grid: [G, c.step.k, 1], cost: { flops: 0, bytes: 4 * c.step.k * V } },
          argmaxFinal(c, a.logits, bind.part, a.out, a.ids, G),
        ];
      },
    },
  },
  ref: (a, h) => {
    const K = h.step.keep.length;
    const r = argmaxRef(h.data(a.logits), K, a.logits.cols);
    const y = h.data(a.out), d = h.data(a.ids), ids = new Uint32Array(d.buffer, d.byteOffset, d.length);
    for (let i = 0; i < K; i++) { y[2 * i] = r.ids[i]!; y[2 * i + 1] = r.nonFinite[i]!; ids[i] = r.ids[i]!; }
  },
});

/**
 * out[r] = (argmax of logits row r, 1 if that row holds NaN/±Inf else 0), ids[r] = that argmax as u32 bits; all
 * kept-row ('k') tensors.
 */
export function argmax(o: Backend, logits: Tensor, out: Tensor, ids: Tensor): Promise<void> {
  return o.run(argmaxOp, { logits, out, ids });
}
