// What the compile tests share: a GPU backend with a step begun, tensors and weights of any shape, and `built`,
// which makes an op variant's dispatches (pipelines and bind groups, by name) inside a validation scope, so
// bind-group errors (which do not throw) fail the test too. Nothing is dispatched.
import type { HostWeight, StateSpec, Tensor, Weight } from '../../src/backend/backend.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { stepShape, type Ctx, type Op } from '../../src/backend/op.ts';
import type { Dispatch } from '../../src/gpu/device.ts';
import { gpu } from '../helpers/gpu.ts';

let backend: GpuBackend | null = null;
let current: Ctx | null = null;

/** The select/launch context of the step begun by `step`. */
export function ctx(): Ctx {
  if (!current) throw new Error('no step begun');
  return current;
}

/** The shared backend (never destroyed: that would close the shared device). */
export function gpuBackend(): GpuBackend {
  if (!gpu) throw new Error('no GPU');
  return (backend ??= new GpuBackend(gpu));
}

/** Begin a step of sequences with these lengths (k kept rows); returns the backend. */
export function step(lens: number[], k = lens.length): GpuBackend {
  const o = gpuBackend();
  let start = 0;
  const cursors = lens.map((len, slot) => { const c = { slot, start, len, pos: 0 }; start += len; return c; });
  const layout = { ids: new Int32Array(start), cursors, keep: new Int32Array(k) };
  o.beginStep(layout);
  current = { adapter: o.adapter, step: stepShape(layout) };
  return o;
}

/** An activation of the current step. */
export function t(cols: number, opts: { planes?: number; rows?: 'n' | 'k'; name?: string } = {}): Tensor {
  return gpuBackend().act(opts.name ?? `compile ${cols}`, cols, opts);
}

const weights = new Map<string, Weight>();

/** A zero weight of this shape and storage dtype (16-bit dtypes only for matrices). */
export function w(shape: number[], dtype: HostWeight['dtype'] = 'f32'): Weight {
  const key = `${shape.join('x')}:${dtype}`;
  let x = weights.get(key);
  if (!x) {
    const n = shape.reduce((a, b) => a * b, 1);
    const host: HostWeight = dtype === 'f32' ? { shape, dtype, f32: new Float32Array(n) } : { shape, dtype, bits16: new Uint16Array(n) };
    x = gpuBackend().weight(`compile ${key}`, host, dtype !== 'f32');
    weights.set(key, x);
  }
  return x;
}

/** A state tensor of `cols` per slot (reallocates the backend's state: earlier state tensors are gone). */
export function state(cols: number, slots = 4): Tensor {
  const o = gpuBackend(), spec: StateSpec = { key: 'compile state', cols };
  o.allocState([spec], slots);
  return o.state(spec.key);
}

/** The dispatches of `op`'s `variant` (or its selected one) for `args`, inside a validation scope. */
export async function built<A>(what: string, op: Op<A>, args: A, variant?: string): Promise<Dispatch[]> {
  const o = gpuBackend();
  o.gpu.device.pushErrorScope('validation');
  let d: Dispatch[];
  try {
    d = await o.build(op, args, variant);
  } finally {
    const err = await o.gpu.device.popErrorScope();
    if (err) throw new Error(`${what}: ${err.message}`);
  }
  return d;
}
