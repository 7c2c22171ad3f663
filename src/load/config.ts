// Typed reads of config.json fields with one-line errors naming the field and what was expected.
import { existsSync, readFileSync } from 'node:fs';
import { FormatError, UnsupportedModelError } from '../util/errors.ts';

type Json = Record<string, unknown>;

export function int(j: Json, key: string, where: string, def?: number | null, min = 1): number {
  const v = j[key] ?? def;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)
    throw new FormatError(`${where}: config field ${key} must be an integer ≥ ${min}, got ${JSON.stringify(j[key] ?? null)}`);
  return v;
}

export function optInt(j: Json, key: string, where: string): number | null {
  return j[key] === undefined || j[key] === null ? null : int(j, key, where);
}

// Fields whose value has a sign the math needs: a norm epsilon below 0 (sqrt of a negative variance) and a RoPE base
// of 0 or less (log of it) give NaN at the first token, which would otherwise look like an answer ending at EOS.
const NON_NEGATIVE = /(^|_)(eps|epsilon)$/;
const POSITIVE = /^rope_theta$/;

export function num(j: Json, key: string, where: string, def?: number): number {
  const v = j[key] ?? def;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new FormatError(`${where}: config field ${key} must be a number, got ${JSON.stringify(j[key] ?? null)}`);
  if (NON_NEGATIVE.test(key) && v < 0) throw new FormatError(`${where}: config field ${key} must be ≥ 0 (a norm epsilon), got ${v}`);
  if (POSITIVE.test(key) && v <= 0) throw new FormatError(`${where}: config field ${key} must be > 0 (the RoPE base), got ${v}`);
  return v;
}

export function bool(j: Json, key: string, where: string, def: boolean): boolean {
  const v = j[key] ?? def;
  if (typeof v !== 'boolean') throw new FormatError(`${where}: config field ${key} must be true or false, got ${JSON.stringify(j[key])}`);
  return v;
}

export function str(j: Json, key: string, where: string, def?: string): string {
  const v = j[key] ?? def;
  if (typeof v !== 'string') throw new FormatError(`${where}: config field ${key} must be a string, got ${JSON.stringify(j[key] ?? null)}`);
  return v;
}

/** Token ids: a number, a list of numbers, or null. */
export function ids(j: Json, key: string): number[] {
  const v = j[key];
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

export function unsupported(where: string, field: string, value: unknown, supported: string): never {
  throw new UnsupportedModelError(`${where}: ${field} = ${JSON.stringify(value)} is not supported (supported: ${supported})`);
}

export function readJson(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new FormatError(`${path}: file not found`);
  let j: unknown;
  try { j = JSON.parse(readFileSync(path, 'utf8')); } catch (e) {
    throw new FormatError(`${path}: invalid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw new FormatError(`${path}: expected a JSON object`);
  return j as Record<string, unknown>;
}
