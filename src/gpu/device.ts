// Owns the WebGPU device: adapter choice, features and limits, WGSL pipelines (cached by key),
// bind groups (cached), buffers, uploads, readbacks, and error reporting.
import { dlopen, FFIType } from 'bun:ffi';
import { GpuError } from '../util/errors.ts';
import { log } from '../util/log.ts';
import { bindingNames, preprocess } from './wgsl.ts';
import type { SubgroupMatrixConfig } from '../util/f16.ts';
import { bunWebgpuBuilt, forcedBinding, installGlobals, loadBinding, setSpinMs, throttleDawnPolling, type BindingName, type WebGpuBinding } from './binding.ts';
import { knob } from '../util/knobs.ts';
import { BufferGuards } from './guard.ts';

const READBACK_POOL_BYTES = 4 << 20;

export type { SubgroupMatrixConfig };

export interface AdapterSummary {
  name: string; vendor: string; backend: string; type: string;
  features: string[];
  limits: Record<string, number>;
  subgroupMinSize: number; subgroupMaxSize: number;
  binding: BindingName; bindingVersion: string;
  /** whether a device opened on it keeps WebGPU robustness (bounds checks; FLA_DAWN_ROBUSTNESS=0 drops them on dawn.node, docs/bounds.md) */
  robust: boolean;
  subgroupMatrixConfigs: SubgroupMatrixConfig[];
}

/** The adapter features that choose kernels (fla devices prints these). */
export const KERNEL_FEATURES = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix', 'timestamp-query'] as const;
export const SUBGROUP_MATRIX = 'chromium-experimental-subgroup-matrix';

const BACKENDS: Record<number, string> = { 1: 'null', 2: 'webgpu', 3: 'd3d11', 4: 'd3d12', 5: 'metal', 6: 'vulkan', 7: 'opengl', 8: 'opengles' };
const ADAPTER_TYPES: Record<number, string> = { 1: 'discrete', 2: 'integrated', 3: 'cpu', 4: 'unknown' };

function summarize(adapter: GPUAdapter, b: WebGpuBinding): AdapterSummary {
  const info: any = adapter.info;
  // dawn.node's GPUAdapterInfo has no backendType/adapterType: a fallback (software) adapter is the CPU,
  // and Dawn's default backend per platform is the backend
  const backendType = info.backendType ?? { linux: 6, darwin: 5, win32: 4 }[process.platform as string];
  const adapterType = info.adapterType ?? (info.isFallbackAdapter || info.architecture === 'software' ? 3 : 4);
  const features = [...adapter.features].map(String).sort();
  const limits: Record<string, number> = {};
  const L: any = adapter.limits;
  for (const k in L) if (typeof L[k] === 'number' && k !== 'nextInChain') limits[k] = L[k];
  return {
    // lavapipe puts the useful name in description, NVIDIA puts the driver version there and the card in device
    name: /^[A-Za-z]+: \d[\d.]* [\d.]+$/.test(info.description ?? '') && info.device ? `${info.device} (driver ${info.description.split(': ')[1]})` : info.description || info.device || 'unknown',
    vendor: info.vendor ?? '', backend: BACKENDS[backendType] ?? String(backendType),
    type: ADAPTER_TYPES[adapterType] ?? String(adapterType),
    features, limits, subgroupMinSize: info.subgroupMinSize ?? 0, subgroupMaxSize: info.subgroupMaxSize ?? 0,
    binding: b.name, bindingVersion: b.version,
    robust: b.robust,
    // bun-webgpu does not unpack WGPUAdapterPropertiesSubgroupMatrixConfigs: no configs, no matrix kernels
    subgroupMatrixConfigs: features.includes(SUBGROUP_MATRIX)
      ? [...(info.subgroupMatrixConfigs ?? [])].map((c: any) => ({ componentType: String(c.componentType), resultComponentType: String(c.resultComponentType), M: c.M, N: c.N, K: c.K }))
      : [],
  };
}

/**
 * Run `fn` with the process's native stderr (fd 2) pointed at /dev/null: the Vulkan loader and Dawn print
 * warnings and C++ frames there while probing for drivers, which would bury our one-line messages.
 */
async function quietNative<T>(fn: () => Promise<T>): Promise<T> {
  if (log.level === 'debug' || process.platform !== 'linux') return fn();
  let libc: ReturnType<typeof openLibc> | null = null;
  try { libc = openLibc(); } catch { return fn(); }
  const saved = libc.symbols.dup(2);
  const devnull = libc.symbols.open(Buffer.from('/dev/null\0'), 1);
  if (saved < 0 || devnull < 0) return fn();
  libc.symbols.dup2(devnull, 2);
  libc.symbols.close(devnull);
  try { return await fn(); } finally { libc.symbols.dup2(saved, 2); libc.symbols.close(saved); libc.close(); }
}

/**
 * Run `fn` with the process's native stdout (fd 1) pointed at stderr: dawn.node prints shader compilation warnings
 * ("Compilation log for [ShaderModule …]", e.g. Tint's deprecation notes on the subgroup-matrix builtins) to stdout,
 * which must carry only results (fla bench --json). Only for spans that write nothing to stdout themselves.
 */
export async function nativeStdoutToStderr<T>(fn: () => Promise<T>): Promise<T> {
  if (process.platform !== 'linux') return fn();
  let libc: ReturnType<typeof openLibc> | null = null;
  try { libc = openLibc(); } catch { return fn(); }
  const saved = libc.symbols.dup(1);
  if (saved < 0) { libc.close(); return fn(); }
  libc.symbols.dup2(2, 1);
  try { return await fn(); } finally { libc.symbols.dup2(saved, 1); libc.symbols.close(saved); libc.close(); }
}

function openLibc() {
  return dlopen('libc.so.6', {
    dup: { args: [FFIType.i32], returns: FFIType.i32 },
    dup2: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    open: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
  });
}

/** Adapters usable for compute. A Null backend (computes nothing) is never returned. */
export async function listAdapters(): Promise<{ adapter: GPUAdapter; summary: AdapterSummary }[]> {
  const warnings: string[] = [];
  try { return await quietNative(() => probeAdapters(warnings)); } finally { for (const w of warnings) log.warn(w); }   // after fd 2 is back
}

type Probed = { adapter: GPUAdapter; summary: AdapterSummary };
let chosen: WebGpuBinding | null = null;

/**
 * FLA_WEBGPU forces a binding; otherwise bun-webgpu where it has a build, switching to dawn.node when a GPU
 * adapter lacks a kernel feature (shader-f16, subgroup-matrix) and dawn.node offers more. A binding that
 * fails to load falls back to the other with a one-line warning.
 */
async function probeAdapters(warnings: string[]): Promise<Probed[]> {
  if (chosen) return adaptersOf(chosen);
  const forced = forcedBinding();
  const order: BindingName[] = forced ? [forced, forced === 'dawn' ? 'bun-webgpu' : 'dawn'] : bunWebgpuBuilt() ? ['bun-webgpu', 'dawn'] : ['dawn'];
  let best: { b: WebGpuBinding; adapters: Probed[] } | null = null;
  for (const name of order) {
    let b: WebGpuBinding;
    try { b = await loadBinding(name); } catch (e) {
      const next = order[order.indexOf(name) + 1];
      if (best) log.debug(`webgpu: ${name} unavailable: ${oneLine((e as Error).message)}`);
      else warnings.push(`WebGPU binding ${name} failed to load (${oneLine((e as Error).message)})${next ? `; trying ${next}` : ''}`);
      continue;
    }
    const adapters = await adaptersOf(b);
    if (!best) {
      best = { b, adapters };
      if (forced) break;
      if (!adapters.length) continue;                 // nothing usable here: see what the other finds
      if (!adapters.some(a => a.summary.type !== 'cpu' && (!a.summary.features.includes('shader-f16') || !a.summary.subgroupMatrixConfigs.length))) break;
      continue;                                       // a GPU without f16 or subgroup-matrix: does the other offer more?
    }
    if (adapters.length && (best.adapters.length === 0 || score(adapters[0]!.summary) > score(best.adapters[0]!.summary))) best = { b, adapters };
  }
  if (!best) return [];
  chosen = best.b;
  installGlobals(chosen);
  log.debug(`webgpu: ${chosen.name} ${chosen.version}`);
  return best.adapters;
}

/** Kernel-choosing features of an adapter (timestamp-query aside), for comparing bindings. */
function score(s: AdapterSummary): number {
  return KERNEL_FEATURES.filter(f => f !== 'timestamp-query' && s.features.includes(f)).length + (s.subgroupMatrixConfigs.length ? 1 : 0);
}

async function adaptersOf(b: WebGpuBinding): Promise<Probed[]> {
  installGlobals(b);
  const out: Probed[] = [];
  const seen = new Set<string>();
  for (const opts of [{ powerPreference: 'high-performance' }, { powerPreference: 'low-power' }] as GPURequestAdapterOptions[]) {
    const adapter = await b.gpu.requestAdapter(opts).catch(() => null);
    if (!adapter) continue;
    const s = summarize(adapter, b);
    if (s.backend === 'null' || !s.vendor) continue;   // old Mesa: Dawn falls back to a null backend
    const key = `${s.name}|${s.backend}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ adapter, summary: s });
  }
  return out;
}

/** One recorded kernel launch; `cost` (FLOPs and bytes moved) feeds the per-kernel roofline of fla bench. */
export type Dispatch = { pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; workgroups: [number, number, number]; label: string; cost?: { flops: number; bytes: number } };

export interface PipelineSpec {
  label: string;                          // kernel stem, for errors and profiling
  source: string;                         // WGSL with #if/#include
  defines?: Record<string, number | boolean | string>;
  overrides?: Record<string, number>;
  /** files `#include "name"` may name */
  includes?: Readonly<Record<string, string>>;
}

/** One WebGPU device with caches. Create with Gpu.create(). */
export class Gpu {
  readonly f16: boolean;
  readonly subgroups: boolean;
  readonly subgroupSize: number;
  readonly maxBinding: number;
  readonly maxWorkgroupStorage: number;
  readonly maxInvocations: number;
  readonly offsetAlign: number;
  readonly timestamps: boolean;
  /** Subgroup-matrix shapes usable on this device: empty without the feature, or where the subgroup size varies
   *  (kernels map invocation index / size to a subgroup). */
  readonly subgroupMatrix: SubgroupMatrixConfig[];
  private pipelines = new Map<string, GPUComputePipeline>();
  /** Compiles in flight, by pipeline key: a second request for the same variant waits for the first. */
  private compiling = new Map<string, Promise<GPUComputePipeline>>();
  private names = new WeakMap<GPUComputePipeline, { label: string; names: string[] }>();
  private bindGroups = new Map<string, GPUBindGroup>();
  private bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private uniforms = new Map<string, GPUBuffer>();
  private lost: string | null = null;
  /** Idle mappable buffers for small readbacks (a decode step's ids or logits), reused; a few reads may be in flight. */
  private readbacks: GPUBuffer[] = [];
  /** FLA_GUARD_BUFFERS=1 (tests): canaries after every storage/uniform buffer, checked at each readback (guard.ts) */
  readonly guards: BufferGuards | null;
  /** Called after each pipeline compile (label, ms): the runtime tells the user about a long first-run compile. */
  onCompiled: ((label: string, ms: number) => void) | null = null;

  private constructor(readonly device: GPUDevice, readonly summary: AdapterSummary) {
    const f = new Set(summary.features);
    this.f16 = f.has('shader-f16') && device.features.has('shader-f16');
    this.subgroups = f.has('subgroups') && device.features.has('subgroups');
    this.subgroupSize = summary.subgroupMinSize || 0;
    this.timestamps = device.features.has('timestamp-query');
    this.subgroupMatrix = device.features.has(SUBGROUP_MATRIX) && summary.subgroupMinSize === summary.subgroupMaxSize ? summary.subgroupMatrixConfigs : [];
    const lim = device.limits as any;
    this.maxBinding = lim.maxStorageBufferBindingSize;
    this.maxWorkgroupStorage = lim.maxComputeWorkgroupStorageSize;
    this.maxInvocations = lim.maxComputeInvocationsPerWorkgroup;
    this.offsetAlign = lim.minStorageBufferOffsetAlignment;
    this.guards = knob('FLA_GUARD_BUFFERS') === '1' ? new BufferGuards(device, this.maxBinding) : null;
    // Any error no scope captured (validation, out of memory, internal) means the work since then computed nothing
    // trustworthy: mark the device failed so the next readback throws and callers fail instead of returning garbage.
    (device as any).onuncapturederror = (ev: any) => this.fail(String(ev?.error?.message ?? ev), ev?.error?.constructor?.name ?? '');
    device.lost?.then((info: any) => {
      if (info?.reason === 'destroyed') this.lost ??= 'the device was destroyed';
      else this.fail(`device lost: ${info?.message || 'no reason given'}`);
    }).catch(() => {});
  }

  /** Open adapter `index` (from listAdapters) with every adapter limit and the useful features. */
  static async create(index = 0): Promise<Gpu> {
    const adapters = await listAdapters();
    if (adapters.length === 0) throw new GpuError('no WebGPU adapter found (is a Vulkan driver installed? see README "When things go wrong")');
    const pick = adapters[index];
    if (!pick) throw new GpuError(`--device gpu:${index}: only ${adapters.length} adapter(s) found (run 'fla devices')`);
    const { adapter, summary } = pick;
    // bun-webgpu rejects a partial requiredLimits: pass all of them (tooling.md).
    const requiredLimits = summary.limits;
    const wanted = ['shader-f16', 'subgroups', 'timestamp-query', SUBGROUP_MATRIX].filter(f => adapter.features.has(f)) as GPUFeatureName[];
    // bun-webgpu: requestDevice fails now and then under load ("Invalid feature required: Value 1175 is invalid for
    // WGPUFeatureName", seemingly its packed feature list freed before Dawn reads it: not reproduced in a loop). The
    // failure also marks that adapter lost (a second requestDevice on it resolves to nothing), so retry on a fresh one.
    let device: GPUDevice | null = null, why = '';
    for (let attempt = 0; attempt < 3 && !device; attempt++) {
      const ad = attempt === 0 ? adapter : (await listAdapters())[index]?.adapter;
      if (!ad) break;
      try { device = (await ad.requestDevice({ requiredFeatures: wanted, requiredLimits } as any)) ?? null; } catch (e) { why = oneLine(String((e as Error).message ?? e)); }
      if (!device) log.debug(`requestDevice attempt ${attempt + 1}: ${why || 'no device'}`);
    }
    if (!device) throw new GpuError(`could not open ${summary.name}: ${why || 'requestDevice gave no device'}`);
    const spin = knob('FLA_SPIN_MS');
    setSpinMs(spin !== undefined ? Number(spin) : summary.type === 'cpu' ? 0.5 : 50);   // lavapipe's "GPU" is the core we would spin on
    if (chosen?.name === 'dawn' && summary.type === 'cpu') throttleDawnPolling();
    return new Gpu(device, summary);
  }

  private bufferId(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) { id = this.nextBufferId++; this.bufferIds.set(b, id); }
    return id;
  }

  checkAlive(): void {
    if (this.lost) throw new GpuError(`GPU device failed: ${this.lost}`);
  }

  /** Why the device stopped working, or null while it works. */
  get failure(): string | null { return this.lost; }

  /** Mark the device failed (first reason kept) and log it once. */
  fail(message: string, kind = ''): void {
    const msg = oneLine(message);
    const why = /OutOfMemory/.test(kind) || /out of memory/i.test(msg) ? `out of GPU memory (${msg})`
      : /Validation/.test(kind) ? `validation error: ${msg}` : msg;
    if (this.lost) { log.debug(`gpu: ${why}`); return; }
    this.lost = why;
    log.error(`gpu: ${why}`);
  }

  /** A compute pipeline for `spec`, compiled once per (source, defines, overrides). */
  async pipeline(spec: PipelineSpec): Promise<GPUComputePipeline> {
    const key = pipelineKey(spec);
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    // Two requests for one variant while it compiles must get the same pipeline object: bind groups are cached by
    // the variant's key and made with its pipeline's 'auto' layout, which no other pipeline object accepts.
    let inFlight = this.compiling.get(key);
    if (!inFlight) {
      inFlight = this.compile(spec, key);
      this.compiling.set(key, inFlight);
      inFlight.then(() => this.compiling.delete(key), () => this.compiling.delete(key));
    }
    return inFlight;
  }

  private async compile(spec: PipelineSpec, key: string): Promise<GPUComputePipeline> {
    const t0 = performance.now();
    const label = `${spec.label}${describeVariant(spec)}`;
    let code: string, names: string[];
    try {
      code = preprocess(spec.source, spec.defines ?? {}, { f16: this.f16, subgroups: this.subgroups }, spec.includes);
      names = bindingNames(code);
    } catch (e) { throw new GpuError(`kernel ${spec.label} (variant ${label}): ${(e as Error).message}`); }
    // bun-webgpu now and then hands Dawn the WGSL with a NUL byte in it ("null character found" at 1:1, the text
    // itself is fine: seen once in ~1 200 tests under `bun test --parallel`, a lifetime slip in its string
    // conversion); the same source compiles on a second try, so such an error is retried
    let module!: GPUShaderModule, modErr: GPUError | null = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      this.device.pushErrorScope('validation');
      module = this.device.createShaderModule({ code, label });
      modErr = await this.device.popErrorScope();
      if (!modErr || !/null character/.test(modErr.message) || code.includes('\0')) break;
      log.debug(`kernel ${label}: WGSL handed over with a NUL byte, compiling again`);
    }
    if (modErr) throw new GpuError(`WGSL compile error in kernel ${spec.label} (variant ${label}): ${oneLine(modErr.message)}`);
    this.device.pushErrorScope('validation');
    const pipeline = this.device.createComputePipeline({
      label, layout: 'auto',
      compute: { module, entryPoint: spec.label.split('/').pop()!, constants: spec.overrides ?? {} },
    });
    const pErr = await this.device.popErrorScope();
    if (pErr) throw new GpuError(`pipeline error in kernel ${spec.label} (variant ${label}): ${oneLine(pErr.message)}`);
    this.pipelines.set(key, pipeline);
    this.names.set(pipeline, { label: spec.label, names });
    log.debug(`compiled ${label} in ${(performance.now() - t0).toFixed(0)} ms`);
    this.onCompiled?.(label, performance.now() - t0);
    return pipeline;
  }

  /** The `@binding` names of a pipeline's WGSL, in binding order. */
  bindingNames(pipeline: GPUComputePipeline): readonly string[] {
    const n = this.names.get(pipeline);
    if (!n) throw new Error('pipeline not made by Gpu.pipeline');
    return n.names;
  }

  /**
   * A bind group for (pipeline, buffers with ranges by binding name), cached: createBindGroup costs ~30 µs here.
   * Every `@binding` of the WGSL must be given, and nothing else: a name mismatch is an error naming both lists.
   */
  bindGroup(pipeline: GPUComputePipeline, pipelineKeyStr: string, byName: Record<string, Binding>): GPUBindGroup {
    const names = this.bindingNames(pipeline);
    const extra = Object.keys(byName).filter(k => !names.includes(k));
    const missing = names.filter(k => !(k in byName));
    if (extra.length || missing.length)
      throw new GpuError(`kernel ${this.names.get(pipeline)!.label}: bindings ${missing.length ? `missing ${missing.join(', ')}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `not in the WGSL ${extra.join(', ')}` : ''} (the WGSL declares ${names.join(', ')})`);
    const entries = names.map(k => byName[k]!);
    let key = pipelineKeyStr;
    for (const e of entries) key += `|${this.bufferId(e.buffer)}:${e.offset ?? 0}:${e.size ?? -1}`;
    const hit = this.bindGroups.get(key);
    if (hit) return hit;
    const bg = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: entries.map((e, i) => ({ binding: i, resource: { buffer: e.buffer, offset: e.offset ?? 0, size: this.guards ? this.guards.range(e.buffer, e.offset ?? 0, e.size, `kernel ${this.names.get(pipeline)!.label} binding ${names[i]}`) : e.size } })),
    });
    if (this.bindGroups.size > 20000) this.bindGroups.clear();
    this.bindGroups.set(key, bg);
    return bg;
  }

  /** Forget cached bind groups that mention `buf` (call before destroying it). */
  forget(buf: GPUBuffer): void {
    const id = `|${this.bufferId(buf)}:`;
    for (const k of this.bindGroups.keys()) if (k.includes(id)) this.bindGroups.delete(k);
  }

  buffer(size: number, label: string, usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC): GPUBuffer {
    const bytes = Math.max(16, Math.ceil(size / 16) * 16);
    const maxBuf = (this.device.limits as any).maxBufferSize as number;
    if (bytes > maxBuf) throw new GpuError(`${label}: needs a ${fmtBytes(bytes)} buffer, the adapter allows ${fmtBytes(maxBuf)}`);
    // no error scope per buffer: bun-webgpu allows ~1000 pending callbacks, and a model has more buffers;
    // out-of-memory surfaces through onuncapturederror and marks the device unusable
    if (this.guards && usage & (GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM)) return this.guards.create(bytes, label, usage);
    return this.device.createBuffer({ size: bytes, usage, label });
  }

  /** A small constant uniform buffer (kernel dims), shared by every dispatch with the same values. */
  uniform(values: Uint32Array | Float32Array): GPUBuffer {
    const key = `${values instanceof Float32Array ? 'f' : 'u'}${values.join(',')}`;
    let b = this.uniforms.get(key);
    if (!b) {
      const size = Math.max(16, Math.ceil(values.byteLength / 16) * 16);
      const data = new Uint8Array(size);
      data.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      b = this.buffer(size, `dims ${key}`, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      this.write(b, 0, data);
      this.uniforms.set(key, b);
    }
    return b;
  }

  /** Upload bytes (padded to 4) into a new storage buffer. */
  upload(data: ArrayBufferView, label: string): GPUBuffer {
    const b = this.buffer(data.byteLength, label);
    this.write(b, 0, data);
    return b;
  }

  write(buf: GPUBuffer, offset: number, data: ArrayBufferView): void {
    let view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (view.byteLength % 4 !== 0 || view.byteOffset % 4 !== 0 || !(view.buffer instanceof ArrayBuffer)) {
      const padded = new Uint8Array(Math.ceil(view.byteLength / 4) * 4);
      padded.set(view);
      view = padded;
    }
    if (view.byteLength) this.device.queue.writeBuffer(buf, offset, view);
  }

  /** Encode dispatches into one compute pass (dispatches in a pass see each other's writes). */
  encode(encoder: GPUCommandEncoder, dispatches: Dispatch[]): void {
    if (!dispatches.length) return;
    const pass = encoder.beginComputePass();
    for (const d of dispatches) {
      // an empty grid (e.g. an expert segment no token chose) does nothing; Dawn would warn about it on stdout
      if (!d.workgroups[0] || !d.workgroups[1] || !d.workgroups[2]) continue;
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
    }
    pass.end();
  }

  /**
   * Copy `size` bytes of `src` back to the host. The copy (after `encoder`'s commands, if given) is submitted before
   * this returns, so that a caller may submit the next step while this one runs (pipelined decode); the mapping
   * resolves later. Reads in flight use separate buffers (tooling.md: fences, i.e. onSubmittedWorkDone, overlap
   * badly; mapAsync on distinct buffers does not).
   */
  read(src: GPUBuffer, offset: number, size: number, encoder?: GPUCommandEncoder): Promise<ArrayBuffer> {
    try { this.checkAlive(); } catch (e) { return Promise.reject(e); }
    const bytes = Math.ceil(size / 4) * 4;
    const rb = this.readback(bytes);
    const enc = encoder ?? this.device.createCommandEncoder();
    enc.copyBufferToBuffer(src, offset, rb, 0, bytes);
    return this.submitRead(enc, rb, size);
  }

  /** A mappable buffer of at least `bytes` for copies to read back (pooled when small); submitRead maps and returns it. */
  readback(bytes: number): GPUBuffer {
    const pooled = bytes <= READBACK_POOL_BYTES;
    if (pooled) {
      const i = this.readbacks.findIndex(b => b.size >= bytes);
      if (i >= 0) return this.readbacks.splice(i, 1)[0]!;
    }
    return this.device.createBuffer({ size: pooled ? Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(bytes, 4)))) : Math.max(bytes, 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'readback' });
  }

  /**
   * Submit `enc` (whose commands copy into `rb`, from readback()) and map `rb`: the promise gives its first `size`
   * bytes. Several reads may be in flight, each in its own buffer (read() says why).
   */
  submitRead(enc: GPUCommandEncoder, rb: GPUBuffer, size: number): Promise<ArrayBuffer> {
    const bytes = Math.ceil(size / 4) * 4;
    // A step whose commands are invalid (a binding over the limit, a destroyed buffer) runs nothing: catch that
    // here, with the readback, instead of handing back a buffer of zeros as logits.
    this.device.pushErrorScope('validation');
    this.device.queue.submit([enc.finish()]);
    const scope = this.device.popErrorScope();
    return (async () => {
      try { await rb.mapAsync(GPUMapMode.READ); } finally {
        const err = await scope.catch(() => null);
        if (err) this.fail(err.message, 'Validation');
      }
      this.checkAlive();
      const out = rb.getMappedRange(0, bytes).slice(0, size);
      rb.unmap();
      if (rb.size <= READBACK_POOL_BYTES && this.readbacks.length < 4) this.readbacks.push(rb); else rb.destroy();
      if (this.guards) await this.guards.check();
      return out;
    })();
  }

  submit(encoder: GPUCommandEncoder): void {
    this.device.queue.submit([encoder.finish()]);
  }

  destroy(): void {
    this.pipelines.clear();
    this.bindGroups.clear();
    try { this.device.destroy(); } catch { /* already gone */ }
  }
}

export interface Binding { buffer: GPUBuffer; offset?: number; size?: number }

export function pipelineKey(spec: PipelineSpec): string {
  const d = Object.entries(spec.defines ?? {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(',');
  const o = Object.entries(spec.overrides ?? {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(',');
  return `${spec.label}|${d}|${o}`;
}

function describeVariant(spec: PipelineSpec): string {
  const parts = [...Object.entries(spec.defines ?? {}), ...Object.entries(spec.overrides ?? {})].map(([k, v]) => `${k}=${v}`);
  return parts.length ? `[${parts.join(',')}]` : '';
}

function oneLine(s: string): string {
  return s.split('\n').map(l => l.trim()).filter(Boolean).slice(0, 3).join(' | ');
}

export function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}
