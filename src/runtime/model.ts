// Assembles a model: config.json → architecture (from model_type, through the registry) → weights uploaded to a
// backend. Above both src/models and src/load, so that load stays with files (safetensors, config, hub, cache).
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../backend/backend.ts';
import { ids, readJson } from '../load/config.ts';
import { type Pulled, pullRepo, type PullOptions } from '../load/hub.ts';
import { Checkpoint } from '../load/safetensors.ts';
import { parseQuant, WeightReader } from '../load/weights.ts';
import type { Arch } from '../models/arch.ts';
import { getArch } from '../models/registry.ts';
import { FormatError } from '../util/errors.ts';

export interface ModelInfo { dir: string; arch: Arch; cfg: any; config: Record<string, unknown>; eosIds: number[] }
export interface Model extends ModelInfo { weights: unknown; backend: Backend }

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
  parseQuant(config, where);   // an unsupported quantization is refused before any weights
  return { dir, arch, cfg: arch.parseConfig(config, where), config, eosIds: ids(config, 'eos_token_id') };
}

export function loadWeights(info: ModelInfo, backend: Backend): Model {
  const ckpt = Checkpoint.open(info.dir);
  const reader = new WeightReader(ckpt, info.dir, parseQuant(info.config, join(info.dir, 'config.json')));
  const weights = info.arch.load(info.cfg, reader, backend);
  reader.checkAllUsed();
  return { ...info, weights, backend };
}

/** The architecture check a hub download runs on config.json before any other file. */
export function checkArchConfig(config: Record<string, unknown>, where: string): void {
  getArch(config.model_type, where).parseConfig(config, where);
}

/** org/name[@revision] → a snapshot folder in the Hugging Face cache (an unsupported model_type is refused before the weights). */
export function pullModel(arg: string, o: PullOptions = {}): Promise<Pulled> {
  return pullRepo(arg, o, checkArchConfig);
}
