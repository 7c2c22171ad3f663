// Resolves what the user named: the device (gpu, gpu:N, cpu, or auto) and the model (a folder, or the embedded default).
import { existsSync, readdirSync, statSync } from 'node:fs';
import type { Backend } from '../backend/backend.ts';
import { CpuBackend } from '../backend/cpu.ts';
import { GpuBackend } from '../backend/gpu.ts';
import { Gpu, listAdapters } from '../gpu/device.ts';
import { isHubId, type PullOptions } from '../load/hub.ts';
import { DEFAULT_MODEL_NAME, defaultModelDir } from '../load/default_model.ts';
import { inspectModel, loadWeights, type Model, pullModel } from './model.ts';
import { loadTokenizer, type Tokenizer, tokenizerProblem } from '../tokenizer/tokenizer.ts';
import { FlaError, UsageError } from '../util/errors.ts';
import { log } from '../util/log.ts';

export { DEFAULT_MODEL_NAME, defaultModelDir };

export type DeviceSpec = { kind: 'auto' } | { kind: 'cpu' } | { kind: 'gpu'; index: number };

export function parseDevice(s: unknown): DeviceSpec {
  if (s === undefined || s === 'auto') return { kind: 'auto' };
  const v = String(s);
  if (v === 'cpu') return { kind: 'cpu' };
  const m = v.match(/^gpu(?::(\d+))?$/);
  if (m) return { kind: 'gpu', index: m[1] ? Number(m[1]) : 0 };
  throw new UsageError(`--device must be gpu, gpu:N or cpu, got ${JSON.stringify(v)}`);
}

/** Once kernel compilation has taken more than `thresholdMs` in all, say so (a fresh machine compiles for many seconds). */
export function announceCompiles(gpu: Pick<Gpu, 'onCompiled'>, say: (m: string) => void = m => log.info(m), thresholdMs = 1000): void {
  let total = 0, said = false;
  gpu.onCompiled = (_label, ms) => {
    total += ms;
    if (!said && total > thresholdMs) {
      said = true;
      say('compiling GPU kernels … (slow the first time on a machine; the driver caches them for later runs)');
    }
  };
}

async function gpuBackend(index: number): Promise<Backend> {
  const gpu = await Gpu.create(index);
  if (process.stderr.isTTY || log.level === 'debug') announceCompiles(gpu);   // for a person waiting, as the progress bars
  return new GpuBackend(gpu);
}

/**
 * The device for a spec. auto: the first GPU adapter, except that a software-only one (lavapipe/llvmpipe, adapter type
 * "cpu") is slower than the CPU backend (56 vs 16 tok/s decoding kjv-rwkv7), so the CPU backend is chosen and said.
 */
export async function openBackend(spec: DeviceSpec): Promise<Backend> {
  if (spec.kind === 'cpu') return new CpuBackend();
  if (spec.kind === 'gpu') return gpuBackend(spec.index);
  const adapters = await listAdapters();
  if (adapters.length === 0) {
    log.warn('no WebGPU adapter found; running on the CPU (slow). Install a Vulkan driver, or pass --device cpu to silence this.');
    return new CpuBackend();
  }
  const hw = adapters.findIndex(a => a.summary.type !== 'cpu');
  if (hw < 0) {
    log.info(`the only GPU adapter is a software one (${adapters[0]!.summary.name.split(':')[0]}): running on the CPU backend, which is faster here (--device gpu uses the adapter anyway)`);
    return new CpuBackend();
  }
  return gpuBackend(hw);
}

/** True when `arg` names a model: an existing folder or a hub id `org/name`. */
export function looksLikeModel(arg: string): boolean {
  if (existsSync(arg)) return statSync(arg).isDirectory();
  return isHubId(arg);
}

/** The folder a model argument names: the default, a local folder, or a hub id (org/name[@rev]) pulled into the HF cache. */
export async function resolveModel(arg: string | undefined, hub: PullOptions = {}): Promise<string> {
  if (arg !== undefined && !existsSync(arg) && isHubId(arg)) return (await pullModel(arg, hub)).dir;
  return resolveModelDir(arg);
}

export function resolveModelDir(arg: string | undefined): string {
  if (arg === undefined || arg === DEFAULT_MODEL_NAME) return defaultModelDir();
  if (existsSync(arg)) {
    if (!statSync(arg).isDirectory()) throw new UsageError(`${arg}: expected a model folder (with config.json and *.safetensors), got a file`);
    return arg;
  }
  if (isHubId(arg)) throw new FlaError(`${arg}: not a local folder (hub ids go through resolveModel)`, 1);
  throw new UsageError(`${arg}: no such model folder`);
}

export interface Session { model: Model; tokenizer: Tokenizer | null; backend: Backend }

export async function openSession(modelArg: string | undefined, device: DeviceSpec, needTokenizer: boolean, hub: PullOptions = {}): Promise<Session> {
  const dir = await resolveModel(modelArg, { ...hub, needTokenizer });
  const info = inspectModel(dir);          // config errors before any GPU work
  const tokenizer = needTokenizer || tokenizerProblem(readdirSync(dir)) === null ? loadTokenizer(dir) : null;
  const backend = await openBackend(device);
  const t0 = performance.now();
  const model = loadWeights(info, backend);
  log.debug(`loaded ${dir} on ${backend.name} in ${(performance.now() - t0).toFixed(0)} ms`);
  return { model, tokenizer, backend };
}
