// Validation of option values (cli/argv.ts passes them as the strings typed).
import { readFileSync } from 'node:fs';
import { UsageError } from '../src/util/errors.ts';

export function optInt(v: unknown, flag: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return def;
  const n = typeof v === 'number' ? v : Number(String(v).trim() === '' ? NaN : v);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`${flag} must be an integer${max < Number.MAX_SAFE_INTEGER ? ` in [${min}, ${max}]` : ` ≥ ${min}`}, got ${JSON.stringify(v)}`);
  return n;
}

export function optNum(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) throw new UsageError(`${flag} given more than once`);
  const n = typeof v === 'number' ? v : Number(String(v).trim() === '' ? NaN : v);
  if (!Number.isFinite(n)) throw new UsageError(`${flag} must be a number, got ${JSON.stringify(v)}`);
  return n;
}

export function optStrings(v: unknown, flag = 'option'): string[] {
  if (v === undefined) return [];
  const all = Array.isArray(v) ? v : [v];
  if (all.some(x => typeof x === 'boolean')) throw new UsageError(`${flag} needs a value`);
  return all.map(String);
}

/** --stop values: as typed, with the escapes \n \t \r \\ read as llama.cpp does (so --stop '\n\n' is two newlines). */
export function optStops(v: unknown): string[] {
  return optStrings(v, '--stop').map(s => s.replace(/\\([ntr\\])/g, (_, c: string) => ({ n: '\n', t: '\t', r: '\r', '\\': '\\' })[c]!));
}

/** A text option given once (--prompt, --file). */
export function optText(v: unknown, flag: string): string | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) throw new UsageError(`${flag} given more than once`);
  if (typeof v === 'boolean') throw new UsageError(`${flag} needs a value`);
  return String(v);
}

/** -n / --max-tokens: N ≥ 0, or -1 for "until EOS or the context". */
export function optMaxTokens(v: unknown, def: number): number {
  if (v === undefined) return def;
  const n = Array.isArray(v) ? NaN : Number(String(v).trim() === '' ? NaN : v);
  if (!Number.isSafeInteger(n) || n < -1)
    throw new UsageError(`--max-tokens must be an integer ≥ 0, or -1 for "until EOS or the context", got ${JSON.stringify(Array.isArray(v) ? v : String(v))}`);
  return n;
}

/** --seed: an integer in [0, 2^53). */
export function optSeed(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Array.isArray(v) ? NaN : Number(String(v).trim() === '' ? NaN : v);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new UsageError(`--seed must be an integer in [0, ${Number.MAX_SAFE_INTEGER}] (leave it out for a random seed), got ${JSON.stringify(Array.isArray(v) ? v : String(v))}`);
  return n;
}

/** `echo text | fla run` means "text": one trailing newline is dropped. */
const dropNewline = (s: string) => s.replace(/\r?\n$/, '');

/** A prompt file, or stdin for "-": the whole text, as UTF-8. */
export async function readPromptFile(path: string, what: string): Promise<string> {
  if (path === '-' || what === 'stdin') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(Buffer.from(c));
    return dropNewline(Buffer.concat(chunks).toString('utf8'));
  }
  try { return dropNewline(readFileSync(path, 'utf8')); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`${what} ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message}`);
  }
}

/** "--ids 1,2,3" → [1, 2, 3] */
export function parseIds(v: unknown, flag = '--ids'): number[] {
  const s = String(v).trim();
  if (!/^\d+(\s*,\s*\d+)*$/.test(s)) throw new UsageError(`${flag} must be comma-separated token ids like 1,2,3, got ${JSON.stringify(v)}`);
  return s.split(',').map(x => Number(x.trim()));
}

/** Reject options cac accepted but this command doesn't know. */
export function rejectUnknown(opts: Record<string, unknown>, known: string[]): void {
  const ok = new Set(['--', 'verbose', 'logLevel', 'help', 'h', 'v', 'version', ...known]);
  for (const k of Object.keys(opts)) {
    if (!ok.has(k)) throw new UsageError(`unknown option ${k.length === 1 ? '-' : '--'}${k.replace(/[A-Z]/g, c => '-' + c.toLowerCase())}`);
  }
}
