// Validation of option values (cac passes numbers-or-strings through unchecked).
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

export function optStrings(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
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
    if (!ok.has(k)) throw new UsageError(`unknown option --${k.replace(/[A-Z]/g, c => '-' + c.toLowerCase())}`);
  }
}
