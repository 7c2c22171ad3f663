// The CPU backend: ops run their plain TypeScript references (kernels/*.ref.ts) on these arrays. Slow but exact f32;
// used for --device cpu, as the fallback when no adapter exists, and as the oracle in tests.
import { bf16ToF32, dequantFp8, f16ToF32 } from '../util/dtype.ts';
import { checkKnobs } from '../util/knobs.ts';
import { keepsAll, snapshotParts, type Backend, type HostWeight, type Snapshot, type StateSpec, type StepLayout, type Tensor, type Weight } from './backend.ts';
import type { Adapter, Host, Op } from './op.ts';

class CpuWeight implements Weight {
  readonly dtype = 'f32' as const;
  constructor(readonly shape: readonly number[], readonly data: Float32Array) {}
}

class CpuTensor implements Tensor {
  constructor(readonly data: Float32Array, readonly cols: number, readonly planes: number, readonly rows: 'n' | 'k' | 'slots', readonly cap: number) {}
}

class CpuSnapshot implements Snapshot {
  constructor(readonly depth: number, readonly data: Float32Array) {}
  get bytes(): number { return this.data.byteLength; }
}

const T = (t: Tensor) => t as CpuTensor;

function hostData(t: Tensor | Weight): Float32Array {
  if (t instanceof CpuTensor || t instanceof CpuWeight) return t.data;
  throw new Error('cpu backend: a tensor of another backend');
}

export class CpuBackend implements Backend {
  readonly kind = 'cpu' as const;
  readonly name = 'cpu';
  private states = new Map<string, CpuTensor>();
  private slots = 0;
  private layout: StepLayout | null = null;
  private acts = new Map<string, CpuTensor>();
  readonly adapter: Adapter = {
    kind: 'cpu', type: 'cpu', f16: false, subgroups: false, subgroupSize: 1,
    maxInvocations: Infinity, maxWorkgroupStorage: Infinity, maxBinding: Infinity, features: new Set(),
  };

  constructor() { checkKnobs(); }

  /** Ops run their reference on host arrays (every variant computes the same function). */
  async run<A>(op: Op<A>, a: A): Promise<void> {
    op.check?.(a);
    const host: Host = { data: hostData, cap: t => T(t).cap, step: this.s };
    op.ref(a, host);
  }

  async stepLimit(_dryRun?: () => Promise<unknown>): Promise<number> { return 1 << 16; }

  private weightBytes = 0;
  /** Bytes of the weights held (f32 here), as GpuBackend counts what it uploaded: fla bench's header and roofline. */
  get uploadedBytes(): number { return this.weightBytes; }

  weight(_name: string, w: HostWeight): Weight {
    if (w.synthetic) {
      const n = w.shape.reduce((a, b) => a * b, 1), f = new Float32Array(n);
      let s = w.synthetic.seed >>> 0 || 1;
      for (let i = 0; i < n; i++) { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; f[i] = ((s >>> 0) / 4294967296 * 2 - 1) * w.synthetic.scale; }
      this.weightBytes += f.byteLength;
      return new CpuWeight(w.shape, f);
    }
    let f = w.f32;
    if (!f && w.fp8) f = dequantFp8(w.fp8, w.shape.slice(0, -1).reduce((a, b) => a * b, 1), w.shape.at(-1)!);
    if (!f) f = w.dtype === 'bf16' ? bf16ToF32(w.bits16!) : f16ToF32(w.bits16!);
    this.weightBytes += f.byteLength;
    return new CpuWeight(w.shape, f);
  }

  stateSpecs: readonly StateSpec[] = [];

  allocState(specs: StateSpec[], slots: number): void {
    this.slots = slots;
    this.stateSpecs = specs.slice();
    this.states.clear();
    for (const s of specs) this.states.set(s.key, new CpuTensor(new Float32Array(s.cols * slots), s.cols, 1, 'slots', slots));
  }

  state(key: string): Tensor {
    const s = this.states.get(key);
    if (!s) throw new Error(`no state ${key}`);
    return s;
  }

  resetSlot(slot: number): void {
    for (const s of this.states.values()) s.data.fill(0, slot * s.cols, (slot + 1) * s.cols);
  }

  snapshot(slot: number, depth: number): Snapshot {
    const parts = snapshotParts(this.stateSpecs, depth), data = new Float32Array(parts.reduce((a, b) => a + b, 0));
    let off = 0;
    this.stateSpecs.forEach((sp, i) => {
      const s = this.states.get(sp.key)!;
      data.set(s.data.subarray(slot * s.cols, slot * s.cols + parts[i]!), off);
      off += parts[i]!;
    });
    return new CpuSnapshot(depth, data);
  }

  restore(snap: Snapshot, slot: number): void {
    const { data, depth } = snap as CpuSnapshot, parts = snapshotParts(this.stateSpecs, depth);
    let off = 0;
    this.stateSpecs.forEach((sp, i) => {
      const s = this.states.get(sp.key)!;
      s.data.set(data.subarray(off, off + parts[i]!), slot * s.cols);
      off += parts[i]!;
    });
  }

  async readSnapshot(snap: Snapshot): Promise<Float32Array> { return (snap as CpuSnapshot).data.slice(); }
  uploadSnapshot(data: Float32Array, depth: number): Snapshot { return new CpuSnapshot(depth, data.slice()); }
  freeSnapshot(): void {}

  readonly feedsIds = false;

  beginStep(step: StepLayout): void {
    this.layout = step;
    this.acts.clear();
  }

  private get s(): StepLayout {
    if (!this.layout) throw new Error('no step begun');
    return this.layout;
  }

  act(name: string, cols: number, opts: { planes?: number; rows?: 'n' | 'k' } = {}): Tensor {
    const planes = opts.planes ?? 1, rows = opts.rows ?? 'n';
    const cap = rows === 'n' ? this.s.ids.length : this.s.keep.length;
    const key = `${name}:${cols}:${planes}:${rows}`;
    let t = this.acts.get(key);
    if (!t) { t = new CpuTensor(new Float32Array(planes * cap * cols), cols, planes, rows, cap); this.acts.set(key, t); }
    return t;
  }

  plane(t: Tensor, i: number): Tensor {
    const c = T(t), n = c.cap * c.cols;
    return new CpuTensor(c.data.subarray(i * n, (i + 1) * n), c.cols, 1, c.rows, c.cap);
  }

  keptView(x: Tensor): Tensor | null {
    const c = T(x);
    if (c.rows !== 'n' || c.planes !== 1 || !keepsAll(this.s)) return null;
    return new CpuTensor(c.data, c.cols, 1, 'k', c.cap);
  }

  recording(): null { return null; }
  replay(): boolean { return false; }

  write(t: Tensor, data: Float32Array): void { T(t).data.set(data.subarray(0, T(t).data.length)); }
  async read(t: Tensor): Promise<Float32Array> { return T(t).data.slice(); }
  capacity(t: Tensor): number { return T(t).cap; }

  async endStep(logits: Tensor): Promise<Float32Array> {
    const out = T(logits).data.slice();
    this.layout = null;
    // The CPU ops never wait for anything, so a generation would never let the event loop run: no SIGINT handler,
    // no server requests. One macrotask turn per step lets them in (the GPU backend waits on its readback instead).
    await new Promise<void>(r => setImmediate(r));
    return out;
  }

  destroy(): void { this.states.clear(); this.acts.clear(); }
}
