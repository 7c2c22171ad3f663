// State files (fla run --save-state / --load-state): one sequence's state after its tokens, with the model's
// config and a hash of its weights so that it is only ever loaded into the model that made it.
//
// Layout: "FLASTATE" | u32 version | u32 header bytes | header JSON (utf-8) | f32 data | "FLAEND\0\0".
// The header holds the format, model_type, config, weights sha256, tokens, and each state's key and f32 count.
import { createHash } from 'node:crypto';
import { existsSync, openSync, readFileSync, readSync, closeSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { snapshotParts, type Snapshot, type StateSpec } from '../backend/backend.ts';
import type { Model } from './model.ts';
import { FormatError } from '../util/errors.ts';

const MAGIC = 'FLASTATE';
const END = 'FLAEND\0\0';
const VERSION = 1;

interface Header {
  model_type: unknown;
  config: Record<string, unknown>;
  weights_sha256: string;
  tokens: number[];
  states: { key: string; floats: number }[];
}

/** The weight files of a model folder, in a fixed order (as Checkpoint.open finds them). */
function weightFiles(dir: string): string[] {
  const main = join(dir, 'model.safetensors');
  if (existsSync(main)) return [main];
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    const map = (JSON.parse(readFileSync(index, 'utf8')) as { weight_map?: Record<string, string> }).weight_map ?? {};
    return [...new Set(Object.values(map))].sort().map(f => join(dir, f));
  }
  return [];
}

const hashes = new Map<string, string>();

/** sha256 over the model's weight files (read in 16 MiB pieces; remembered per folder for the process). */
export function weightsHash(dir: string): string {
  const known = hashes.get(dir);
  if (known) return known;
  const h = createHash('sha256');
  const buf = Buffer.alloc(16 << 20);
  for (const f of weightFiles(dir)) {
    const fd = openSync(f, 'r');
    try {
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
    } finally { closeSync(fd); }
  }
  const out = h.digest('hex');
  hashes.set(dir, out);
  return out;
}

/** Stable JSON of a config (keys sorted) for comparing two configs. */
function canon(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map(k => `${JSON.stringify(k)}:${canon((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/** Write `snap` (the state after `tokens`) to `file`: a temporary file renamed into place, so never half-written. */
export async function saveState(file: string, model: Model, tokens: number[], snap: Snapshot): Promise<void> {
  const o = model.backend;
  const parts = snapshotParts(o.stateSpecs, snap.depth);
  const header: Header = {
    model_type: model.config.model_type, config: model.config, weights_sha256: weightsHash(model.dir), tokens,
    states: o.stateSpecs.map((s, i) => ({ key: s.key, floats: parts[i]! })),
  };
  const data = await o.readSnapshot(snap);
  const head = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(16);
  pre.write(MAGIC, 0, 'latin1');
  pre.writeUInt32LE(VERSION, 8);
  pre.writeUInt32LE(head.length, 12);
  const pad = Buffer.alloc((4 - (head.length % 4)) % 4);   // f32 data 4-aligned
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, Buffer.concat([pre, head, pad, Buffer.from(data.buffer, data.byteOffset, data.byteLength), Buffer.from(END, 'latin1')]));
    renameSync(tmp, file);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* never written */ }
    throw new FormatError(`${file}: cannot write the state file (${(e as Error).message})`);
  }
}

export interface LoadedState { tokens: number[]; snapshot: Snapshot }

/** Read a state file made for this very model (same config, same weights); anything else is a one-line error. */
export function loadState(file: string, model: Model): LoadedState {
  const bad = (why: string) => new FormatError(`${file}: ${why}`);
  if (!existsSync(file) || !statSync(file).isFile()) throw bad('no such state file');
  const buf = readFileSync(file);
  if (buf.length < 16 || buf.toString('latin1', 0, 8) !== MAGIC) throw bad('not an fla state file (written by fla run --save-state)');
  const version = buf.readUInt32LE(8), hl = buf.readUInt32LE(12);
  if (version !== VERSION) throw bad(`state file version ${version}, this fla reads version ${VERSION}`);
  if (16 + hl > buf.length) throw bad('truncated state file (header cut short)');
  let h: Header;
  try { h = JSON.parse(buf.toString('utf8', 16, 16 + hl)) as Header; } catch { throw bad('corrupt state file header'); }
  if (!h || !Array.isArray(h.tokens) || !Array.isArray(h.states) || typeof h.weights_sha256 !== 'string' || !h.config
    || !h.tokens.every(t => Number.isSafeInteger(t) && t >= 0)) throw bad('corrupt state file header');
  if (h.model_type !== model.config.model_type) throw bad(`saved for a ${String(h.model_type)} model, not this ${String(model.config.model_type)} model (${model.dir})`);
  if (canon(h.config) !== canon(model.config)) throw bad(`saved for a model with another config.json than ${model.dir}`);
  if (h.weights_sha256 !== weightsHash(model.dir)) throw bad(`saved for a model with other weights than ${model.dir}`);
  // the model's states as its architecture declares them (token-indexed ones hold `depth` rows, whatever --ctx is)
  const depth = h.tokens.length, specs = model.arch.state(model.cfg, 1) as StateSpec[];
  const parts = specs.map(sp => (sp.tokenCols ? depth * sp.tokenCols : sp.cols));
  if (h.states.length !== specs.length || h.states.some((s, i) => s.key !== specs[i]!.key || s.floats !== parts[i]))
    throw bad(`its states do not match the model's (${depth} tokens)`);
  const at = 16 + hl + ((4 - (hl % 4)) % 4), floats = parts.reduce((a, b) => a + b, 0);
  if (buf.length < at + 4 * floats + END.length || buf.toString('latin1', at + 4 * floats, at + 4 * floats + END.length) !== END)
    throw bad(`truncated state file (${buf.length} bytes, expected ${at + 4 * floats + END.length})`);
  if (buf.length !== at + 4 * floats + END.length) throw bad('trailing bytes after the state data');
  const data = new Float32Array(floats);
  new Uint8Array(data.buffer).set(buf.subarray(at, at + 4 * floats));
  return { tokens: h.tokens, snapshot: model.backend.uploadSnapshot(data, depth) };
}
