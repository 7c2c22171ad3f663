// The WebGPU backend: weights and state in GPU buffers, each op recorded as a dispatch, one submit per step,
// and only the kept logits read back.
import { fmtBytes, type Binding, type Dispatch, type Gpu } from '../gpu/device.ts';
import { dispatch, grid, type View, type WeightDtype } from '../gpu/launch.ts';
import toF16Src from './bf16_to_f16.wgsl' with { type: 'text' };
import { bf16ToF32, f16ToF32 } from '../util/dtype.ts';
import { bf16ToF16, F16_MATMULS, f16Refused, tensorCores } from '../util/f16.ts';
import { GpuError, ShapeError } from '../util/errors.ts';
import { kernelKnob, knob, checkKnobs } from '../util/knobs.ts';
import { log } from '../util/log.ts';
import { keepsAll, snapshotParts, type Backend, type HostWeight, type Snapshot, type StateSpec, type StepLayout, type StepRecording, type Tensor, type Weight } from './backend.ts';
import fillSrc from './fill_random.wgsl' with { type: 'text' };
import fillFp8Src from './fill_fp8.wgsl' with { type: 'text' };
import { stepShape, type Adapter, type Ctx, type Launch, type Op, type Resource } from './op.ts';

class GpuWeight implements Weight {
  constructor(readonly shape: readonly number[], readonly view: View, readonly dtype: WeightDtype,
    readonly fp8: { scales: GpuWeight; rp: number; br: number; bc: number } | null = null) {}
}

class GpuTensor implements Tensor {
  constructor(readonly view: View, readonly cols: number, readonly planes: number, readonly rows: 'n' | 'k' | 'slots', readonly cap: number) {}
}

class GpuSnapshot implements Snapshot {
  constructor(readonly depth: number, readonly bytes: number, readonly buffer: GPUBuffer) {}
}

/** A state tensor for all slots over the adapter's largest storage binding (the engine names the flags to lower). */
export class StateSizeError extends GpuError {
  constructor(readonly key: string, readonly bytes: number, readonly limit: number, readonly slots: number, readonly fit: number) {
    super(`state ${key} needs ${fmtBytes(bytes)} for ${slots} sequences, over the adapter's largest storage binding (${fmtBytes(limit)}); at most ${fit} fit`);
  }
}

const T = (t: Tensor) => (t as GpuTensor).view;
const ROW_ALIGN = 64;

export class GpuBackend implements Backend {
  readonly kind = 'gpu' as const;
  readonly name: string;
  private states = new Map<string, GpuTensor>();
  private acts = new Map<string, { buffer: GPUBuffer; bytes: number }>();
  /** Bumped whenever buffers that recorded dispatches bind are replaced: recordings from older epochs are stale. */
  private epoch = 0;
  private capN = 0;
  private capK = 0;
  private uniform: GPUBuffer;
  private meta: GPUBuffer | null = null;
  private metaBytes = 0;
  private dummy: GPUBuffer;
  private ctx: Ctx | null = null;
  private dispatches: Dispatch[] = [];
  private pendingClears: { buffer: GPUBuffer; offset: number; size: number }[] = [];
  private weightBytes = 0;
  readonly adapter: Adapter;
  /** (op, variant) pairs already logged (--verbose logs each choice once) */
  private logged = new Set<string>();

  constructor(readonly gpu: Gpu) {
    checkKnobs();
    this.name = `gpu (${gpu.summary.name}, ${gpu.summary.backend})`;
    this.uniform = gpu.buffer(32, 'step', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.dummy = gpu.buffer(16, 'dummy');
    this.adapter = {
      kind: 'gpu', type: gpu.summary.type, f16: gpu.f16, subgroups: gpu.subgroups, subgroupSize: gpu.subgroupSize,
      maxInvocations: gpu.maxInvocations, maxWorkgroupStorage: gpu.maxWorkgroupStorage, maxBinding: gpu.maxBinding,
      features: new Set(gpu.summary.features), subgroupMatrix: gpu.subgroupMatrix,
    };
  }

  /** The variant of `op` for these arguments on this step: FLA_KERNEL_<OP> if set and supported, else op.select. */
  variant<A>(op: Op<A>, a: A, c: Ctx = this.s): string {
    const names = Object.keys(op.variants);
    let name: string | undefined;
    if (names.length > 1) {
      const forced = knob(kernelKnob(op.name));
      if (forced !== undefined && !(forced in op.variants)) throw new ShapeError(`${kernelKnob(op.name)}=${forced}: op ${op.name} has variants ${names.join(', ')}`);
      if (forced !== undefined && (op.variants[forced]!.supports?.(a, c) ?? true)) name = forced;
    }
    name ??= op.select(c, a);
    if (!(name in op.variants)) throw new Error(`op ${op.name}: select chose '${name}', not one of ${names.join(', ')}`);
    const key = `${op.name}:${name}`;
    if (!this.logged.has(key)) { this.logged.add(key); log.debug(`op ${op.name}: variant ${name}`); }
    return name;
  }

  async run<A>(op: Op<A>, a: A): Promise<void> {
    for (const d of await this.build(op, a)) this.dispatches.push(d);
  }

  /** The dispatches `run` would record (compiled and bound), without recording them; `variant` forces one. */
  async build<A>(op: Op<A>, a: A, variant?: string): Promise<Dispatch[]> {
    op.check?.(a);
    const c = this.s;
    if (this.dry) {   // measuring: the scratch of every variant (any may be chosen for a longer step), no launches
      for (const v of Object.values(op.variants))
        for (const s of Object.values(v.supports?.(a, c) ?? true ? v.scratch?.(a, c) ?? {} : {})) this.rowBytes = Math.max(this.rowBytes, 4 * (s.planes ?? 1) * s.cols);
      return [];
    }
    const name = variant ?? this.variant(op, a, c);
    const v = op.variants[name];
    if (!v) throw new Error(`op ${op.name} has no variant ${name}`);
    const sc = new Map<string, Tensor>();
    for (const [key, spec] of Object.entries(v.scratch?.(a, c) ?? {}))
      sc.set(key, this.act(`${op.name}.${key}`, spec.cols, { planes: spec.planes, rows: spec.rows }));
    const out: Dispatch[] = [];
    for (const l of v.launches(a, c)) out.push(await this.launch(op, l, sc));
    return out;
  }

  private async launch<A>(op: Op<A>, l: Launch, sc: Map<string, Tensor>): Promise<Dispatch> {
    const k = l.kernel, byName: Record<string, Binding> = {};
    for (const name of k.bindings) {
      if (name === 'step') byName[name] = { buffer: this.uniform };
      else if (name === 'stepmeta') byName[name] = { buffer: this.meta! };
      else if (!(name in l.bind)) throw new Error(`op ${op.name}: launch of ${k.name} does not bind '${name}'`);
      else byName[name] = this.resource(op, k.name, name, l.bind[name]!, sc);
    }
    for (const name of Object.keys(l.bind)) if (!k.bindings.includes(name)) throw new Error(`op ${op.name}: ${k.name} has no binding '${name}' (it has ${k.bindings.join(', ')})`);
    const d = await dispatch(this.gpu, { label: k.name, source: k.source, defines: l.defines, includes: op.includes }, byName, l.grid);
    return l.cost ? { ...d, cost: l.cost } : d;
  }

  private resource(op: { name: string }, kernel: string, name: string, r: Resource, sc: Map<string, Tensor>): Binding {
    if (r === null) return { buffer: this.dummy };
    if (r instanceof GpuTensor || r instanceof GpuWeight) return r.view;
    if ('uniform' in r) return { buffer: this.gpu.uniform(r.uniform) };
    if ('scratch' in r) {
      const t = sc.get(r.scratch);
      if (!t) throw new Error(`op ${op.name}: ${kernel}.${name} binds scratch '${r.scratch}', which the variant does not declare`);
      return (t as GpuTensor).view;
    }
    throw new Error(`op ${op.name}: ${kernel}.${name} is bound to a tensor of another backend`);
  }

  /** While measuring (stepLimit): ops record nothing, and act/scratch sizes are noted as bytes per token row. */
  private dry = false;
  private rowBytes = 0;

  async stepLimit(dryRun: () => Promise<unknown>): Promise<number> {
    this.dry = true;
    this.rowBytes = 0;
    try {
      this.beginStep({ ids: Int32Array.of(0), cursors: [{ slot: 0, start: 0, len: 1, pos: 0 }], keep: Int32Array.of(0) });
      await dryRun();
    } finally {
      this.dry = false;
      this.dispatches = [];
      this.ctx = null;
    }
    // every activation and scratch tensor is planes × cap × cols f32 (cap ≥ the step's rows): each must fit one binding
    const rows = Math.floor(this.gpu.maxBinding / Math.max(this.rowBytes, 4));
    return Math.max(1, Math.floor(Math.min(rows, 8192) / ROW_ALIGN) * ROW_ALIGN || 1);
  }

  /** Bytes per token row of the widest tensor a step has asked for while measuring. */
  get measuredRowBytes(): number { return this.rowBytes; }

  weight(name: string, w: HostWeight, matrix: boolean): Weight {
    if (w.synthetic) return this.syntheticWeight(name, w, matrix);
    if (w.fp8) return this.fp8Weight(name, w);
    let data: ArrayBufferView, dtype: WeightDtype;
    if (matrix && w.bits16 && (w.dtype === 'bf16' || w.dtype === 'f16')) {
      data = w.bits16; dtype = w.dtype;
      if (dtype === 'bf16' && this.f16Weights) {   // once, at load: the f16 GEMMs read f16
        const c = bf16ToF16(w.bits16), refused = f16Refused(c);
        if (refused) (c.overflow ? log.warn : log.debug)(`${name}: ${refused} (of ${c.data.length}); kept bf16 (f32 path)`);
        else { data = c.data; dtype = 'f16'; }
        if (c.rounded && !refused) log.debug(`${name}: ${c.rounded} values below f16's normal range rounded (error ≤ 2^-25 each, ${c.rel.toExponential(1)} of the tensor)`);
        this.f16Stats.tensors++; this.f16Stats.rounded += c.rounded;
        if (refused) this.f16Stats.kept.push(name);
      }
    } else { data = w.f32 ?? (w.dtype === 'bf16' ? bf16ToF32(w.bits16!) : f16ToF32(w.bits16!)); dtype = 'f32'; }
    if (data.byteLength > this.gpu.maxBinding)
      throw new GpuError(`${name}: ${fmtBytes(data.byteLength)} exceeds the adapter's largest storage binding (${fmtBytes(this.gpu.maxBinding)})`);
    const buffer = this.gpu.upload(data, name);
    this.weightBytes += data.byteLength;
    return new GpuWeight(w.shape, { buffer, offset: 0, size: Math.ceil(data.byteLength / 4) * 4 }, dtype);
  }

  /** F8_E4M3 bytes and their f32 block scales, both as uploaded (the kernels decode them). */
  private fp8Weight(name: string, w: HostWeight): Weight {
    const f = w.fp8!, n = f.bytes.byteLength;
    if (n > this.gpu.maxBinding) throw new GpuError(`${name}: ${fmtBytes(n)} exceeds the adapter's largest storage binding (${fmtBytes(this.gpu.maxBinding)})`);
    const padded = n % 4 ? (() => { const p = new Uint8Array(Math.ceil(n / 4) * 4); p.set(f.bytes); return p; })() : f.bytes;
    const buffer = this.gpu.upload(padded, name), sbuf = this.gpu.upload(f.scale, `${name} scales`);
    this.weightBytes += padded.byteLength + f.scale.byteLength;
    const scales = new GpuWeight([f.scale.length], { buffer: sbuf, offset: 0, size: Math.ceil(f.scale.byteLength / 4) * 4 }, 'f32');
    return new GpuWeight(w.shape, { buffer, offset: 0, size: padded.byteLength }, 'fp8', { scales, rp: f.rp, br: f.br, bc: f.bc });
  }

  get uploadedBytes(): number { return this.weightBytes; }

  /**
   * bf16 matrices become f16 at load where an f16 GEMM runs: FLA_KERNEL_MATMUL (as it is at load) names an f16
   * variant (how lavapipe tests the f16 arithmetic), or the adapter has an f16 subgroup-matrix config (unless
   * FLA_TENSOR_CORES=0; util/f16.ts tensorCores).
   */
  get f16Weights(): boolean {
    const forced = knob('FLA_KERNEL_MATMUL');
    if (forced) return this.gpu.f16 && (F16_MATMULS as readonly string[]).includes(forced);
    return tensorCores(this.gpu.f16, this.gpu.subgroupMatrix);
  }
  /** What that conversion did: tensors seen, values rounded, tensors kept bf16 (values beyond f16's range). */
  readonly f16Stats = { tensors: 0, rounded: 0, kept: [] as string[] };

  /** Random weights made on the GPU (fla bench --synthetic): bf16 matrices, f32 vectors, nothing uploaded. */
  private syntheticWeight(name: string, w: HostWeight, matrix: boolean): Weight {
    if (matrix && w.dtype === 'fp8') return this.syntheticFp8(name, w);
    const n = w.shape.reduce((a, b) => a * b, 1), bf16 = matrix;
    const bytes = bf16 ? 2 * n : 4 * n;
    if (bytes > this.gpu.maxBinding) throw new GpuError(`${name}: ${fmtBytes(bytes)} exceeds the adapter's largest storage binding (${fmtBytes(this.gpu.maxBinding)})`);
    const buffer = this.gpu.buffer(bytes, name);
    const words = Math.ceil(bytes / 4);
    const dims = new Uint32Array([words, w.synthetic!.seed, 0, bf16 ? 1 : 0]);
    new Float32Array(dims.buffer)[2] = w.synthetic!.scale;
    const fill = (async () => {
      const d = await dispatch(this.gpu, { label: 'fill_random', source: fillSrc }, { W: { buffer }, dims: { buffer: this.gpu.uniform(dims) } }, grid(Math.ceil(words / 256)));
      const ds = [d];
      if (bf16 && this.f16Weights)
        ds.push(await dispatch(this.gpu, { label: 'bf16_to_f16', source: toF16Src }, { W: { buffer }, dims: { buffer: this.gpu.uniform(new Uint32Array([words])) } }, grid(Math.ceil(words / 256))));
      const enc = this.gpu.device.createCommandEncoder();
      this.gpu.encode(enc, ds);
      this.gpu.submit(enc);
    })();
    this.pendingFills.push(fill);
    this.weightBytes += bytes;
    return new GpuWeight(w.shape, { buffer, offset: 0, size: Math.ceil(bytes / 4) * 4 }, bf16 ? (this.f16Weights ? 'f16' : 'bf16') : 'f32');
  }

  /** Random F8_E4M3 bytes (|e4m3| ≤ 1.875, see fill_fp8.wgsl) made on the GPU; 128×128 block scales uploaded. */
  private syntheticFp8(name: string, w: HostWeight): Weight {
    const C = w.shape.at(-1)!, R = w.shape.slice(0, -1).reduce((a, b) => a * b, 1), bytes = R * C;
    if (bytes > this.gpu.maxBinding) throw new GpuError(`${name}: ${fmtBytes(bytes)} exceeds the adapter's largest storage binding (${fmtBytes(this.gpu.maxBinding)})`);
    const rp = w.fp8Parts ?? R, S = (R / rp) * Math.ceil(rp / 128) * Math.ceil(C / 128);
    const words = Math.ceil(bytes / 4), buffer = this.gpu.buffer(words * 4, name);
    const sbuf = this.gpu.upload(new Float32Array(S).fill(w.synthetic!.scale / 1.875), `${name} scales`);
    const fill = (async () => {
      const d = await dispatch(this.gpu, { label: 'fill_fp8', source: fillFp8Src }, { W: { buffer }, dims: { buffer: this.gpu.uniform(new Uint32Array([words, w.synthetic!.seed, 0, 0])) } }, grid(Math.ceil(words / 256)));
      const enc = this.gpu.device.createCommandEncoder();
      this.gpu.encode(enc, [d]);
      this.gpu.submit(enc);
    })();
    this.pendingFills.push(fill);
    this.weightBytes += words * 4 + 4 * S;
    const scales = new GpuWeight([S], { buffer: sbuf, offset: 0, size: 4 * S }, 'f32');
    return new GpuWeight(w.shape, { buffer, offset: 0, size: words * 4 }, 'fp8', { scales, rp, br: 128, bc: 128 });
  }

  private pendingFills: Promise<unknown>[] = [];

  /** Wait until every synthetic weight has been filled (before timing anything). */
  async settle(): Promise<void> {
    await Promise.all(this.pendingFills);
    this.pendingFills = [];
    await this.gpu.device.queue.onSubmittedWorkDone();
  }

  /** Per-kernel GPU time of the steps run while profiling (timestamp queries around each dispatch). */
  profile: Map<string, { ns: number; count: number; flops: number; bytes: number }> | null = null;

  stateSpecs: readonly StateSpec[] = [];

  allocState(specs: StateSpec[], slots: number): void {
    for (const s of specs)   // checked before anything is freed: an oversized binding would only fail later, as a validation error
      if (4 * s.cols * slots > this.gpu.maxBinding) throw new StateSizeError(s.key, 4 * s.cols * slots, this.gpu.maxBinding, slots, Math.floor(this.gpu.maxBinding / (4 * s.cols)));
    this.epoch++;
    this.stateSpecs = specs.slice();
    for (const s of this.states.values()) { this.gpu.forget(s.view.buffer); s.view.buffer.destroy(); }
    this.states.clear();
    this.pendingClears = [];   // they named the buffers just destroyed
    for (const s of specs) {
      const bytes = 4 * s.cols * slots;
      const buffer = this.gpu.buffer(bytes, `state ${s.key}`);
      this.pendingClears.push({ buffer, offset: 0, size: Math.ceil(bytes / 4) * 4 });
      this.states.set(s.key, new GpuTensor({ buffer, offset: 0, size: Math.ceil(bytes / 16) * 16 }, s.cols, 1, 'slots', slots));
    }
  }

  state(key: string): Tensor {
    const s = this.states.get(key);
    if (!s) throw new Error(`no state ${key}`);
    return s;
  }

  resetSlot(slot: number): void {
    for (const s of this.states.values()) this.pendingClears.push({ buffer: s.view.buffer, offset: 4 * slot * s.cols, size: 4 * s.cols });
  }

  // Snapshots: one buffer each, filled/emptied with copyBufferToBuffer in a submit of their own, after any pending
  // slot clears/copies (queue order keeps them after the steps already submitted and before later ones).
  snapshot(slot: number, depth: number): Snapshot {
    const parts = snapshotParts(this.stateSpecs, depth), bytes = 4 * parts.reduce((a, b) => a + b, 0);
    const buffer = this.gpu.buffer(bytes, 'snapshot');
    this.slotCopies((enc, s, i, off) => enc.copyBufferToBuffer(s.view.buffer, 4 * slot * s.cols, buffer, off, 4 * parts[i]!), parts);
    return new GpuSnapshot(depth, bytes, buffer);
  }

  restore(snap: Snapshot, slot: number): void {
    const { buffer, depth } = snap as GpuSnapshot, parts = snapshotParts(this.stateSpecs, depth);
    this.slotCopies((enc, s, i, off) => enc.copyBufferToBuffer(buffer, off, s.view.buffer, 4 * slot * s.cols, 4 * parts[i]!), parts);
  }

  /** Work that submits on its own would overtake grouped steps not yet submitted. */
  private ungrouped(what: string): void {
    if (this.group) throw new Error(`${what}: not between beginSteps and endSteps`);
  }

  private slotCopies(copy: (enc: GPUCommandEncoder, s: GpuTensor, i: number, off: number) => void, parts: number[]): void {
    this.ungrouped('snapshot/restore');
    const enc = this.gpu.device.createCommandEncoder();
    this.flushSlotOps(enc);
    let off = 0;
    this.stateSpecs.forEach((sp, i) => {
      if (parts[i]! > 0) copy(enc, this.states.get(sp.key)!, i, off);
      off += 4 * parts[i]!;
    });
    this.gpu.submit(enc);
  }

  async readSnapshot(snap: Snapshot): Promise<Float32Array> {
    const s = snap as GpuSnapshot;
    return new Float32Array(await this.gpu.read(s.buffer, 0, s.bytes));
  }

  uploadSnapshot(data: Float32Array, depth: number): Snapshot {
    return new GpuSnapshot(depth, data.byteLength, this.gpu.upload(data, 'snapshot'));
  }

  freeSnapshot(snap: Snapshot): void { (snap as GpuSnapshot).buffer.destroy(); }

  /** The GPU feeds a step's token ids from a tensor on the device (beginStep's `feed`). */
  readonly feedsIds = true;
  /** This step's ids come from this buffer range (copied into meta when the step's commands run). */
  private feed: { buffer: GPUBuffer; offset: number; bytes: number } | null = null;

  beginStep(step: StepLayout, feed?: Tensor): void {
    this.gpu.checkAlive();
    const n = step.ids.length, k = step.keep.length, b = step.cursors.length;
    const grow = n > this.capN || k > this.capK || this.capK === 0;
    if (feed && grow) throw new Error('beginStep: a step fed on the device cannot grow the activations (they hold its ids)');
    // grouped steps not yet submitted bind the buffers a growth replaces: submit them first
    if (this.group?.steps.length && (grow || 4 * (2 * n + 4 * b + k) > this.metaBytes)) this.splitSteps();
    if (n > this.capN) this.growActs('n', Math.max(n, 1));
    if (k > this.capK || this.capK === 0) this.growActs('k', Math.max(k, 1));
    // meta = ids[n] | token→sequence[n] | cursors[4b] | keep[k]
    const meta = new Uint32Array(2 * n + 4 * b + k);
    meta.set(step.ids, 0);
    step.cursors.forEach((c, s) => {
      meta.fill(s, n + c.start, n + c.start + c.len);
      meta.set([c.slot, c.start, c.len, c.pos ?? 0], 2 * n + 4 * s);
    });
    meta.set(step.keep, 2 * n + 4 * b);
    if (meta.byteLength > this.metaBytes) {
      this.epoch++;   // recorded steps bind the old buffer
      if (this.meta) { this.gpu.forget(this.meta); this.meta.destroy(); }
      this.metaBytes = Math.max(1024, meta.byteLength * 2);
      this.meta = this.gpu.buffer(this.metaBytes, 'meta');
    }
    // fed: the ids part of meta is written by the step's own first command, a copy from `feed`, once the step that
    // computes them has run (queue order); the host's ids are placeholders
    this.feed = feed ? { buffer: T(feed).buffer, offset: T(feed).offset, bytes: 4 * n } : null;
    if (feed) this.queueWrite(this.meta!, 4 * n, meta.subarray(n)); else this.queueWrite(this.meta!, 0, meta);
    const u = this.uniformWas, uv = [n, k, b, this.capN, 0, n, 2 * n, 2 * n + 4 * b];
    if (!uv.every((x, i) => u[i] === x)) { u.set(uv); this.queueWrite(this.uniform, 0, u); }   // decode steps repeat it
    this.ctx = { adapter: this.adapter, step: stepShape(step) };
    this.keepAll = keepsAll(step);
    this.dispatches = [];
  }

  /** The step uniform as last written (beginStep skips an unchanged one). */
  private uniformWas = new Uint32Array(8).fill(0xffffffff);

  /**
   * Steps begun until endSteps go to the device in one submit with one readback (a decode step's CPU cost is
   * mostly per dispatch, but the submit, the readback's map and the queue writes are per step otherwise): each
   * step's writes (metadata, uniform, sampling params) are staged and copied in by the group's own commands just
   * before the step (the queue's writes would all land before the submit), endStep encodes the step and the copy of
   * its rows without submitting, and endSteps writes the staging buffer, submits, and maps the readback, whose
   * slices resolve the steps' promises. `readBytes`: the rows the steps read back, at most (more splits the group).
   */
  beginSteps(readBytes: number): void {
    if (this.group) throw new Error('beginSteps: steps are already grouped');
    this.gpu.checkAlive();
    const cap = Math.max(4, Math.ceil(readBytes / 4) * 4);
    this.group = { enc: this.gpu.device.createCommandEncoder(), rb: this.gpu.readback(cap), cap, used: 0, stageUsed: 0, steps: [] };
  }

  /** Submit the steps since beginSteps (nothing to do when none are grouped). */
  endSteps(): void {
    const g = this.group;
    if (!g) return;
    this.group = null;
    // queue order: after the submits of earlier groups that copied from it (writeBuffer copies the host bytes now)
    if (g.stageUsed) this.gpu.write(this.stage!, 0, this.stageHost.subarray(0, g.stageUsed));
    const read = this.gpu.submitRead(g.enc, g.rb, Math.max(4, g.used));
    for (const st of g.steps) read.then(buf => st.resolve(new Float32Array(buf, st.offset, st.bytes / 4)), st.reject);
  }

  /** Submit the group so far and go on with a new one (its staging or readback space ran out). */
  private splitSteps(): void {
    const cap = this.group!.cap;
    this.endSteps();
    this.beginSteps(cap);
  }

  private group: {
    enc: GPUCommandEncoder; rb: GPUBuffer; cap: number; used: number;
    /** bytes of the stage buffer the group's writes take */
    stageUsed: number;
    steps: { offset: number; bytes: number; resolve: (v: Float32Array) => void; reject: (e: unknown) => void }[];
  } | null = null;
  /** The staging buffer of grouped steps' writes (only copied from: no bind group names it), and its bytes on the host. */
  private stage: GPUBuffer | null = null;
  private stageHost = new Uint8Array(0);

  /** A write the step's commands must see: queued now, or staged and copied by the group's commands in order. */
  private queueWrite(buf: GPUBuffer, offset: number, data: ArrayBufferView): void {
    if (!this.group) { this.gpu.write(buf, offset, data); return; }
    const bytes = Math.ceil(data.byteLength / 4) * 4;
    if (bytes !== data.byteLength || offset % 4) throw new Error('queueWrite: a grouped step writes whole words');
    const size = this.stage?.size ?? 0;
    if (this.group.stageUsed + bytes > size && this.group.stageUsed > 0) this.splitSteps();
    if (bytes > size) {
      this.stage?.destroy();   // freed once the submitted copies from it have run
      this.stage = this.gpu.buffer(Math.max(1 << 16, 2 * bytes), 'staged step writes', GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
      this.stageHost = new Uint8Array(this.stage.size);
    }
    const g = this.group!;
    g.enc.copyBufferToBuffer(this.stage!, g.stageUsed, buf, offset, bytes);
    this.stageHost.set(new Uint8Array(data.buffer, data.byteOffset, bytes), g.stageUsed);
    g.stageUsed += bytes;
  }

  /** Whether this step keeps all its rows in order (keptView). */
  private keepAll = false;

  private growActs(rows: 'n' | 'k', need: number): void {
    this.epoch++;
    const cap = Math.ceil(need / ROW_ALIGN) * ROW_ALIGN;
    if (rows === 'n') this.capN = cap; else this.capK = cap;
    for (const [key, a] of this.acts) {
      if (!key.endsWith(`:${rows}`)) continue;
      this.gpu.forget(a.buffer);
      a.buffer.destroy();
      this.acts.delete(key);
    }
  }

  private get s(): Ctx {
    if (!this.ctx) throw new Error('no step begun');
    return this.ctx;
  }

  act(name: string, cols: number, opts: { planes?: number; rows?: 'n' | 'k' } = {}): Tensor {
    const planes = opts.planes ?? 1, rows = opts.rows ?? 'n';
    const cap = rows === 'n' ? this.capN : this.capK;
    const key = `${name}:${cols}:${planes}:${rows}`;
    const bytes = 4 * planes * cap * cols;
    if (this.dry) this.rowBytes = Math.max(this.rowBytes, 4 * planes * cols);
    let a = this.acts.get(key);
    if (!a) {
      if (bytes > this.gpu.maxBinding) throw new GpuError(`activation ${name} needs ${fmtBytes(bytes)}, over the adapter's binding limit ${fmtBytes(this.gpu.maxBinding)}`);
      a = { buffer: this.gpu.buffer(bytes, name), bytes };
      this.acts.set(key, a);
    }
    return new GpuTensor({ buffer: a.buffer, offset: 0, size: bytes }, cols, planes, rows, cap);
  }

  plane(t: Tensor, i: number): Tensor {
    const g = t as GpuTensor;
    const size = 4 * g.cap * g.cols;
    return new GpuTensor({ buffer: g.view.buffer, offset: g.view.offset + i * size, size }, g.cols, 1, g.rows, g.cap);
  }

  keptView(x: Tensor): Tensor | null {
    const g = x as GpuTensor;
    if (g.rows !== 'n' || g.planes !== 1 || !this.keepAll) return null;
    return new GpuTensor(g.view, g.cols, 1, 'k', g.cap);
  }

  recording(): StepRecording { return { epoch: this.epoch, items: [...this.dispatches] }; }

  replay(rec: StepRecording): boolean {
    if (rec.epoch !== this.epoch || !this.ctx) return false;
    this.dispatches = rec.items as Dispatch[];
    return true;
  }

  /** Take the dispatches recorded so far without running them (fla bench replays them to time a kernel). */
  dispatchesForBench(): Dispatch[] { const d = this.dispatches; this.dispatches = []; this.ctx = null; return d; }

  write(t: Tensor, data: Float32Array): void {
    if (this.pendingClears.length) {   // zero slots before the write lands
      if (this.group) this.flushSlotOps(this.group.enc);
      else {
        const enc = this.gpu.device.createCommandEncoder();
        this.flushSlotOps(enc);
        this.gpu.submit(enc);
      }
    }
    const v = T(t);
    this.queueWrite(v.buffer, v.offset, data.subarray(0, v.size / 4));
  }

  /** Runs what is recorded so far (a step stays open), then reads the tensor back. */
  async read(t: Tensor): Promise<Float32Array> {
    this.ungrouped('read');
    const enc = this.gpu.device.createCommandEncoder();
    this.flushSlotOps(enc);
    this.gpu.encode(enc, this.dispatches);
    this.dispatches = [];
    const v = T(t);
    return new Float32Array(await this.gpu.read(v.buffer, v.offset, v.size, enc));
  }

  capacity(t: Tensor): number { return (t as GpuTensor).cap; }

  /**
   * Encode pending slot clears, the fed ids' copy, then the step's dispatches, and submit them with the readback
   * before returning (the next step may be begun and submitted while this one runs); the promise gives the rows.
   */
  endStep(logits: Tensor): Promise<Float32Array> {
    const v = T(logits);
    const bytes = 4 * this.s.step.k * logits.cols;
    if (this.group && this.group.used + bytes > this.group.cap) this.splitSteps();
    const g = this.group;
    const enc = g ? g.enc : this.gpu.device.createCommandEncoder();
    this.flushSlotOps(enc);
    if (this.feed) enc.copyBufferToBuffer(this.feed.buffer, this.feed.offset, this.meta!, 0, this.feed.bytes);
    this.feed = null;
    const timed = this.profile && this.gpu.timestamps ? this.encodeTimed(enc, this.dispatches) : null;
    if (!timed) this.gpu.encode(enc, this.dispatches);
    this.dispatches = [];
    this.ctx = null;
    if (g) {   // the rows' copy now (the next step overwrites them); submitted and mapped by endSteps
      if (bytes) enc.copyBufferToBuffer(v.buffer, v.offset, g.rb, g.used, bytes);
      const rows = new Promise<Float32Array>((resolve, reject) => g.steps.push({ offset: g.used, bytes, resolve, reject }));
      g.used += bytes;
      return timed ? rows.then(async out => { await timed(); return out; }) : rows;
    }
    const read = this.gpu.read(v.buffer, v.offset, bytes, enc);
    return (async () => {
      const out = new Float32Array(await read);
      if (timed) await timed();
      return out;
    })();
  }

  /** Encode each dispatch in its own pass with begin/end timestamps; the returned function reads and tallies them. */
  private encodeTimed(enc: GPUCommandEncoder, ds: Dispatch[]): () => Promise<void> {
    const n = ds.length;
    const qs = this.gpu.device.createQuerySet({ type: 'timestamp', count: 2 * n });
    const res = this.gpu.buffer(16 * n, 'timestamps', GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC);
    ds.forEach((d, i) => {
      const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
      if (d.workgroups.every(n => n > 0)) {   // an empty grid: timed as nothing (as encode skips it)
        pass.setPipeline(d.pipeline);
        pass.setBindGroup(0, d.bindGroup);
        pass.dispatchWorkgroups(...d.workgroups);
      }
      pass.end();
    });
    enc.resolveQuerySet(qs, 0, 2 * n, res, 0);
    return async () => {
      const t = new BigUint64Array(await this.gpu.read(res, 0, 16 * n));
      ds.forEach((d, i) => {
        const e = this.profile!.get(d.label) ?? { ns: 0, count: 0, flops: 0, bytes: 0 };
        e.ns += Number(t[2 * i + 1]! - t[2 * i]!);
        e.count++;
        e.flops += d.cost?.flops ?? 0;
        e.bytes += d.cost?.bytes ?? 0;
        this.profile!.set(d.label, e);
      });
      qs.destroy();
      res.destroy();
    };
  }

  private flushSlotOps(enc: GPUCommandEncoder): void {
    for (const c of this.pendingClears) enc.clearBuffer(c.buffer, c.offset, c.size);
    this.pendingClears = [];
  }

  destroy(): void {
    this.gpu.destroy();
  }
}
