// defines: Tokenizer (what the runtime needs of one), loadTokenizer (tokenizer.json, else an RWKV World vocab),
// tokenizerProblem (whether a file list or folder has a tokenizer fla can use, without loading it).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '../util/errors.ts';
import { HfTokenizer } from './hf.ts';
import { WorldTokenizer } from './rwkv_world.ts';

export interface Tokenizer {
  readonly vocabSize: number;
  readonly eosIds: number[];
  readonly bosId: number | null;
  readonly chatTemplate: string | null;
  readonly config: Record<string, unknown>;
  encode(text: string, addSpecialTokens?: boolean): number[];
  decode(ids: number[], skipSpecial?: boolean): string;
  tokenToId(s: string): number | undefined;
  idToToken(id: number): string | undefined;
}

export const RWKV_VOCAB = /^rwkv_vocab_[\w.-]*\.txt$/;

/** The tokenizer files a repo or folder listing holds that fla reads, or a reason there is none. */
export function tokenizerProblem(files: string[]): string | null {
  if (files.includes('tokenizer.json')) return null;
  if (files.some(f => RWKV_VOCAB.test(f))) return null;
  const other = ['tokenizer.model', 'vocab.json', 'merges.txt', 'vocab.txt'].filter(f => files.includes(f));
  return other.length
    ? `no tokenizer.json (it has ${other.join(', ')}; fla reads tokenizer.json or an RWKV World rwkv_vocab_*.txt)`
    : 'no tokenizer (tokenizer.json or an RWKV World rwkv_vocab_*.txt)';
}

function readConfig(path: string): Record<string, unknown> {
  if (!existsSync(path)) return {};
  let v: unknown;
  try { v = JSON.parse(readFileSync(path, 'utf8')); } catch (e) { throw new FormatError(`${path} is not valid JSON: ${(e as Error).message}`); }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new FormatError(`${path} must hold a JSON object`);
  return v as Record<string, unknown>;
}

/** The tokenizer of a model folder: tokenizer.json (+ tokenizer_config.json), else rwkv_vocab_*.txt (+ tokenizer_config.json). */
export function loadTokenizer(dir: string): Tokenizer {
  if (existsSync(join(dir, 'tokenizer.json'))) return HfTokenizer.load(dir);
  const files = existsSync(dir) ? readdirSync(dir) : [];
  const vocab = files.filter(f => RWKV_VOCAB.test(f)).sort().at(-1);
  if (vocab) return WorldTokenizer.load(join(dir, vocab), readConfig(join(dir, 'tokenizer_config.json')));
  throw new FormatError(`${dir}: ${tokenizerProblem(files)}`);
}
