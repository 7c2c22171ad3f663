// Ops built from other ops' launches (rwkv7_proj's split, rwkv7_tmix's ops): the variant each part would run on its
// own — its FLA_KERNEL_<OP> knob where set and supported, else its select, as the GPU backend resolves a top-level op —
// with that variant's launches and scratch.
import { kernelKnob, knob } from '../../src/util/knobs.ts';
import type { Ctx, Launch, Op, ScratchSpec, Variant } from '../lib.ts';

/** The variant of `op` for `a` on this step. */
export function partVariant<A>(op: Op<A>, a: A, c: Ctx): Variant<A> {
  const forced = Object.keys(op.variants).length > 1 ? knob(kernelKnob(op.name)) : undefined;
  const name = forced !== undefined && forced in op.variants && (op.variants[forced]!.supports?.(a, c) ?? true) ? forced : op.select(c, a);
  return op.variants[name]!;
}

/** The launches of `op` for `a` (op.check first). */
export function partLaunches<A>(op: Op<A>, a: A, c: Ctx): Launch[] {
  op.check?.(a);
  return partVariant(op, a, c).launches(a, c);
}

/** The scratch of `op`'s variant for `a`. */
export function partScratch<A>(op: Op<A>, a: A, c: Ctx): Record<string, ScratchSpec> {
  return partVariant(op, a, c).scratch?.(a, c) ?? {};
}

/** Scratch specs merged by key (the widest of each: parts run one after the other and may share a key). */
export function mergeScratch(...parts: Record<string, ScratchSpec>[]): Record<string, ScratchSpec> {
  const out: Record<string, ScratchSpec> = {};
  for (const p of parts) {
    for (const [k, s] of Object.entries(p)) {
      const o = out[k];
      out[k] = o ? { ...o, cols: Math.max(o.cols, s.cols), planes: Math.max(o.planes ?? 1, s.planes ?? 1) } : s;
    }
  }
  return out;
}
