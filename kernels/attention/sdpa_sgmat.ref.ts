// CPU emulation of sdpa_sgmat.wgsl's arithmetic (sdpa's flash_sgmat variant), for measuring its error against
// sdpaRef on any machine: operands split into f16 hi + lo (hi = x rounded to 11 significant bits, lo = f16(x − hi);
// P split as P·2¹³), each product hi·hi + hi·lo + lo·hi accumulated in f32 per 16-wide k step (the tensor cores'
// exact order is not modelled), the online softmax over BC-key tiles as the kernel runs it. f16 subnormals kept.
import type { Cursor } from '../../src/util/step.ts';
import { kvValues, type SdpaDims } from './sdpa.ref.ts';

const f32 = Math.fround, f16 = Math.f16round;
const u32 = new Uint32Array(1), fl = new Float32Array(u32.buffer);
/** x rounded to 11 significant bits (ties away from zero), as sdpa_sgmat.wgsl's hi11 */
function hi11(x: number): number { fl[0] = x; u32[0] = (u32[0]! + 0x1000) & 0xffffe000; return fl[0]!; }
let dropLo = false;
function split(x: number): [number, number] { const h = f16(hi11(f32(x))); return [h, dropLo ? 0 : f16(f32(x) - h)]; }

/** Σ_i a_i·b_i as the kernel's three f16 products, accumulated in f32 in steps of 16 */
function dot3(a: [number, number][], b: [number, number][]): number {
  let acc = 0;
  for (let k0 = 0; k0 < a.length; k0 += 16) {
    let part = 0;
    for (let k = k0; k < Math.min(a.length, k0 + 16); k++) part += a[k]![0] * b[k]![1] + a[k]![1] * b[k]![0] + a[k]![0] * b[k]![0];
    acc = f32(acc + f32(part));
  }
  return acc;
}

/** out as sdpaRef, with sdpa_sgmat's arithmetic; single: lo dropped (one f16 product each, for comparison) */
export function sdpaSgmatRef(q: Float32Array, kc: Float32Array, vc: Float32Array, out: Float32Array, cursors: Cursor[], d: SdpaDims,
  opts: { BC?: number; single?: boolean } = {}): void {
  const BC = opts.BC ?? 32;
  dropLo = opts.single ?? false;
  const { H, KV, D, ctx } = d, G = H / KV, KVD = KV * D, PSC = 8192;
  const K = kvValues(kc, d.kv ?? 'f32'), V = kvValues(vc, d.kv ?? 'f32');
  for (const cur of cursors) for (let t = cur.start; t < cur.start + cur.len; t++) {
    const p = (cur.pos ?? 0) + t - cur.start, lo = d.window > 0 ? Math.max(0, p - d.window + 1) : 0;
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / G), qs = Array.from(q.subarray((t * H + h) * D, (t * H + h + 1) * D), split);
      let m = -3e38, l = 0;
      const o = new Float64Array(D);
      for (let jb = Math.floor(lo / BC) * BC; jb <= p; jb += BC) {
        const s: number[] = [];
        for (let j = jb; j < jb + BC; j++) {
          if (j > p || j < lo) { s.push(-3e38); continue; }
          const ko = (cur.slot * ctx + j) * KVD + kh * D;
          s.push(f32(dot3(qs, Array.from(K.subarray(ko, ko + D), split)) * d.scale));
        }
        const mn = Math.max(m, ...s), corr = f32(Math.exp(m - mn));
        m = mn;
        const P = s.map((x, i) => (jb + i > p || jb + i < lo ? 0 : f32(Math.exp(x - mn))));
        l = f32(l * corr + P.reduce((a, b) => f32(a + b), 0));
        const ps = P.map(x => split(x * PSC));
        for (let e = 0; e < D; e++) {
          const vs = P.map((_, i) => split(jb + i <= p ? V[(cur.slot * ctx + jb + i) * KVD + kh * D + e]! : 0));
          o[e] = f32(f32(o[e]! * corr) + f32(dot3(ps, vs) / PSC));
        }
      }
      for (let e = 0; e < D; e++) out[(t * H + h) * D + e] = o[e]! / l;
    }
  }
}
