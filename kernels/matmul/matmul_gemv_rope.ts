// qkv_rope op: an attention layer's q|k|v projection (matmul_multi, the RMSNorm in its prologue) followed by rope_kv
// (biases, q/k norm, RoPE, KV-cache append). 'fused': one decode GEMV with RoPE and the cache append in its epilogue
// (matmul_gemv_multi.wgsl's ROPE: each lane group owns RoPE partner columns (i, i + R/2) of a head, so the rotation
// is local), where the layer has no per-head q/k norm and no biases (Llama; Qwen3's q/k norm and Qwen2's biases
// keep rope_kv); 'split': matmul_multi's choice, then rope_kv (the portable path and the reference).
import type { Backend, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { op, ONLY, rowsOf, type Ctx, type Launch } from '../lib.ts';
import { embedOp } from '../embed/embed.ts';
import { embedRef } from '../embed/embed.ref.ts';
import { refDims, ropeKvOp, type RopeKvArgs } from '../attention/rope_kv.ts';
import { fusedLaunch, matmulMultiOp, multiPlan, type MatmulMultiArgs } from './matmul_gemv_multi.ts';
import { qkvRopeRef } from './matmul_gemv_rope.ref.ts';

/**
 * mm: the projection, parts [q, k, v] writing rope.q, rope.k, rope.v (no activation, no accumulate); rope: rope_kv's.
 * embed (a decoder's first layer): mm.x's rows are the tokens' rows of this embedding table [V, C], which the fused
 * variant reads itself (matmul_gemv_multi.wgsl EMBED: x is neither read nor written, so the layer's o_proj takes the
 * same table as its residual, attn_out's `embed`) where the table has the weights' dtype; else an embed dispatch into
 * mm.x first.
 */
export interface QkvRopeArgs { mm: MatmulMultiArgs; rope: RopeKvArgs; embed?: Weight | null }

/**
 * Whether the fused variant can run these: matmul_multi would fuse the projection, no q/k norm nor biases (the
 * epilogue has no binding left for them: 10 storage buffers), and for a 16-bit cache D and R multiples of 4 and an
 * even number of column pairs a workgroup (adjacent pairs then pack into one word).
 */
function fusable(a: QkvRopeArgs, c: Ctx, subgroups: boolean): boolean {
  const r = a.rope;
  if (r.norm || r.bias || matmulMultiOp.select(c, a.mm) !== 'fused') return false;
  if (r.kv === 'f32') return true;
  const p = multiPlan(a.mm, c, subgroups, true);
  return r.D % 4 === 0 && r.R % 4 === 0 && ((p.WG / p.TPR) * (p.CB / 2)) % 2 === 0;
}

/** Rows up to which select picks the fused variant. */
const FUSED_ROWS = 1;

function launchFused(a: QkvRopeArgs, c: Ctx, subgroups: boolean): Launch[] {
  const r = a.rope, e = a.embed && a.embed.dtype === a.mm.parts[0]!.w.dtype ? a.embed : null;
  return [...(e ? [] : embedFirst(a, c)), fusedLaunch(a.mm, c, subgroups, { kc: r.kc, vc: r.vc, table: r.table, D: r.D, R: r.R, ctx: r.ctx, kv: r.kv }, e)];
}

/** The embed dispatch into mm.x where the projection does not read the table itself. */
function embedFirst(a: QkvRopeArgs, c: Ctx): Launch[] {
  return a.embed ? embedOp.variants[ONLY]!.launches({ table: a.embed, out: a.mm.x }, c) : [];
}

export const qkvRopeOp = op<QkvRopeArgs>({
  name: 'qkv_rope',
  includes: matmulMultiOp.includes,
  check(a) {
    matmulMultiOp.check!(a.mm);
    ropeKvOp.check!(a.rope);
    if (a.embed) embedOp.check!({ table: a.embed, out: a.mm.x });
    const [q, k, v] = a.mm.parts;
    if (a.mm.parts.length !== 3 || q!.y !== a.rope.q || k!.y !== a.rope.k || v!.y !== a.rope.v || a.mm.accumulate || a.mm.act !== 'none' || a.mm.swiglu
      || a.mm.parts.some(p => (p.act ?? 'none') !== 'none' || (p.plane ?? 0) !== 0))
      throw new ShapeError('qkv_rope: parts [q, k, v] writing rope_kv\'s q, k and v, no activation, no accumulate, plane 0');
  },
  /**
   * 'fused' where it can run at one row (batch-1 decode), else 'split'. H200, llama-1b (fla bench -p 512 -n 128,
   * interleaved processes, 2026-12-02, warm-up process left out): b=1 tg128 989.4, 1005.4 t/s (default) and 983.8,
   * 1006.4 (forced) against 962.9, 966.8, 963.5 split; b=8 forced fused 4619, 4614, 4649 against 4644, 4675, 4652,
   * so more rows keep the split path unless forced. Profiled: matmul_gemv_rope 14.8 µs a call against q|k|v 13.5 µs +
   * rope_kv 8.7 µs.
   */
  select: (c, a) => (rowsOf(a.mm.x, c) <= FUSED_ROWS && fusable(a, c, true) ? 'fused' : 'split'),
  variants: {
    fused: { supports: (a, c) => fusable(a, c, true), launches: (a, c) => launchFused(a, c, true) },
    fused_wg: { supports: (a, c) => fusable(a, c, false), launches: (a, c) => launchFused(a, c, false) },
    split: {
      scratch: (a, c) => matmulMultiOp.variants[matmulMultiOp.select(c, a.mm)]!.scratch?.(a.mm, c) ?? {},
      launches: (a, c) => [...embedFirst(a, c), ...matmulMultiOp.variants[matmulMultiOp.select(c, a.mm)]!.launches(a.mm, c), ...ropeKvOp.variants[ONLY]!.launches(a.rope, c)],
    },
  },
  ref: (a, h) => {
    const r = a.rope, m = a.mm;
    const d = refDims(r);
    if (a.embed) embedRef(h.step.ids, h.data(a.embed), h.data(m.x), m.x.cols);
    qkvRopeRef(h.data(m.x), m.norm ? { w: h.data(m.norm.w), eps: m.norm.eps, h: h.data(m.norm.h) } : null,
      m.parts.map(q => ({ w: h.data(q.w), y: h.data(q.y), OUT: q.w.shape[0]!, plane: 0, act: 'none' as const })), h.cap(m.x), m.x.cols,
      { kc: h.data(r.kc), vc: h.data(r.vc), table: h.data(r.table), aux: r.aux ? h.data(r.aux) : null, cursors: h.step.cursors, N: h.step.ids.length, d });
  },
});

/** The q|k|v projection of `mm`, then rope_kv: one dispatch where the fused variant runs. */
export function qkvRope(o: Backend, a: QkvRopeArgs): Promise<void> {
  return o.run(qkvRopeOp, a);
}
