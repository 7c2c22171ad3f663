// The CPU backend: every op is its plain TypeScript reference from kernels/*.ref.ts. Slow but exact f32;
// used for --device cpu, as the fallback when no adapter exists, and as the oracle in tests.
import { embedRef, gatherRowsRef } from '../../kernels/embed/embed.ref.ts';
import { matmulRef } from '../../kernels/matmul/matmul.ref.ts';
import { layerNormRef } from '../../kernels/norm/layer_norm.ref.ts';
import { shiftStoreRef, tokenShiftRef } from '../../kernels/rwkv7/token_shift.ref.ts';
import { wkv7Ref } from '../../kernels/rwkv7/wkv7.ref.ts';
import { bf16ToF32, f16ToF32 } from '../load/safetensors.ts';
import type { Act, Backend, HostWeight, StateSpec, StepLayout, Tensor, Weight } from './backend.ts';

class CpuWeight implements Weight {
  constructor(readonly shape: readonly number[], readonly data: Float32Array) {}
}

class CpuTensor implements Tensor {
  constructor(readonly data: Float32Array, readonly cols: number, readonly planes: number, readonly rows: 'n' | 'k' | 'slots', readonly cap: number) {}
}

const T = (t: Tensor) => t as CpuTensor;
const W = (w: Weight) => w as CpuWeight;

export class CpuBackend implements Backend {
  readonly name = 'cpu';
  private states = new Map<string, CpuTensor>();
  private slots = 0;
  private step: StepLayout | null = null;
  private acts = new Map<string, CpuTensor>();

  maxStepTokens(): number { return 1 << 16; }

  weight(_name: string, w: HostWeight): Weight {
    let f = w.f32;
    if (!f) f = w.dtype === 'bf16' ? bf16ToF32(w.bits16!) : f16ToF32(w.bits16!);
    return new CpuWeight(w.shape, f);
  }

  allocState(specs: StateSpec[], slots: number): void {
    this.slots = slots;
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

  copySlot(from: number, to: number): void {
    for (const s of this.states.values()) s.data.copyWithin(to * s.cols, from * s.cols, (from + 1) * s.cols);
  }

  beginStep(step: StepLayout): void {
    this.step = step;
    this.acts.clear();
  }

  private get s(): StepLayout {
    if (!this.step) throw new Error('no step begun');
    return this.step;
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

  async embed(table: Weight, out: Tensor): Promise<void> {
    embedRef(this.s.ids, W(table).data, T(out).data, out.cols);
  }

  async layerNorm(x: Tensor, w: Weight, b: Weight | null, eps: number, out: Tensor): Promise<void> {
    layerNormRef(T(x).data, W(w).data, b ? W(b).data : null, T(out).data, T(x).cap, x.cols, eps);
  }

  async matmul(x: Tensor, w: Weight, bias: Weight | null, act: Act, out: Tensor, accumulate = false): Promise<void> {
    const [OUT, IN] = w.shape as [number, number];
    matmulRef(T(x).data, W(w).data, bias ? W(bias).data : null, T(out).data, T(x).cap, IN, OUT, act, accumulate);
  }

  async tokenShift(h: Tensor, state: Tensor, mix: Weight, out: Tensor): Promise<void> {
    tokenShiftRef(T(h).data, T(state).data, W(mix).data, T(out).data, this.s.cursors, h.cols, out.planes, T(out).cap);
  }

  async shiftStore(h: Tensor, state: Tensor): Promise<void> {
    shiftStoreRef(T(h).data, T(state).data, this.s.cursors, h.cols);
  }

  async wkv7(a: Parameters<Backend['wkv7']>[0]): Promise<void> {
    const proj = T(a.proj);
    wkv7Ref(proj.data, T(a.vfirst).data, a.vmix ? T(a.vmix).data : new Float32Array(0), W(a.params).data, T(a.state).data, T(a.out).data,
      this.s.cursors, { C: a.out.cols, D: a.D, cap: proj.cap, first: a.vmix === null, fuseNorm: a.fuseNorm, gnEps: a.gnEps });
  }

  async gatherKept(x: Tensor, out: Tensor): Promise<void> {
    gatherRowsRef(T(x).data, this.s.keep, T(out).data, x.cols);
  }

  write(t: Tensor, data: Float32Array): void { T(t).data.set(data.subarray(0, T(t).data.length)); }
  async read(t: Tensor): Promise<Float32Array> { return T(t).data.slice(); }
  capacity(t: Tensor): number { return T(t).cap; }

  async endStep(logits: Tensor): Promise<Float32Array> {
    const out = T(logits).data.slice();
    this.step = null;
    return out;
  }

  destroy(): void { this.states.clear(); this.acts.clear(); }
}
