// Opens a checkpoint folder: config.json → architecture → weights uploaded to a backend, plus the tokenizer.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../backend/backend.ts';
import type { Arch } from '../models/arch.ts';
import { getArch } from '../models/registry.ts';
import { FormatError } from '../util/errors.ts';
import { ids } from './config.ts';
import { Checkpoint } from './safetensors.ts';
import { WeightReader } from './weights.ts';

export interface ModelInfo { dir: string; arch: Arch; cfg: any; config: Record<string, unknown>; eosIds: number[] }
export interface Model extends ModelInfo { weights: unknown; backend: Backend }

export function readJson(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new FormatError(`${path}: file not found`);
  let j: unknown;
  try { j = JSON.parse(readFileSync(path, 'utf8')); } catch (e) {
    throw new FormatError(`${path}: invalid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw new FormatError(`${path}: expected a JSON object`);
  return j as Record<string, unknown>;
}

/** Read config.json (and generation_config.json) and resolve the architecture; no weights touched. */
export function inspectModel(dir: string): ModelInfo {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new FormatError(`${dir}: not a model folder`);
  const info = inspectModelConfig(dir, readJson(join(dir, 'config.json')));
  let eos = info.eosIds;
  const gen = join(dir, 'generation_config.json');
  if (existsSync(gen)) { const g = ids(readJson(gen), 'eos_token_id'); if (g.length) eos = g; }
  return { ...info, eosIds: eos };
}

/** Resolve the architecture of a parsed config.json (`dir` names it in errors). */
export function inspectModelConfig(dir: string, config: Record<string, unknown>): ModelInfo {
  const where = join(dir, 'config.json');
  const arch = getArch(config.model_type, where);
  return { dir, arch, cfg: arch.parseConfig(config, where), config, eosIds: ids(config, 'eos_token_id') };
}

export function loadWeights(info: ModelInfo, backend: Backend): Model {
  const ckpt = Checkpoint.open(info.dir);
  const reader = new WeightReader(ckpt, info.dir);
  const weights = info.arch.load(info.cfg, reader, backend);
  reader.checkAllUsed();
  return { ...info, weights, backend };
}
