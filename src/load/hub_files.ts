// Which files of a model repo fla needs (configs, tokenizer, safetensors weights), and whether a snapshot folder has them.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { FormatError } from '../util/errors.ts';

export const INDEX = 'model.safetensors.index.json';
const CONFIGS = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json',
  'chat_template.jinja', 'added_tokens.json'];
// Checkpoints that ship no tokenizer.json: sentencepiece, BPE vocab + merges, or RWKV's world vocabulary.
const OTHER_TOKENIZER = ['tokenizer.model', 'vocab.json', 'merges.txt'];
const RWKV_VOCAB = /^rwkv_vocab_[\w.-]*\.txt$/;

/** Small files to fetch, config.json first; the index comes along when the weights are sharded. */
export function smallFiles(files: string[]): string[] {
  const have = new Set(files);
  const out = CONFIGS.filter(f => have.has(f));
  if (!have.has('tokenizer.json')) out.push(...OTHER_TOKENIZER.filter(f => have.has(f)));
  out.push(...files.filter(f => RWKV_VOCAB.test(f)).sort());
  if (!have.has('model.safetensors') && have.has(INDEX)) out.push(INDEX);
  return out;
}

/** Shard names from an index's weight_map; paths must stay inside the repo. */
export function shardsOf(indexJson: string, where: string): string[] {
  let map: unknown;
  try { map = (JSON.parse(indexJson) as { weight_map?: unknown }).weight_map; } catch (e) {
    throw new FormatError(`${where}: invalid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (!map || typeof map !== 'object') throw new FormatError(`${where}: expected a "weight_map" object`);
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const s of shards)
    if (typeof s !== 'string' || !s || s.startsWith('/') || normalize(s).startsWith('..')) throw new FormatError(`${where}: bad shard name ${JSON.stringify(s)}`);
  return (shards as string[]).sort();
}

/** The weight files, as Checkpoint.open will look for them: model.safetensors, else the index's shards, else the one *.safetensors. */
export function weightFiles(files: string[], readIndex: () => string, where: string): string[] {
  if (files.includes('model.safetensors')) return ['model.safetensors'];
  if (files.includes(INDEX)) return shardsOf(readIndex(), `${where}/${INDEX}`);
  const st = files.filter(f => f.endsWith('.safetensors') && !f.includes('/'));
  if (st.length === 1) return st;
  if (st.length === 0) {
    const other = files.filter(f => /\.(bin|pth|pt|gguf|ckpt)$/.test(f));
    throw new FormatError(`${where}: no .safetensors weights${other.length ? ` (found ${other.slice(0, 3).join(', ')}; fla reads only safetensors)` : ''}`);
  }
  throw new FormatError(`${where}: ${st.length} .safetensors files but no ${INDEX}`);
}

/** Files a cached snapshot lacks (config.json and weights), [] when it can run; needs no network. */
export function missingLocally(dir: string, expected?: string[]): string[] {
  if (!existsSync(dir)) return ['config.json'];
  const top = readdirSync(dir);
  let want: string[];
  try {
    want = expected ?? ['config.json', ...weightFiles(top, () => readFileSync(join(dir, INDEX), 'utf8'), dir)];
  } catch { return ['weights']; }
  return want.filter(f => !existsSync(join(dir, f)));   // existsSync follows the symlink: a dangling one is missing
}
