// The embedded default model (kjv-rwkv7). From a checkout it is read in place; in the standalone binary its
// files are embedded (bun build --compile) and extracted once to the cache, since weights are memory-mapped.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import configPath from '../../models/kjv-rwkv7/config.json' with { type: 'file' };
import genPath from '../../models/kjv-rwkv7/generation_config.json' with { type: 'file' };
import weightsPath from '../../models/kjv-rwkv7/model.safetensors' with { type: 'file' };
import tokenizerPath from '../../models/kjv-rwkv7/tokenizer.json' with { type: 'file' };
import tokenizerConfigPath from '../../models/kjv-rwkv7/tokenizer_config.json' with { type: 'file' };

export const DEFAULT_MODEL_NAME = 'kjv-rwkv7';

const FILES: Record<string, string> = {
  'config.json': configPath as unknown as string, 'generation_config.json': genPath as unknown as string,
  'model.safetensors': weightsPath as unknown as string, 'tokenizer.json': tokenizerPath as unknown as string,
  'tokenizer_config.json': tokenizerConfigPath as unknown as string,
};

/** A folder holding the default model's files. */
export function defaultModelDir(): string {
  const cfg = FILES['config.json']!;
  if (!cfg.startsWith('/$bunfs/')) return dirname(cfg);
  // embedded names carry a content hash, so a new binary extracts to a new folder
  const tag = basename(FILES['model.safetensors']!).replace(/\W+/g, '-');
  const root = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'fla', 'models');
  const dir = join(root, `${DEFAULT_MODEL_NAME}-${tag}`);
  if (existsSync(join(dir, 'model.safetensors'))) return dir;
  const tmp = `${dir}.${process.pid}.incomplete`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const [name, src] of Object.entries(FILES)) writeFileSync(join(tmp, name), readFileSync(src));
  try { renameSync(tmp, dir); } catch { rmSync(tmp, { recursive: true, force: true }); }   // another process won
  return dir;
}
