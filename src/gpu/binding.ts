// Which WebGPU binding opens Dawn: bun-webgpu (bun:ffi over a C wrapper) or dawn.node (the `webgpu` npm
// package, the Dawn team's N-API addon). Both get the same instance toggles. FLA_WEBGPU forces one.
import { ptr } from 'bun:ffi';
import { knob } from '../util/knobs.ts';
// bun-webgpu's "exports" hides its package.json from TypeScript: name the file
import bunWebgpuPkg from '../../node_modules/bun-webgpu/package.json' with { type: 'json' };
import dawnPkg from 'webgpu/package.json' with { type: 'json' };

export type BindingName = 'bun-webgpu' | 'dawn';
export const BINDING_NAMES: readonly BindingName[] = ['bun-webgpu', 'dawn'];

/**
 * Instance toggles for both bindings: allow_unsafe_apis exposes the experimental features
 * (chromium-experimental-subgroup-matrix); vulkan_enable_f16_on_nvidia lets Dawn offer shader-f16 on
 * NVIDIA's Vulkan driver (only dawn.node's Dawn knows it; an unknown toggle is ignored with a warning).
 */
export const TOGGLES = ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia'] as const;

export interface WebGpuBinding {
  name: BindingName;
  version: string;
  gpu: GPU;
  /** dawn.node: whether devices of this instance keep Dawn's robustness (bounds checks); bun-webgpu always does */
  robust: boolean;
}

/** The binding FLA_WEBGPU forces, or null for the automatic choice. A bad value is a UsageError (src/util/knobs.ts). */
export function forcedBinding(): BindingName | null {
  const v = knob('FLA_WEBGPU');
  return v === undefined || v === 'auto' ? null : v as BindingName;
}

/** bun-webgpu 0.1.7 ships a native library for linux-x64 only (tooling.md); elsewhere only dawn.node runs. */
export function bunWebgpuBuilt(): boolean {
  return process.platform === 'linux' && process.arch === 'x64';
}

/**
 * Bindings loaded so far. This map also keeps each GPU instance alive for the life of the process, which dawn.node
 * needs: when the object create() returned is garbage-collected while a device made from it lives, the next event
 * processing crashes ("The futex facility returned an unexpected error code" / std::system_error "Invalid argument",
 * then a segfault), the crash issue 16 saw in popErrorScope. Reproducer: create([]) → requestAdapter →
 * requestDevice, drop the create() result, then 300 × (pushErrorScope; await popErrorScope(); Bun.gc(true) every
 * tenth; await setTimeout 0): crashes 3 runs in 3 under Bun 1.4.5 and under Node 20.20 (node --expose-gc, gc()),
 * on lavapipe; none with the instance kept (test/regular/unit/dawn_lifetime.test.ts).
 */
const loaded = new Map<BindingName, WebGpuBinding>();

/** Load `name` once per process (throws when its native library cannot be loaded). */
export async function loadBinding(name: BindingName): Promise<WebGpuBinding> {
  const hit = loaded.get(name);
  if (hit) return hit;
  const b = name === 'dawn' ? loadDawn(dawnRobust()) : await loadBunWebgpu();
  loaded.set(name, b);
  return b;
}

/**
 * Whether dawn.node devices keep WebGPU robustness: yes unless FLA_DAWN_ROBUSTNESS=0, which adds Dawn's
 * disable_robustness — on Vulkan no Tint index clamping and no robustBufferAccess(2) in vkCreateDevice. Every kernel
 * stays in bounds by construction (docs/bounds.md; FLA_GUARD_BUFFERS=1 tests it), but on an H200 the toggle made
 * batch-1 decode faster and prefill and batch-8 decode slower (llama-1b, one A/B), so it is not the default.
 */
export function dawnRobust(): boolean { return knob('FLA_DAWN_ROBUSTNESS') !== '0'; }

/** Globals (GPUBufferUsage, GPUMapMode, …) from the binding the device was opened with. */
export function installGlobals(b: WebGpuBinding): void {
  const g = globalsOf.get(b);
  if (g) Object.assign(globalThis, g);
}

const globalsOf = new WeakMap<WebGpuBinding, Record<string, unknown>>();

// ---- dawn.node ----

/**
 * The addon for this platform. Each require names its file literally so that `bun build --compile`
 * embeds it; scripts/build.sh defines process.env.FLA_DAWN_TARGET so the other platforms' branches fold
 * away and only one addon (21 MB) is embedded.
 */
function requireDawnAddon(): { create(flags: string[]): GPU; globals: Record<string, unknown> } {
  const host = `${process.platform}-${process.platform === 'darwin' ? 'universal' : process.arch}`;
  const T = process.env.FLA_DAWN_TARGET;
  if (T === 'linux-x64' || (!T && host === 'linux-x64')) return require('webgpu/dist/linux-x64/dawn.node');
  if (T === 'linux-arm64' || (!T && host === 'linux-arm64')) return require('webgpu/dist/linux-arm64/dawn.node');
  if (T === 'darwin-universal' || (!T && host === 'darwin-universal')) return require('webgpu/dist/darwin-universal/dawn.node');
  if (T === 'win32-x64' || (!T && host === 'win32-x64')) return require('webgpu/dist/win32-x64/dawn.node');
  if (T === 'win32-arm64' || (!T && host === 'win32-arm64')) return require('webgpu/dist/win32-arm64/dawn.node');
  throw new Error(`dawn.node has no build for ${host}${T ? ` (this binary was built for ${T})` : ''}`);
}

/**
 * dawn.node applies its flags to the instance and to every device: the TOGGLES, timestamp_quantization off (fla
 * bench's per-kernel table; Dawn rounds timestamps to ~65 µs otherwise), FLA_DAWN_SKIP_VALIDATION's toggle, and
 * disable_robustness unless `robust`.
 */
export function dawnFlags(robust = dawnRobust()): string[] {
  const enable: string[] = [...TOGGLES];
  if (knob('FLA_DAWN_SKIP_VALIDATION') === '1') enable.push('skip_validation');
  if (!robust) enable.push('disable_robustness');
  return [`enable-dawn-features=${enable.join(',')}`, 'disable-dawn-features=timestamp_quantization'];
}

function loadDawn(robust: boolean): WebGpuBinding {
  const addon = requireDawnAddon();
  const gpu = addon.create(dawnFlags(robust));
  const b: WebGpuBinding = { name: 'dawn', version: dawnPkg.version, gpu, robust };
  globalsOf.set(b, addon.globals);
  return b;
}

// ---- bun-webgpu ----

// WGPUSType_DawnTogglesDescriptor in the webgpu.h of bun-webgpu's Dawn (its structs table says 327690)
const STYPE_DAWN_TOGGLES = 0x5000a;

/**
 * bun-webgpu's createGPUInstance() calls wgpuCreateInstance(NULL), so it cannot take toggles. We make the
 * instance ourselves through its loaded library, with a WGPUInstanceDescriptor whose nextInChain is a
 * WGPUDawnTogglesDescriptor, and wrap it in the binding's own GPU class. Its Dawn knows allow_unsafe_apis
 * (the adapter then lists 37 features on lavapipe instead of 26) but not vulkan_enable_f16_on_nvidia.
 */
async function loadBunWebgpu(): Promise<WebGpuBinding> {
  if (!bunWebgpuBuilt()) throw new Error(`bun-webgpu has no native library for ${process.platform}-${process.arch}`);
  const mod: any = await import('bun-webgpu');
  const base: any = mod.createGPUInstance();
  const lib = base.lib, GPUImpl = base.constructor;
  let gpu: any = base;
  if (lib?.wgpuCreateInstance && typeof GPUImpl === 'function') {
    const names = TOGGLES.map(t => Buffer.from(`${t}\0`));
    const list = new BigUint64Array(names.length);
    names.forEach((s, i) => { list[i] = BigInt(ptr(s)); });
    const toggles = new DataView(new ArrayBuffer(48));   // {chain{next, sType}, enabledCount, enabled, disabledCount, disabled}
    toggles.setUint32(8, STYPE_DAWN_TOGGLES, true);
    toggles.setBigUint64(16, BigInt(names.length), true);
    toggles.setBigUint64(24, BigInt(ptr(list)), true);
    const desc = new BigUint64Array(8);                  // WGPUInstanceDescriptor, nextInChain first, the rest zero
    desc[0] = BigInt(ptr(toggles));
    const inst = lib.wgpuCreateInstance(ptr(desc));
    if (inst) { base.destroy?.(); gpu = new GPUImpl(inst, lib); }
    keepAlive.push(names, list, toggles, desc);          // Dawn copies the toggles, but keep them anyway
  }
  patchTicker(gpu._ticker);
  const b: WebGpuBinding = { name: 'bun-webgpu', version: bunWebgpuPkg.version, gpu, robust: true };
  globalsOf.set(b, mod.globalConstructors ?? {});
  return b;
}

const keepAlive: unknown[] = [];

// tooling.md: the stock ticker loops setImmediate and eats a core while awaiting the GPU
// (on lavapipe the "GPU" is that core). Spin 0.5 ms for low latency, then poll every 1 ms. On a real GPU a decode
// step's readback is due within milliseconds: Gpu.create spins longer there (setSpinMs), so that no 1 ms sleep
// lands on every token.
let spinMs = 0.5;
/** How long a pending GPU callback is busy-polled before polling every 1 ms (bun-webgpu's ticker). */
export function setSpinMs(ms: number): void { spinMs = ms; }

/**
 * dawn.node polls the same way: while one of its promises is pending, its AsyncRunner hands the global setImmediate
 * a native callback that runs wgpuInstanceProcessEvents and schedules itself again (29 000 calls in 0.46 s of
 * waiting for lavapipe, measured; under load half of a dawn.node process's CPU samples, the other half lavapipe
 * compiling). On a CPU adapter that loop takes the cores lavapipe compiles and runs on, so there a streak of its
 * callbacks (none 10 ms apart) spins for spinMs, then each runs on a 1 ms timer. Not on GPUs: a pipelined decode
 * keeps the streak unbroken and its readbacks are due within a millisecond.
 */
export function throttleDawnPolling(): void {
  const g = globalThis as any;
  if (g.__flaDawnThrottled) return;
  g.__flaDawnThrottled = true;
  const setImmediateWas = g.setImmediate;
  let streakStart = 0, last = -Infinity;
  g.setImmediate = function (this: unknown, fn: unknown, ...args: unknown[]) {
    if (typeof fn === 'function' && !args.length && fn.length === 0 && fn.name === '' && Function.prototype.toString.call(fn).includes('[native code]')) {
      const now = performance.now();
      if (now - last > 10) streakStart = now;   // a new wait: no callback of the loop for 10 ms
      last = now;
      if (now - streakStart >= spinMs) return setTimeout(fn as () => void, 1);
    }
    return setImmediateWas.call(this, fn, ...args);
  };
}

function patchTicker(ticker: any): void {
  if (!ticker) return;
  const proto = Object.getPrototypeOf(ticker);
  if (proto.__flaPatched) return;
  const register = proto.register;
  proto.register = function (this: any) {
    if (!this.hasWaiting()) this._waitStart = performance.now();
    return register.call(this);
  };
  proto.scheduleTick = function (this: any) {
    if (this._ticking) return;
    this._ticking = true;
    const run = () => {
      this.lib.wgpuInstanceProcessEvents(this.instancePtr);
      this._ticking = false;
      if (this.hasWaiting()) this.scheduleTick();
    };
    if (performance.now() - (this._waitStart ?? 0) < spinMs) setImmediate(run); else setTimeout(run, 1);
  };
  proto.__flaPatched = true;
}
