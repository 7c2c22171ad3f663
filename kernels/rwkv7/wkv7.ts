// wkv7 op: the RWKV7 time-mix core. Variants: 'recurrent' (wkv7_recurrent.wgsl: decode, short steps and the fallback;
// token by token over each sequence) and 'chunk' (wkv7_chunk.ts: chunked prefill, chunk 32), chosen per step in `select`.
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { chunked, f32, kernel, op } from '../lib.ts';
import source from './wkv7_recurrent.wgsl' with { type: 'text' };
import { wkv7Ref } from './wkv7.ref.ts';
import { CHUNK_MIN_LEN, chunkFits, chunkVariant, RED_D } from './wkv7_chunk.ts';
import { RWKV7_INCLUDES } from './includes.ts';

export type Wkv7Kernel = 'recurrent' | 'chunk';

export const KERNEL = kernel('wkv7_recurrent', source, ['step', 'stepmeta', 'proj', 'vfirst', 'vmix', 'params', 'state', 'y', 'dims']);

/** vmix null = layer 0, which writes vfirst. */
export interface Wkv7Op { proj: Tensor; vfirst: Tensor; vmix: Tensor | null; params: Weight; state: Tensor; out: Tensor; D: number; fuseNorm: boolean; gnEps: number }

export const wkv7Op = op<Wkv7Op>({
  name: 'wkv7',
  includes: RWKV7_INCLUDES,
  check(a) {
    const C = a.out.cols;
    if (C % a.D !== 0 || (a.D & (a.D - 1)) !== 0) throw new ShapeError(`wkv7: head dim ${a.D} must be a power of two dividing C=${C}`);
  },
  /** 'chunk' when a sequence of the step has more than 64 tokens, on GPU adapters (the rule of delta_rule). */
  select: (c, a) => (chunked(c, CHUNK_MIN_LEN) && chunkFits(a, c) ? 'chunk' : 'recurrent'),
  variants: {
    recurrent: {
      launches: (a, c) => {
        const C = a.out.cols;
        if (a.D > c.adapter.maxInvocations) throw new ShapeError(`wkv7: head dim ${a.D} must be a power of two ≤ ${c.adapter.maxInvocations} dividing C=${C}`);
        const base = cost(c.step.n, C, a.D);
        return [{
          kernel: KERNEL, grid: [C / a.D, c.step.b, 1], defines: { D: a.D, FIRST: a.vmix === null, FUSE_NORM: a.fuseNorm, ...RED_D(a.D) },
          cost: { ...base, bytes: base.bytes + 8 * c.step.b * C * a.D },
          bind: { proj: a.proj, vfirst: a.vfirst, vmix: a.vmix, params: a.params, state: a.state, y: a.out, dims: f32(C, a.gnEps) },
        }];
      },
    },
    chunk: chunkVariant,
  },
  ref: (a, h) => wkv7Ref(h.data(a.proj), h.data(a.vfirst), a.vmix ? h.data(a.vmix) : new Float32Array(0), h.data(a.params), h.data(a.state), h.data(a.out),
    h.step.cursors, { C: a.out.cols, D: a.D, cap: h.cap(a.proj), first: a.vmix === null, fuseNorm: a.fuseNorm, gnEps: a.gnEps }),
});

export function cost(N: number, C: number, D: number) {
  return { flops: N * C * D * 8, bytes: 4 * N * C * 10 };
}

/** The RWKV7 time-mix core of one layer (vmix null = layer 0, which writes vfirst). */
export function wkv7(o: Backend, a: Wkv7Op): Promise<void> {
  return o.run(wkv7Op, a);
}
