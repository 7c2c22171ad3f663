// Error of the f16 split GEMM's arithmetic (issue 16), on the CPU: y = W·x for realistic activations, each method
// against an f64 dot product of the same (f16) weights, as max over rows of max_o |Δ| / max_o |y| (the kernel tests'
// measure) and the median over rows. Methods:
//   f32     sequential f32 FMA accumulation (the f32 GEMM's arithmetic: matmul_gemm.wgsl, one chain per output)
//   ref     matmul_f16.ref.ts 'split' (row scale, hi + lo, one f32 accumulator, sequential, round to nearest)
//   single  matmul_f16.ref.ts 'single'
//   noscale the split without the per-row power-of-two scale (the hypothesis of lo falling into f16 subnormals)
//   tc      the split as the tensor cores sum it, one chain (matmul_sgmat before SGMAT_FLUSH_K) — a model, not
//           bit-exact (matmul_f16.ref.ts `mma`): each multiply-accumulate of 16 products into the f32 accumulator
//           aligns the 17 terms to the largest exponent, drops what falls below 24 + `extra` bits of it and truncates
//           the sum to f32 (round toward zero); extra 3 reproduces the H200's 1.3e-5 / 2.3e-5 at K 4096 / 8192
//   tc+flush  tc with the accumulator restarted every SGMAT_FLUSH_K and added into f32 sums (matmul_sgmat with the pre-pass)
//   tc+fused  tc+flush with the row scale taken per restart block (matmul_sgmat's fused x split, FLA_SGMAT_FUSE=1)
//   bun scripts/sgmat_error.ts [--extra=3] [--quick]
import { matmulF16Ref } from '../kernels/matmul/matmul_f16.ref.ts';
import { SGMAT_FLUSH_K } from '../kernels/matmul/matmul_sgmat.ts';
import { prng, randn } from '../test/helpers/allclose.ts';

const quick = process.argv.includes('--quick');
const EXTRA = Number(process.argv.find(a => a.startsWith('--extra='))?.slice(8) ?? 3);
const f32 = Math.fround, f16 = Math.f16round;

type Method = (x: Float32Array, w: Float32Array, R: number, IN: number, OUT: number) => Float64Array;

const exact: Method = (x, w, R, IN, OUT) => {
  const y = new Float64Array(R * OUT);
  for (let r = 0; r < R; r++) for (let o = 0; o < OUT; o++) {
    let s = 0;   // f16 × f32 products summed in f64: error ~2^-53 relative, far below every method here
    for (let i = 0; i < IN; i++) s += x[r * IN + i]! * w[o * IN + i]!;
    y[r * OUT + o] = s;
  }
  return y;
};

const fma32: Method = (x, w, R, IN, OUT) => {
  const y = new Float64Array(R * OUT);
  for (let r = 0; r < R; r++) for (let o = 0; o < OUT; o++) {
    let s = 0;
    for (let i = 0; i < IN; i++) s = f32(s + x[r * IN + i]! * w[o * IN + i]!);   // f32 × f32 is exact in f64: an FMA
    y[r * OUT + o] = s;
  }
  return y;
};

const refOf = (mode: 'split' | 'single'): Method => (x, w, R, IN, OUT) => {
  const y = new Float32Array(R * OUT);
  matmulF16Ref(x, w, null, y, R, IN, OUT, mode);
  return Float64Array.from(y);
};

const noscale: Method = (x, w, R, IN, OUT) => {
  const y = new Float64Array(R * OUT), hi = new Float64Array(IN), lo = new Float64Array(IN);
  for (let r = 0; r < R; r++) {
    for (let i = 0; i < IN; i++) { const v = f32(x[r * IN + i]!), h = f16(v); hi[i] = h; lo[i] = f16(f32(v - h)); }
    for (let o = 0; o < OUT; o++) {
      let s = 0;
      for (let i = 0; i < IN; i++) { s = f32(s + w[o * IN + i]! * hi[i]!); s = f32(s + w[o * IN + i]! * lo[i]!); }
      y[r * OUT + o] = s;
    }
  }
  return y;
};

/** The split as matmul_sgmat runs it on tensor cores (the `mma` model of matmul_f16.ref.ts); flush: SGMAT_FLUSH_K. */
const tc = (flush: boolean, mode: 'split' | 'single' = 'split', blockScale = false): Method => (x, w, R, IN, OUT) => {
  const y = new Float32Array(R * OUT);
  matmulF16Ref(x, w, null, y, R, IN, OUT, mode, 'none', false, { mma: { block: 16, extraBits: EXTRA }, chunk: flush ? SGMAT_FLUSH_K : 0, blockScale });
  return Float64Array.from(y);
};

/** Activations, R rows of IN. */
function acts(kind: string, R: number, IN: number, tag: string): Float32Array {
  const rng = prng(tag), x = new Float32Array(R * IN);
  for (let i = 0; i < x.length; i++) {
    const n = rng.normal();
    switch (kind) {
      case 'normal': x[i] = n; break;
      case 'heavy': x[i] = n / Math.sqrt(Math.max(1e-3, (rng.normal() ** 2 + rng.normal() ** 2) / 2)); break;   // Student t, ν = 2
      case 'mixed': x[i] = Math.sign(n) * 10 ** rng.uniform(-6, 3); break;                                     // 1e-6 … 1e3 in one row
      case 'small': x[i] = n * 1e-3; break;                                                                   // |x| ≲ 0.004: lo is subnormal unscaled
      case 'outlier': x[i] = n * ((i % IN) % 97 === 3 ? 300 : 1); break;                                      // LLM-like outlier channels
      case 'postnorm': x[i] = n * (0.2 + (i % IN % 13) / 13); break;                                          // a norm's output with per-channel gains
    }
  }
  return x;
}

function errs(y: Float64Array, want: Float64Array, R: number, OUT: number): { max: number; med: number } {
  const e: number[] = [];
  for (let r = 0; r < R; r++) {
    let d = 0, m = 0;
    for (let o = 0; o < OUT; o++) { d = Math.max(d, Math.abs(y[r * OUT + o]! - want[r * OUT + o]!)); m = Math.max(m, Math.abs(want[r * OUT + o]!)); }
    e.push(m ? d / m : 0);
  }
  e.sort((a, b) => a - b);
  return { max: e.at(-1)!, med: e[Math.floor(e.length / 2)]! };
}

const methods: [string, Method][] = [
  ['f32', fma32], ['ref', refOf('split')], ['single', refOf('single')], ['noscale', noscale], ['tc', tc(false)], ['tc+flush', tc(true)], ['tc+fused', tc(true, 'split', true)],
];
const KINDS = ['normal', 'heavy', 'mixed', 'small', 'outlier', 'postnorm'];
const INS = quick ? [128, 2048] : [128, 2048, 4096, 8192];
console.log(`max (median) over rows of max|Δ|/max|y| against f64; tensor-core model with ${EXTRA} extra alignment bits`);
console.log(`| activations | IN | ${methods.map(m => m[0]).join(' | ')} |`);
console.log(`|---|---|${methods.map(() => '---').join('|')}|`);
for (const IN of INS) for (const kind of KINDS) {
  const R = IN >= 4096 ? 4 : 8, OUT = IN >= 4096 ? 24 : 48;
  const x = acts(kind, R, IN, `${kind} ${IN}`);
  const w = Float32Array.from(randn(OUT * IN, prng(`w ${IN}`), 1 / Math.sqrt(IN)), v => f16(new Float32Array(new Uint32Array([new Uint32Array(new Float32Array([v]).buffer)[0]! & 0xffff0000]).buffer)[0]!));
  const want = exact(x, w, R, IN, OUT);
  const cells = methods.map(([, m]) => { const e = errs(m(x, w, R, IN, OUT), want, R, OUT); return `${e.max.toExponential(1)} (${e.med.toExponential(1)})`; });
  console.log(`| ${kind} | ${IN} | ${cells.join(' | ')} |`);
}
