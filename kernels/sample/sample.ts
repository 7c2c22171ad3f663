// sample op (temperature / top-k / top-p / min-p / repetition penalty / seeded draw on the device): per kept row of
// logits, the drawn token id and a non-finite flag, the layout of argmax ([K, 2] f32: id, flag, and ids [K, 1] u32),
// so a decode step reads back 8 bytes per row. Each row's settings come in `params` [K, P] (sample.ref.ts encodeRow), which the host
// writes before the step; the candidate set is the host Sampler's (src/runtime/sample.ts), the draw Gumbel-max
// with a counter-based hash (sample.ref.ts says what may differ and why).
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { kernel, only, ONLY, op, scratch, u32 } from '../lib.ts';
import { PARAM_FIXED, sampleRef } from './sample.ref.ts';
import source from './sample.wgsl' with { type: 'text' };

export { encodeRow, paramCols, PARAM_FIXED, type SampleRow } from './sample.ref.ts';

export const KERNEL = kernel('sample', source, ['logits', 'params', 'vals', 'out', 'ids', 'dims']);

const WG = 128;   // sample.wgsl sums its columns with 128 lanes and holds 16 · WG u32 of workgroup memory

export interface SampleArgs { logits: Tensor; params: Tensor; out: Tensor; ids: Tensor }

export const sampleOp = op<SampleArgs>({
  name: 'sample',
  check({ logits, params, out, ids }) {
    if (ids.rows !== 'k' || ids.cols !== 1) throw new ShapeError(`sample: ids must be a kept-row tensor [K, 1] (got ${ids.cols} columns)`);
    if (logits.rows !== 'k' || params.rows !== 'k' || out.rows !== 'k' || out.cols !== 2 || params.cols < PARAM_FIXED)
      throw new ShapeError(`sample: logits, params and out must be kept-row tensors, params [K, ≥ ${PARAM_FIXED}], out [K, 2] (got ${params.cols} and ${out.cols} columns)`);
    if (logits.cols >= 1 << 24) throw new ShapeError(`sample: a vocabulary of ${logits.cols} is over 2^24 (ids travel as f32)`);
  },
  select: only(),
  variants: {
    [ONLY]: {
      scratch: a => ({ vals: { cols: a.logits.cols, rows: 'k' } }),
      launches: (a, c) => {
        const V = a.logits.cols;
        return [{
          kernel: KERNEL, defines: { WG }, grid: [1, c.step.k, 1],
          bind: { logits: a.logits, params: a.params, vals: scratch('vals'), out: a.out, ids: a.ids, dims: u32(V, a.params.cols, 16, WG / 8) },
          cost: { flops: 0, bytes: 8 * c.step.k * V },
        }];
      },
    },
  },
  ref: (a, h) => {
    const K = h.step.keep.length, V = a.logits.cols, P = a.params.cols;
    const r = sampleRef(h.data(a.logits), h.data(a.params), K, V, P);
    const y = h.data(a.out), d = h.data(a.ids), ids = new Uint32Array(d.buffer, d.byteOffset, d.length);
    for (let i = 0; i < K; i++) { y[2 * i] = r.ids[i]!; y[2 * i + 1] = r.nonFinite[i]!; ids[i] = r.ids[i]!; }
  },
});

/**
 * out[r] = (token drawn from logits row r under params row r, 1 if that row holds NaN/±Inf else 0), ids[r] = that
 * token as u32 bits; all kept-row tensors.
 */
export function sample(o: Backend, logits: Tensor, params: Tensor, out: Tensor, ids: Tensor): Promise<void> {
  return o.run(sampleOp, { logits, params, out, ids });
}
