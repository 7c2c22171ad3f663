// Safetensors reading (single files and HF checkpoint folders) and a small writer; dtype conversion to f32 lives in
// util/dtype.ts (re-exported here).
import { bf16ToF32, dequantFp8, e4m3ToF32, f16ToF32, fp8Values, lookup8 } from '../util/dtype.ts';
export { bf16ToF32, dequantFp8, e4m3ToF32, f16ToF32 };
import { closeSync, existsSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { FormatError } from '../util/errors';

export type StDtype =
  | 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL' | 'U16' | 'U32' | 'U64'
  | 'F8_E4M3' | 'F8_E5M2';

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<StDtype, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, U16: 2, U32: 4, U64: 8,
  F8_E4M3: 1, F8_E5M2: 1,
};

/** One tensor entry; begin/end are absolute byte offsets in `file`. */
export interface TensorInfo { name: string; dtype: StDtype; shape: number[]; file: string; begin: number; end: number }

// The Rust/Python safetensors reader caps headers at 100 MB; anything larger is garbage.
const MAX_HEADER = 100_000_000;
const INDEX_NAME = 'model.safetensors.index.json';

export function isDtype(s: unknown): s is StDtype {
  return typeof s === 'string' && Object.hasOwn(DTYPE_SIZE, s);
}

/** Product of dims, or null when it is not a safe integer. */
export function numel(shape: readonly number[]): number | null {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return null;
  }
  return n;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parse and check the header of a whole file's bytes; TensorInfo offsets come out absolute. */
function parseHeader(file: string, bytes: Uint8Array): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const fail = (msg: string) => new FormatError(`${file}: ${msg}`);
  if (bytes.byteLength === 0) throw fail('empty file (expected an 8-byte header length, a JSON header and tensor data)');
  if (bytes.byteLength < 8) throw fail(`file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(bytes.byteLength - 8)) throw fail(`header length ${n} exceeds file size ${bytes.byteLength}`);
  if (n > BigInt(MAX_HEADER)) throw fail(`header length ${n} exceeds the ${MAX_HEADER}-byte limit`);
  const headerLen = Number(n);
  const dataStart = 8 + headerLen;
  const dataLen = bytes.byteLength - dataStart;

  let header: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart));
    header = JSON.parse(text);
  } catch (e) {
    // Invalid UTF-8 (TypeError), bad JSON (SyntaxError) or very deep nesting (RangeError).
    throw fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) throw fail('header is not a JSON object');

  const metadata: Record<string, string> = {};
  const rawMeta = header.__metadata__;
  if (rawMeta !== undefined && rawMeta !== null) {
    if (!isPlainObject(rawMeta)) throw fail('__metadata__ is not a string-to-string map');
    for (const [k, v] of Object.entries(rawMeta)) {
      if (typeof v !== 'string') throw fail(`__metadata__[${quote(k)}] is ${describe(v)}, expected a string`);
      // defineProperty so a key like "__proto__" stays an ordinary entry.
      Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
  }

  const tensors = new Map<string, TensorInfo>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const at = `tensor ${quote(name)}`;
    if (!isPlainObject(e)) throw fail(`${at}: entry is ${describe(e)}, expected an object`);
    const { dtype, shape, data_offsets: offs } = e;
    if (dtype === undefined || shape === undefined || offs === undefined) throw fail(`${at}: entry needs dtype, shape and data_offsets`);
    if (!isDtype(dtype)) throw fail(`${at}: unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw fail(`${at}: shape ${short(shape)} is not an array of non-negative integers`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[0] > offs[1]) {
      throw fail(`${at}: data_offsets ${short(offs)} is not [begin, end] with 0 <= begin <= end`);
    }
    const dims = shape as number[];
    const [b, end] = offs as [number, number];
    if (end > dataLen) throw fail(`${at}: data_offsets end ${end} is beyond the ${dataLen}-byte data section`);
    // Checked against the byte range before anyone allocates numel elements.
    const count = numel(dims);
    const want = count === null ? null : count * DTYPE_SIZE[dtype];
    if (want !== end - b) {
      throw fail(`${at}: ${dtype} [${dims.join(', ')}] needs ${want ?? 'too many'} bytes but data_offsets span ${end - b}`);
    }
    tensors.set(name, { name, dtype, shape: dims.slice(), file, begin: dataStart + b, end: dataStart + end });
  }

  // Zero-size tensors occupy no bytes, so they can sit anywhere.
  const ranges = [...tensors.values()].filter((t) => t.end > t.begin).sort((x, y) => x.begin - y.begin);
  for (let i = 1; i < ranges.length; i++) {
    const [p, t] = [ranges[i - 1]!, ranges[i]!];
    if (t.begin < p.end) throw fail(`tensors ${quote(p.name)} and ${quote(t.name)} overlap in the data section`);
  }
  return { tensors, metadata };
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

/** JSON text of a value, cut short; JSON escaping keeps messages on one line. */
function short(v: unknown, max = 60): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

const quote = (name: string): string => short(name, 120);

/** One .safetensors file, memory-mapped. */
export class SafetensorsFile {
  readonly tensors: Map<string, TensorInfo>;
  readonly metadata: Record<string, string>;

  private constructor(readonly path: string, private readonly buf: Uint8Array) {
    const h = parseHeader(path, buf);
    this.tensors = h.tensors;
    this.metadata = h.metadata;
  }

  static open(path: string): SafetensorsFile {
    let size: number;
    try {
      const st = statSync(path);
      if (!st.isFile()) throw new FormatError(`${path}: not a regular file`);
      size = st.size;
    } catch (e) {
      if (e instanceof FormatError) throw e;
      throw new FormatError(`${path}: cannot open (${(e as Error).message})`);
    }
    // mmap rejects empty files; let the header check give the message.
    if (size === 0) return new SafetensorsFile(path, new Uint8Array(0));
    let buf: Uint8Array;
    try {
      buf = Bun.mmap(path, { shared: false });
    } catch {
      // Bun.mmap fails on /$bunfs (compiled-binary) paths; read the whole file instead.
      try { buf = readFileSync(path); } catch (e) { throw new FormatError(`${path}: cannot read (${(e as Error).message})`); }
    }
    return new SafetensorsFile(path, buf);
  }

  /** Parse bytes already in memory; `path` is used in messages and TensorInfo.file. */
  static fromBytes(bytes: Uint8Array, path: string): SafetensorsFile {
    return new SafetensorsFile(path, bytes);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new FormatError(`${this.path}: no tensor ${quote(name)}`);
    return t;
  }

  /** Raw bytes of the tensor (a view into the mapping, no copy). */
  bytes(name: string): Uint8Array {
    const t = this.info(name);
    return this.buf.subarray(t.begin, t.end);
  }

  f32(name: string): Float32Array { return toF32(this.info(name).dtype, this.bytes(name)); }

  bits16(name: string): Uint16Array { return toBits16(this.info(name), this.bytes(name)); }
}

/** A checkpoint folder: model.safetensors, a sharded index, or a single other *.safetensors file. */
export class Checkpoint {
  readonly tensors = new Map<string, TensorInfo>();
  private readonly files = new Map<string, SafetensorsFile>();

  private constructor(readonly dir: string) {}

  static open(dir: string): Checkpoint {
    if (!existsSync(dir)) throw new FormatError(`${dir}: checkpoint folder not found`);
    // A direct file path is accepted too, for tools that point at one file.
    if (statSync(dir).isFile()) return Checkpoint.single(dir, dir);
    const main = join(dir, 'model.safetensors');
    if (existsSync(main)) return Checkpoint.single(dir, main);
    const index = join(dir, INDEX_NAME);
    if (existsSync(index)) return Checkpoint.sharded(dir, index);
    const found = readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort();
    if (found.length === 1) return Checkpoint.single(dir, join(dir, found[0]!));
    const what = found.length === 0 ? 'no .safetensors file' : `${found.length} .safetensors files (${found.join(', ')}) but no ${INDEX_NAME}`;
    throw new FormatError(`${dir}: expected model.safetensors or ${INDEX_NAME}, found ${what}`);
  }

  private static single(dir: string, path: string): Checkpoint {
    const ck = new Checkpoint(dir);
    const f = SafetensorsFile.open(path);
    ck.files.set(path, f);
    for (const [name, t] of f.tensors) ck.tensors.set(name, t);
    return ck;
  }

  private static sharded(dir: string, index: string): Checkpoint {
    const fail = (msg: string) => new FormatError(`${index}: ${msg}`);
    let json: unknown;
    try { json = JSON.parse(readFileSync(index, 'utf8')); } catch (e) { throw fail(`not valid JSON (${(e as Error).message})`); }
    const map = isPlainObject(json) ? json.weight_map : undefined;
    if (!isPlainObject(map)) throw fail('expected an object with a "weight_map" object (tensor name -> shard file)');
    const entries = Object.entries(map);
    if (entries.length === 0) throw fail('weight_map is empty');

    const ck = new Checkpoint(dir);
    const root = resolve(dir);
    for (const [name, shard] of entries) {
      if (typeof shard !== 'string' || shard === '') throw fail(`weight_map[${quote(name)}] is ${describe(shard)}, expected a file name`);
      // Shards must stay inside the folder; an index is data, not a path to follow anywhere.
      const path = join(dir, shard);
      if (isAbsolute(shard) || !resolve(path).startsWith(root + sep)) throw fail(`shard ${quote(shard)} is outside the checkpoint folder`);
      let f = ck.files.get(path);
      if (!f) {
        if (!existsSync(path)) throw fail(`shard ${quote(shard)} (for tensor ${quote(name)}) does not exist`);
        f = SafetensorsFile.open(path);
        ck.files.set(path, f);
      }
      const t = f.tensors.get(name);
      if (!t) throw fail(`tensor ${quote(name)} is missing from its shard ${quote(shard)}`);
      ck.tensors.set(name, t);
    }
    return ck;
  }

  has(name: string): boolean { return this.tensors.has(name); }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new FormatError(`${this.dir}: tensor ${quote(name)} not found in checkpoint`);
    return t;
  }

  bytes(name: string): Uint8Array {
    const t = this.info(name);
    return this.files.get(t.file)!.bytes(name);
  }

  /** Values converted to f32 (a new array). */
  f32(name: string): Float32Array { return toF32(this.info(name).dtype, this.bytes(name)); }

  /** Raw F16/BF16 bits; a view when aligned, else a copy. */
  bits16(name: string): Uint16Array { return toBits16(this.info(name), this.bytes(name)); }
}

// Typed views need offsets aligned to the element size; slice() copies into a fresh, aligned buffer.
function aligned(bytes: Uint8Array, align: number): Uint8Array {
  return bytes.byteOffset % align === 0 ? bytes : bytes.slice();
}

function toBits16(t: TensorInfo, bytes: Uint8Array): Uint16Array {
  if (t.dtype !== 'F16' && t.dtype !== 'BF16') {
    throw new FormatError(`${t.file}: tensor ${quote(t.name)} is ${t.dtype}, expected F16 or BF16`);
  }
  const b = aligned(bytes, 2);
  return new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
}

/** Convert raw little-endian tensor bytes of any dtype to a new Float32Array. */
export function toF32(dtype: StDtype, bytes: Uint8Array): Float32Array {
  const b = aligned(bytes, DTYPE_SIZE[dtype]);
  const n = b.byteLength / DTYPE_SIZE[dtype];
  const buf = b.buffer, off = b.byteOffset;
  switch (dtype) {
    case 'F32': return new Float32Array(buf.slice(off, off + b.byteLength));
    case 'F16': return f16ToF32(new Uint16Array(buf, off, n));
    case 'BF16': return bf16ToF32(new Uint16Array(buf, off, n));
    case 'F64': return Float32Array.from(new Float64Array(buf, off, n));
    case 'I32': return Float32Array.from(new Int32Array(buf, off, n));
    case 'U32': return Float32Array.from(new Uint32Array(buf, off, n));
    case 'I16': return Float32Array.from(new Int16Array(buf, off, n));
    case 'U16': return Float32Array.from(new Uint16Array(buf, off, n));
    case 'I8': return Float32Array.from(new Int8Array(buf, off, n));
    case 'U8': case 'BOOL': return Float32Array.from(new Uint8Array(buf, off, n));
    case 'I64': case 'U64': return new Float32Array(toF64Words(dtype, b, n));
    case 'F8_E4M3': return lookup8(new Uint8Array(buf, off, n), fp8Values('e4m3'));
    case 'F8_E5M2': return lookup8(new Uint8Array(buf, off, n), fp8Values('e5m2'));
  }
}

/** Read a whole reference file: float dtypes as Float32Array, integer dtypes as Int32Array. */
export function readTensorFile(path: string): Map<string, { dtype: StDtype; shape: number[]; data: Float32Array | Int32Array }> {
  const f = SafetensorsFile.open(path);
  const out = new Map<string, { dtype: StDtype; shape: number[]; data: Float32Array | Int32Array }>();
  for (const [name, t] of f.tensors) {
    const data = t.dtype.startsWith('F') || t.dtype === 'BF16' ? toF32(t.dtype, f.bytes(name)) : toI32(t, f.bytes(name));
    out.set(name, { dtype: t.dtype, shape: t.shape, data });
  }
  return out;
}

function toI32(t: TensorInfo, bytes: Uint8Array): Int32Array {
  const b = bytes.slice(); // a fresh, aligned copy
  const n = b.byteLength / DTYPE_SIZE[t.dtype];
  switch (t.dtype) {
    case 'I32': return new Int32Array(b.buffer, 0, n);
    case 'I16': return Int32Array.from(new Int16Array(b.buffer, 0, n));
    case 'U16': return Int32Array.from(new Uint16Array(b.buffer, 0, n));
    case 'I8': return Int32Array.from(new Int8Array(b.buffer, 0, n));
    case 'U8': case 'BOOL': return Int32Array.from(b);
    default: {
      // U32/I64/U64: keep exact values, refuse ones that do not fit in int32.
      const wide = t.dtype === 'U32' ? new Uint32Array(b.buffer, 0, n) : toF64Words(t.dtype, b, n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = wide[i]!;
        if (v !== (v | 0)) throw new FormatError(`${t.file}: tensor ${quote(t.name)} (${t.dtype}) has value ${v} outside the int32 range`);
        out[i] = v;
      }
      return out;
    }
  }
}

// 64-bit integers as doubles: lo + hi * 2^32 (exact up to 2^53, enough to range-check).
function toF64Words(dtype: StDtype, b: Uint8Array, n: number): Float64Array {
  const lo = new Uint32Array(b.buffer, b.byteOffset, n * 2);
  const hi = dtype === 'I64' ? new Int32Array(b.buffer, b.byteOffset, n * 2) : lo;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = lo[2 * i]! + hi[2 * i + 1]! * 4294967296;
  return out;
}

/** Write a safetensors file (to path + '.incomplete', then renamed), so readers never see a partial file. */
export function writeSafetensors(
  path: string,
  tensors: Record<string, { dtype: StDtype; shape: number[]; data: ArrayBufferView }>,
  metadata?: Record<string, string>,
): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new FormatError(`${path}: "__metadata__" is reserved, not a tensor name`);
    if (!isDtype(t.dtype)) throw new FormatError(`${path}: tensor ${quote(name)} has unknown dtype ${JSON.stringify(t.dtype)}`);
    const count = numel(t.shape);
    if (count === null || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new FormatError(`${path}: tensor ${quote(name)} has bad shape ${short(t.shape)}`);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (bytes.byteLength !== count * DTYPE_SIZE[t.dtype]) {
      throw new FormatError(`${path}: tensor ${quote(name)} has ${bytes.byteLength} bytes, ${t.dtype} [${t.shape.join(', ')}] needs ${count * DTYPE_SIZE[t.dtype]}`);
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    parts.push(bytes);
    offset += bytes.byteLength;
  }
  // Pad the JSON with spaces so the data section starts 8-aligned, as the Python writer does.
  const json = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(json.byteLength + ((8 - (json.byteLength % 8)) % 8)).fill(0x20);
  head.set(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(head.byteLength), true);

  const tmp = `${path}.incomplete`;
  const fd = openSync(tmp, 'w');
  try {
    for (const p of [len, head, ...parts]) {
      for (let done = 0; done < p.byteLength;) done += writeSync(fd, p, done, p.byteLength - done);
    }
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}
