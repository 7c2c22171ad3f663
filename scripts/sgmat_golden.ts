// Whole-model error of the f16 GEMM variants on the CPU (issue 16): every golden fixture through the CPU backend with
// the matmul op (and matmul_multi's projections, which run the matmul op's variants above 16 rows) computed by the
// f16 arithmetic of matmul_f16.ref.ts, weights rounded to f16 as the GPU backend converts them; the golden measure
// of test/helpers/golden.ts (largest max|Δ|/max|ref| of logits, cached decode and split prefill) per mode, beside the
// f32 reference's. Also counts, per fixture, the matrix values bf16 → f16 does not keep (f16 subnormals rounded,
// beyond f16's range). Only this script swaps the references (it patches the op objects in its own process).
//   bun scripts/sgmat_golden.ts [--rows=17] [fixture …]    --rows=17: f16 arithmetic only for steps of ≥ 17 rows
//   (the GPU default, SGMAT_MIN_ROWS); default: every step (FLA_KERNEL_MATMUL=sgmat forces that)
//   bun scripts/sgmat_golden.ts --rows=17 --varlen [fixture …]   the varlen suite's packed-vs-alone error under that
//   emulation
//   bun scripts/sgmat_golden.ts --gpu [fixture …]   the GPU backend as it runs (no references swapped): its golden
//   error per fixture, with the matmul variants it chose (FLA_TENSOR_CORES=0 for the f32 path)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { matmulOp, type MatmulArgs } from '../kernels/matmul/matmul.ts';
import { matmulMultiOp, type MatmulMultiArgs } from '../kernels/matmul/matmul_gemv_multi.ts';
import { matmulF16Ref, type F16RefOptions } from '../kernels/matmul/matmul_f16.ref.ts';
import { matmulRef } from '../kernels/matmul/matmul.ref.ts';
import { SGMAT_FLUSH_K } from '../kernels/matmul/matmul_sgmat.ts';
import { rmsNormRef } from '../kernels/norm/rms_norm.ref.ts';
import { siluMulRef } from '../kernels/elementwise/silu_mul.ref.ts';
import type { Host } from '../src/backend/op.ts';
import { CpuBackend } from '../src/backend/cpu.ts';
import type { HostWeight } from '../src/backend/backend.ts';
import { bf16ToF16, f16Refused } from '../src/util/f16.ts';
import { fixture } from '../test/helpers/fixtures.ts';
import { goldenError, packedErrors, TOLERANCE } from '../test/helpers/golden.ts';

const minRows = Number(process.argv.find(a => a.startsWith('--rows='))?.slice(7) ?? 1);
const names = process.argv.slice(2).filter(a => !a.startsWith('--'));

interface Mode { name: string; mode: 'split' | 'single' | 'f32'; opt: F16RefOptions }
const TC = { block: 16, extraBits: 3 };
const MODES: Mode[] = [
  { name: 'f32 on f16 weights', mode: 'f32', opt: {} },
  { name: 'sgmat', mode: 'split', opt: { mma: TC, chunk: SGMAT_FLUSH_K } },
  { name: 'sgmat one chain', mode: 'split', opt: { mma: TC } },
  { name: 'f16split', mode: 'split', opt: {} },
  { name: 'sgmat_f16', mode: 'single', opt: { mma: TC } },
];

const f16Of = new WeakMap<Float32Array, Float32Array | null>();
function f16Weight(w: Float32Array): Float32Array | null {
  let v = f16Of.get(w);
  if (v === undefined) { v = w.some(x => !(Math.abs(x) <= 65504)) ? null : Float32Array.from(w, Math.f16round); f16Of.set(w, v); }
  return v;
}
const rows = (h: Host, t: { rows: string }) => t.rows === 'k' ? h.step.keep.length : h.step.ids.length;

// every bf16 matrix as the GPU backend loads it for the f16 GEMMs: f16 where f16Refused allows (embeddings, LoRA and
// projections alike: every op then reads the f16 values), else bf16; f16Of then finds them exact
const origWeight = CpuBackend.prototype.weight;
CpuBackend.prototype.weight = function (this: CpuBackend, name: string, w: HostWeight, matrix?: boolean) {
  if (current && matrix && w.dtype === 'bf16' && w.bits16 && !w.synthetic) {
    const c = bf16ToF16(w.bits16);
    if (!f16Refused(c)) return origWeight.call(this, name, { ...w, dtype: 'f16', bits16: c.data });
  }
  return origWeight.call(this, name, w);
} as typeof CpuBackend.prototype.weight;

const origMatmul = matmulOp.ref, origMulti = matmulMultiOp.ref;
let current: Mode | null = null;
/** y = x·Wᵀ with f16 arithmetic where the GPU would run the f16 GEMM; false where it would not. */
function f16Matmul(x: Float32Array, W: Float32Array, shape: readonly number[], bias: Float32Array | null, y: Float32Array, R: number, act: MatmulArgs['act'], acc: boolean): boolean {
  const wf = f16Weight(W);
  if (!current || !wf) return false;
  if (current.mode === 'f32') matmulRef(x, wf, bias, y, R, shape[1]!, shape[0]!, act, acc);
  else matmulF16Ref(x, wf, bias, y, R, shape[1]!, shape[0]!, current.mode, act, acc, current.opt);
  return true;
}
matmulOp.ref = (a: MatmulArgs, h: Host) => {
  if (rows(h, a.x) >= minRows && f16Matmul(h.data(a.x), h.data(a.w), a.w.shape, a.bias ? h.data(a.bias) : null, h.data(a.y), h.cap(a.x), a.act, a.accumulate)) return;
  origMatmul(a, h);
};
matmulMultiOp.ref = (a: MatmulMultiArgs, h: Host) => {
  // the GPU's 'split' path (above 16 rows): the norm, each part through the matmul op, then silu·mul
  if (!current || rows(h, a.x) < Math.max(17, minRows) || a.parts.some(q => !f16Weight(h.data(q.w)))) return origMulti(a, h);
  const R = h.cap(a.x), IN = a.x.cols, x = h.data(a.x);
  if (a.norm) rmsNormRef(x, h.data(a.norm.w), h.data(a.norm.h), R, IN, { eps: a.norm.eps });
  for (const q of a.parts) {
    const inp = a.norm ? h.data(a.norm.h) : x.subarray((q.plane ?? 0) * R * IN, ((q.plane ?? 0) + 1) * R * IN);
    f16Matmul(inp, h.data(q.w), q.w.shape, null, h.data(q.y), R, q.act ?? a.act, a.accumulate);
  }
  if (a.swiglu) siluMulRef(h.data(a.parts[0]!.y), h.data(a.parts[1]!.y), h.data(a.swiglu.out), R * a.parts[0]!.w.shape[0]!);
};

/** Per fixture: matrices, values, subnormal-rounded and out-of-range values of bf16 → f16, and the worst tensor. */
function conversion(dir: string): string {
  const buf = readFileSync(join(dir, 'model.safetensors'));
  const n = Number(buf.readBigUInt64LE(0)), header = JSON.parse(buf.subarray(8, 8 + n).toString());
  let mats = 0, vals = 0, rounded = 0, over = 0, worst = '', worstN = 0, withRounded = 0, maxRel = 0;
  const kept: string[] = [];
  for (const [name, t] of Object.entries(header) as [string, any][]) {
    if (name === '__metadata__' || t.dtype !== 'BF16' || t.shape.length !== 2) continue;
    const [a, b] = t.data_offsets as [number, number];
    const bytes = buf.subarray(8 + n + a, 8 + n + b), bits = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const c = bf16ToF16(bits);
    mats++; vals += bits.length; rounded += c.rounded; over += c.overflow;
    if (c.rounded) withRounded++;
    if (c.rounded > worstN) { worstN = c.rounded; worst = `${name} ${c.rounded}/${bits.length}`; }
    const why = f16Refused(c);
    if (why) kept.push(`${name} (${why})`); else maxRel = Math.max(maxRel, c.rel);
  }
  return `${mats} matrices, ${vals} values: ${rounded} rounded (f16 subnormal, |Δ| ≤ 2^-25 each; in ${withRounded} matrices, most ${worst || '-'}), ${over} beyond f16; `
    + `kept bf16: ${kept.join(', ') || 'none'}; largest rel of the converted ${maxRel.toExponential(1)}`;
}

const list = names.length ? names : Object.keys(TOLERANCE);
if (process.argv.includes('--varlen')) {
  // the varlen suite's packed = alone measure with the GPU default emulated (--rows=17: packed steps of ≥ 17 rows
  // take the sgmat arithmetic, a sequence alone below that the f32 path on f16 weights)
  for (const name of list) {
    const dir = fixture(name);
    if (!dir) continue;
    current = MODES[1]!;
    const errs = await packedErrors(dir, 'cpu');
    current = null;
    console.log(`${name}: packed vs alone, sgmat above ${minRows - 1} rows: ${errs.map(e => `${e.len} tok ${e.err.toExponential(2)}`).join(', ')}`);
  }
  process.exit(0);
}
if (process.argv.includes('--gpu')) {
  const { GpuBackend } = await import('../src/backend/gpu.ts');
  const { gpu } = await import('../test/helpers/gpu.ts');
  if (!gpu) { console.log('no GPU'); process.exit(1); }
  const chosen = new Set<string>(), variant = GpuBackend.prototype.variant;
  GpuBackend.prototype.variant = function (this: InstanceType<typeof GpuBackend>, op: any, a: any, c?: any) {
    const v = variant.call(this, op, a, c);
    if (op.name === 'matmul') chosen.add(v);
    return v;
  };
  for (const name of list) {
    const dir = fixture(name);
    if (!dir) continue;
    chosen.clear();
    const e = await goldenError(dir, 'gpu');
    console.log(`${name} on ${gpu.summary.name} (FLA_TENSOR_CORES=${process.env.FLA_TENSOR_CORES ?? 'unset'}): ${e.toExponential(2)} (tolerance ${TOLERANCE[name]}; matmul variants ${[...chosen].sort().join(', ')})`);
  }
  process.exit(0);
}
for (const name of list) {
  const dir = fixture(name);
  if (!dir) continue;
  current = null;
  const cells = [`f32 ${(await goldenError(dir, 'cpu')).toExponential(2)}`];
  for (const m of MODES) { current = m; cells.push(`${m.name} ${(await goldenError(dir, 'cpu')).toExponential(2)}`); }
  current = null;
  console.log(`${name}: ${cells.join(', ')} (tolerance ${TOLERANCE[name]}); ${conversion(dir)}`);
}
for (const m of ['kjv-llama', 'kjv-rwkv7']) {
  const dir = join(fixture('llama-tiny') ?? '', '..', '..', 'models', m);
  try { console.log(`${m}: ${conversion(dir)}`); } catch { /* not here */ }
}
process.exit(0);
