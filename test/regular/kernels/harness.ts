// Runs one packed step of ops on the CPU backend (the reference, kernels/**/*.ref.ts) and on the GPU
// backend with the same inputs, and compares what comes back row by row.
//
// Every tensor is handled "packed": planes × rows × cols with rows = N ('n'), K ('k') or slots, because
// the plane stride (capacity × cols) differs between backends (GPU capacity is a multiple of 64).
// Outputs are pre-filled with NaN in their live rows (a row a kernel forgets to write fails the
// comparison) and with a sentinel in the GPU's padding rows, which must survive (no stray writes).
import { expect } from 'bun:test';
import type { Backend, Cursor, HostWeight, StateSpec, Tensor, Weight } from '../../../src/backend/backend.ts';
import { CpuBackend } from '../../../src/backend/cpu.ts';
import { GpuBackend } from '../../../src/backend/gpu.ts';
import { stepShape, type Adapter, type Ctx } from '../../../src/backend/op.ts';
import { expectClose, type Prng } from '../../helpers/allclose.ts';
import { gpu } from '../../helpers/gpu.ts';

/** Value of the GPU's padding rows (capacity > live rows); kernels must leave it alone. */
export const PAD = -7777.25;

export interface StepSpec { ids: number[]; cursors: Cursor[]; keep: number[] }

/** A step of n tokens in one sequence (slot 0), keeping the last row. */
export function simpleStep(n: number, keep: number[] = [n - 1]): StepSpec {
  return { ids: Array.from({ length: n }, (_, i) => i % 7), cursors: [{ slot: 0, start: 0, len: n }], keep };
}

/** A step of sequences with the given lengths and slots, packed back to back. */
export function packedStep(seqs: { slot: number; len: number }[], keep?: number[]): StepSpec {
  const cursors: Cursor[] = [];
  let start = 0;
  for (const s of seqs) { cursors.push({ slot: s.slot, start, len: s.len }); start += s.len; }
  return { ids: Array.from({ length: start }, (_, i) => i % 7), cursors, keep: keep ?? cursors.filter(c => c.len).map(c => c.start + c.len - 1) };
}

/** Host weight from f32 values, stored as `dtype` (bf16 rounds to nearest even, f16 flushes subnormals). */
export function hostWeight(values: Float32Array, shape: number[], dtype: 'f32' | 'bf16' | 'f16' = 'f32'): HostWeight {
  if (dtype === 'f32') return { shape, dtype, f32: values };
  return { shape, dtype, bits16: dtype === 'bf16' ? toBf16(values) : toF16(values) };
}

export function toBf16(v: Float32Array): Uint16Array {
  const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
  const out = new Uint16Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = u[i]!;
    out[i] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

export function toF16(v: Float32Array): Uint16Array {
  const h = new Float16Array(v.length);
  for (let i = 0; i < v.length; i++) h[i] = Math.abs(v[i]!) < 6.2e-5 ? 0 : v[i]!;   // no subnormals: GPUs may flush them
  return new Uint16Array(h.buffer);
}

/** The test's handle on one backend during one step. */
export class Io {
  readonly N: number;
  readonly K: number;
  constructor(readonly o: Backend, readonly step: StepSpec, readonly kind: 'cpu' | 'gpu') {
    this.N = step.ids.length;
    this.K = step.keep.length;
  }

  /** Live rows of t: N, K, or the slot count of a state tensor. */
  rows(t: Tensor): number {
    return t.rows === 'n' ? this.N : t.rows === 'k' ? this.K : this.o.capacity(t);
  }

  /** Write packed [planes, rows, cols] data (or NaN when absent) into t's live rows, PAD into its padding rows. */
  put(t: Tensor, packed?: Float32Array): void {
    const rows = this.rows(t), cap = this.o.capacity(t), C = t.cols;
    if (packed && packed.length !== t.planes * rows * C) throw new Error(`put: ${packed.length} values for ${t.planes}×${rows}×${C}`);
    const full = new Float32Array(t.planes * cap * C).fill(PAD);
    for (let p = 0; p < t.planes; p++) {
      const dst = full.subarray(p * cap * C, p * cap * C + rows * C);
      if (packed) dst.set(packed.subarray(p * rows * C, (p + 1) * rows * C)); else dst.fill(NaN);
    }
    this.o.write(t, full);
  }

  /** Read t's live rows packed, after checking that its padding rows still hold PAD. */
  async get(t: Tensor, what = 'tensor'): Promise<Float32Array> {
    const rows = this.rows(t), cap = this.o.capacity(t), C = t.cols;
    const full = await this.o.read(t);
    const out = new Float32Array(t.planes * rows * C);
    for (let p = 0; p < t.planes; p++) {
      out.set(full.subarray(p * cap * C, p * cap * C + rows * C), p * rows * C);
      if (t.rows === 'slots') continue;
      const pad = full.subarray(p * cap * C + rows * C, (p + 1) * cap * C);
      const bad = pad.findIndex(v => v !== PAD);
      if (bad >= 0) throw new Error(`${this.kind} ${what}: padding row ${rows + Math.floor(bad / C)} of plane ${p} was written (${pad[bad]})`);
    }
    return out;
  }

  weight(name: string, w: HostWeight, matrix = true): Weight { return this.o.weight(name, w, matrix); }
}

export interface Setup {
  /** State tensors and slot count (allocated before the step). */
  states?: StateSpec[];
  slots?: number;
  /** Initial contents of state tensors, [slots, cols] each. */
  init?: Record<string, Float32Array>;
}

export type Body = (io: Io) => Promise<Record<string, Tensor>>;

export interface Packed { data: Float32Array; shape: number[] }   // shape [planes, rows, cols]

/** Run `body` in one step on backend o; return the packed contents of the tensors it names. */
export async function runOn(o: Backend, kind: 'cpu' | 'gpu', step: StepSpec, setup: Setup, body: Body): Promise<Record<string, Packed>> {
  if (setup.states) {
    o.allocState(setup.states, setup.slots ?? 1);
    for (const [key, data] of Object.entries(setup.init ?? {})) o.write(o.state(key), data);
  }
  o.beginStep({ ids: Int32Array.from(step.ids), cursors: step.cursors, keep: Int32Array.from(step.keep) });
  const io = new Io(o, step, kind);
  const outs = await body(io);
  const res: Record<string, Packed> = {};
  for (const [name, t] of Object.entries(outs)) res[name] = { data: await io.get(t, name), shape: [t.planes, io.rows(t), t.cols] };
  return res;
}

/** A fresh GPU backend on the shared device (never destroyed: destroy() would close the shared device). */
export function gpuBackend(): GpuBackend {
  if (!gpu) throw new Error('no GPU');
  return new GpuBackend(gpu);
}

/** The select context of a step of sequences with these lengths (k kept rows) on an adapter. */
export function selectCtx(adapter: Adapter, lens: number[], k = lens.length): Ctx {
  const s = packedStep(lens.map((len, slot) => ({ slot, len })));
  return { adapter, step: stepShape({ ids: Int32Array.from(s.ids), cursors: s.cursors, keep: new Int32Array(k) }) };
}

export interface CheckOpts { rtol?: number; seed?: Prng; what?: string }

/**
 * Run `body` on the CPU and on the GPU and compare every named output (rtol 1e-4 relative to the
 * largest reference value). FLA_TEST_VERBOSE=1 prints each error. FLA_TEST_PERTURB=1 shifts one
 * reference value by 1e-3 of the largest: every comparison must then fail (a self-check that the tests can fail).
 */
export async function checkBoth(step: StepSpec, setup: Setup, body: Body, opts: CheckOpts = {}): Promise<Record<string, Packed>> {
  const want = await runOn(new CpuBackend(), 'cpu', step, setup, body);
  const got = await runOn(gpuBackend(), 'gpu', step, setup, body);
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const name of Object.keys(want)) {
    const w = want[name]!.data, shape = want[name]!.shape;
    expect(got[name]!.shape).toEqual(shape);
    for (const v of w) if (!Number.isFinite(v)) throw new Error(`${opts.what ?? ''} ${name}: the CPU reference produced ${v} (bad test inputs?)`);
    if (process.env.FLA_TEST_PERTURB === '1') {
      let m = 0;
      for (const v of w) m = Math.max(m, Math.abs(v));
      w[Math.floor(w.length / 2)]! += 1e-3 * (m || 1);
    }
    const what = `${opts.what ? opts.what + ' ' : ''}${name}`;
    const st = expectClose(got[name]!.data, w, { rtol: opts.rtol ?? 1e-4, what, seed: opts.seed, shape });
    if (process.env.FLA_TEST_VERBOSE === '1') console.log(`${what}: max|Δ|/max|want| = ${st.rel.toExponential(2)}`);
  }
  return want;
}
