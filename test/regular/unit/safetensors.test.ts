// Tests for src/load/safetensors.ts: hand-built files, checkpoints, bad headers, the shared fixture and a fuzz loop.
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Checkpoint, SafetensorsFile, bf16ToF32, f16ToF32, readTensorFile, writeSafetensors, type StDtype,
} from '../../../src/load/safetensors';
import { FormatError } from '../../../src/util/errors';
import { fixture } from '../../helpers/fixtures';

const TMP = mkdtempSync(join(tmpdir(), 'fla-safetensors-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

let fileNo = 0;
/** A fresh folder under TMP. */
function freshDir(): string {
  const d = join(TMP, `d${fileNo++}`);
  mkdirSync(d);
  return d;
}

/** Build file bytes by hand: u64 LE header length, header text, data. */
function build(header: unknown, data: Uint8Array = new Uint8Array(0), lenOverride?: bigint): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const head = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

function save(bytes: Uint8Array, name = 'model.safetensors', dir = freshDir()): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

const u8 = (v: ArrayBufferView) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
const cat = (...parts: ArrayBufferView[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) { out.set(u8(p), o); o += p.byteLength; }
  return out;
};

function expectFormatError(fn: () => unknown, ...parts: string[]): FormatError {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(FormatError);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  for (const p of parts) expect(msg).toContain(p);
  return err as FormatError;
}

// Known bit patterns for 1.5, -2 and 1/3 (rounded to nearest even).
const F16_BITS = [0x3e00, 0xc000, 0x3555];
const F16_VALS = [1.5, -2, 0.333251953125];
const BF16_BITS = [0x3fc0, 0xc000, 0x3eab];
const BF16_VALS = [1.5, -2, 0.333984375];

describe('hand-built files', () => {
  test('F32, F16, BF16, F64 round trip through a hand-built header', () => {
    const f32 = new Float32Array([1.5, -2, 1 / 3]);
    const f16 = new Uint16Array(F16_BITS), bf16 = new Uint16Array(BF16_BITS);
    const f64 = new Float64Array([1.5, -2, 1 / 3]);
    const header = {
      __metadata__: { format: 'pt', note: 'hand' },
      a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
      b: { dtype: 'F16', shape: [3], data_offsets: [12, 18] },
      c: { dtype: 'BF16', shape: [1, 3], data_offsets: [18, 24] },
      d: { dtype: 'F64', shape: [3, 1], data_offsets: [24, 48] },
    };
    const ck = Checkpoint.open(save(build(header, cat(f32, f16, bf16, f64))));
    expect([...ck.tensors.keys()].sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(ck.info('c')).toMatchObject({ dtype: 'BF16', shape: [1, 3] });
    expect([...ck.f32('a')]).toEqual([...f32]);
    expect([...ck.f32('b')]).toEqual(F16_VALS);
    expect([...ck.f32('c')]).toEqual(BF16_VALS);
    expect([...ck.f32('d')]).toEqual([...f32]);
    expect([...ck.bits16('b')]).toEqual(F16_BITS);
    expect([...ck.bits16('c')]).toEqual(BF16_BITS);
    expect([...ck.bytes('a')]).toEqual([...u8(f32)]);
    expectFormatError(() => ck.bits16('a'), 'tensor "a"', 'F32', 'expected F16 or BF16');
  });

  test('integer and fp8 dtypes convert to f32', () => {
    const t = {
      i8: { dtype: 'I8' as StDtype, shape: [3], data: new Int8Array([-128, 0, 127]) },
      u8: { dtype: 'U8' as StDtype, shape: [2], data: new Uint8Array([0, 255]) },
      bool: { dtype: 'BOOL' as StDtype, shape: [2], data: new Uint8Array([1, 0]) },
      i16: { dtype: 'I16' as StDtype, shape: [2], data: new Int16Array([-300, 300]) },
      u16: { dtype: 'U16' as StDtype, shape: [1], data: new Uint16Array([65535]) },
      i32: { dtype: 'I32' as StDtype, shape: [2], data: new Int32Array([-7, 1 << 20]) },
      u32: { dtype: 'U32' as StDtype, shape: [1], data: new Uint32Array([4294967295]) },
      i64: { dtype: 'I64' as StDtype, shape: [3], data: new BigInt64Array([-5n, 1n << 40n, -(1n << 40n)]) },
      u64: { dtype: 'U64' as StDtype, shape: [1], data: new BigUint64Array([1n << 40n]) },
      e4m3: { dtype: 'F8_E4M3' as StDtype, shape: [5], data: new Uint8Array([0x38, 0xb8, 0x7e, 0x01, 0x7f]) },
      e5m2: { dtype: 'F8_E5M2' as StDtype, shape: [5], data: new Uint8Array([0x3c, 0xc0, 0x7b, 0x7c, 0x01]) },
    };
    const p = join(freshDir(), 'ints.safetensors');
    writeSafetensors(p, t);
    const f = SafetensorsFile.open(p);
    expect([...f.f32('i8')]).toEqual([-128, 0, 127]);
    expect([...f.f32('u8')]).toEqual([0, 255]);
    expect([...f.f32('bool')]).toEqual([1, 0]);
    expect([...f.f32('i16')]).toEqual([-300, 300]);
    expect([...f.f32('u16')]).toEqual([65535]);
    expect([...f.f32('i32')]).toEqual([-7, 1 << 20]);
    expect([...f.f32('u32')]).toEqual([4294967296]); // nearest f32
    expect([...f.f32('i64')]).toEqual([-5, 2 ** 40, -(2 ** 40)]);
    expect([...f.f32('u64')]).toEqual([2 ** 40]);
    const e4 = f.f32('e4m3');
    expect([...e4.subarray(0, 4)]).toEqual([1, -1, 448, 2 ** -9]);
    expect(e4[4]).toBeNaN();
    expect([...f.f32('e5m2')]).toEqual([1, -2, 57344, Infinity, 2 ** -16]);
  });

  test('bf16ToF32 and f16ToF32 on inf, nan, zeros and subnormals', () => {
    const h = f16ToF32(new Uint16Array([0x7c00, 0xfc00, 0x7e00, 0x0001, 0x03ff, 0x0400, 0x8000, 0x7bff, 0x0000]));
    expect(h[0]).toBe(Infinity);
    expect(h[1]).toBe(-Infinity);
    expect(h[2]).toBeNaN();
    expect(h[3]).toBe(2 ** -24);
    expect(h[4]).toBe(1023 * 2 ** -24);
    expect(h[5]).toBe(2 ** -14);
    expect(Object.is(h[6], -0)).toBe(true);
    expect(h[7]).toBe(65504);
    expect(Object.is(h[8], 0)).toBe(true);

    const b = bf16ToF32(new Uint16Array([0x7f80, 0xff80, 0x7fc0, 0x0001, 0x8000, 0x3f80, 0x0080]));
    expect(b[0]).toBe(Infinity);
    expect(b[1]).toBe(-Infinity);
    expect(b[2]).toBeNaN();
    expect(b[3]).toBe(2 ** -133); // f32 subnormal 0x00010000
    expect(Object.is(b[4], -0)).toBe(true);
    expect(b[5]).toBe(1);
    expect(b[6]).toBe(2 ** -126);
  });

  test('f16ToF32 matches the built-in Float16Array on all 65536 patterns', () => {
    if (typeof Float16Array === 'undefined') return;
    const bits = new Uint16Array(65536).map((_, i) => i);
    const ours = f16ToF32(bits);
    const ref = new Float16Array(bits.buffer);
    for (let i = 0; i < 65536; i++) {
      if (!Object.is(ours[i], ref[i])) throw new Error(`0x${i.toString(16)}: ${ours[i]} vs ${ref[i]}`);
    }
  });

  test('tensors at offsets not aligned to 2 or 4 still convert', () => {
    const f32 = new Float32Array([1.5, -2, 1 / 3]);
    const header = {
      pad: { dtype: 'U8', shape: [3], data_offsets: [0, 3] },
      h: { dtype: 'F16', shape: [3], data_offsets: [3, 9] },
      b: { dtype: 'BF16', shape: [3], data_offsets: [9, 15] },
      pad2: { dtype: 'U8', shape: [2], data_offsets: [15, 17] },
      f: { dtype: 'F32', shape: [3], data_offsets: [17, 29] },
      d: { dtype: 'F64', shape: [1], data_offsets: [29, 37] },
    };
    const data = cat(new Uint8Array([7, 8, 9]), new Uint16Array(F16_BITS), new Uint16Array(BF16_BITS), new Uint8Array(2), f32, new Float64Array([0.25]));
    // Pad so the data section is 8-aligned; then the offsets above decide the alignment.
    let text = JSON.stringify(header);
    text += ' '.repeat((8 - (text.length % 8)) % 8);
    const ck = Checkpoint.open(save(build(text, data)));
    expect(ck.bytes('h').byteOffset % 2).toBe(1);
    expect(ck.bytes('f').byteOffset % 4).not.toBe(0);
    expect([...ck.bits16('h')]).toEqual(F16_BITS);
    expect([...ck.bits16('b')]).toEqual(BF16_BITS);
    expect([...ck.f32('h')]).toEqual(F16_VALS);
    expect([...ck.f32('b')]).toEqual(BF16_VALS);
    expect([...ck.f32('f')]).toEqual([...f32]);
    expect([...ck.f32('d')]).toEqual([0.25]);
    expect([...ck.f32('pad')]).toEqual([7, 8, 9]);
    expect(ck.f32('f').byteOffset % 4).toBe(0);
  });

  test('scalar, zero-size tensor and metadata', () => {
    const header = {
      __metadata__: { format: 'pt', 'odd key': 'väl' },
      s: { dtype: 'F32', shape: [], data_offsets: [0, 4] },
      z: { dtype: 'F32', shape: [0, 4], data_offsets: [4, 4] },
      zh: { dtype: 'BF16', shape: [3, 0], data_offsets: [0, 0] },
    };
    const f = SafetensorsFile.open(save(build(header, u8(new Float32Array([3.5]))), 'x.safetensors'));
    expect(f.metadata).toEqual({ format: 'pt', 'odd key': 'väl' });
    expect(f.info('s').shape).toEqual([]);
    expect([...f.f32('s')]).toEqual([3.5]);
    expect(f.bytes('z').length).toBe(0);
    expect(f.f32('z').length).toBe(0);
    expect(f.bits16('zh').length).toBe(0);
    // No metadata at all gives an empty map.
    expect(SafetensorsFile.fromBytes(build({}), 'empty.safetensors').metadata).toEqual({});
  });

  test('header with trailing spaces and a file with no tensors', () => {
    const f = SafetensorsFile.fromBytes(build('{"__metadata__":{"a":"b"}}      '), 'pad.safetensors');
    expect(f.tensors.size).toBe(0);
    expect(f.metadata).toEqual({ a: 'b' });
  });

  test('a "__proto__" metadata key stays an ordinary entry', () => {
    const f = SafetensorsFile.fromBytes(build('{"__metadata__":{"__proto__":"x"}}'), 'proto.safetensors');
    expect(Object.getPrototypeOf(f.metadata)).toBe(Object.prototype);
    expect(Object.keys(f.metadata)).toEqual(['__proto__']);
  });
});

describe('writeSafetensors', () => {
  test('round trip with metadata, 8-aligned data section, no leftover temp file', () => {
    const dir = freshDir();
    const p = join(dir, 'w.safetensors');
    const a = new Float32Array([1, 2, 3, 4, 5, 6]);
    writeSafetensors(p, {
      a: { dtype: 'F32', shape: [2, 3], data: a },
      b: { dtype: 'BF16', shape: [3], data: new Uint16Array(BF16_BITS) },
      c: { dtype: 'I32', shape: [], data: new Int32Array([-9]) },
    }, { format: 'pt' });
    expect(readdirSync(dir)).toEqual(['w.safetensors']);
    const raw = readFileSync(p);
    expect(Number(raw.readBigUInt64LE(0)) % 8).toBe(0);
    const f = SafetensorsFile.open(p);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(f.info('a')).toMatchObject({ dtype: 'F32', shape: [2, 3], file: p });
    expect([...f.f32('a')]).toEqual([...a]);
    expect([...f.f32('b')]).toEqual(BF16_VALS);
    expect([...f.f32('c')]).toEqual([-9]);
    // Overwriting a mapped file is safe because the writer renames a new file into place.
    writeSafetensors(p, { a: { dtype: 'F32', shape: [1], data: new Float32Array([7]) } });
    expect([...f.f32('a')]).toEqual([...a]);
    expect([...SafetensorsFile.open(p).f32('a')]).toEqual([7]);
  });

  test('rejects data whose size does not match the shape', () => {
    const p = join(freshDir(), 'bad.safetensors');
    expectFormatError(() => writeSafetensors(p, { a: { dtype: 'F32', shape: [2], data: new Float32Array(3) } }), 'bad.safetensors', '"a"', '12 bytes', 'needs 8');
    expect(existsSync(p)).toBe(false);
  });
});

describe('readTensorFile', () => {
  test('F32 -> Float32Array, I32/I64 -> Int32Array', () => {
    const p = join(freshDir(), 'ref.safetensors');
    writeSafetensors(p, {
      pad: { dtype: 'U8', shape: [1], data: new Uint8Array([1]) }, // puts the rest at odd offsets
      logits: { dtype: 'F32', shape: [2, 2], data: new Float32Array([0.5, -1, 2, 3]) },
      ids: { dtype: 'I32', shape: [3], data: new Int32Array([5, -1, 100000]) },
      ids64: { dtype: 'I64', shape: [2], data: new BigInt64Array([7n, -3n]) },
      h: { dtype: 'BF16', shape: [3], data: new Uint16Array(BF16_BITS) },
      big: { dtype: 'I64', shape: [1], data: new BigInt64Array([-(2n ** 31n)]) },
    });
    const m = readTensorFile(p);
    expect([...m.get('big')!.data]).toEqual([-(2 ** 31)]);
    expect(m.get('logits')!.data).toBeInstanceOf(Float32Array);
    expect([...m.get('logits')!.data]).toEqual([0.5, -1, 2, 3]);
    expect(m.get('logits')!.shape).toEqual([2, 2]);
    expect(m.get('ids')!.data).toBeInstanceOf(Int32Array);
    expect([...m.get('ids')!.data]).toEqual([5, -1, 100000]);
    expect(m.get('ids64')!.data).toBeInstanceOf(Int32Array);
    expect([...m.get('ids64')!.data]).toEqual([7, -3]);
    expect(m.get('h')!.data).toBeInstanceOf(Float32Array);
    expect(m.get('pad')!.data).toBeInstanceOf(Int32Array);
    writeSafetensors(p, { ids: { dtype: 'I64', shape: [2], data: new BigInt64Array([1n, 2n ** 31n]) } });
    expectFormatError(() => readTensorFile(p), 'ref.safetensors', '"ids"', '2147483648 outside the int32 range');
  });
});

describe('Checkpoint folders', () => {
  const one = (v: number) => ({ x: { dtype: 'F32' as StDtype, shape: [1], data: new Float32Array([v]) } });

  test('a folder with one other *.safetensors file', () => {
    const dir = freshDir();
    writeSafetensors(join(dir, 'weights.safetensors'), one(4));
    writeFileSync(join(dir, 'config.json'), '{}');
    expect([...Checkpoint.open(dir).f32('x')]).toEqual([4]);
  });

  test('model.safetensors wins over other files', () => {
    const dir = freshDir();
    writeSafetensors(join(dir, 'model.safetensors'), one(1));
    writeSafetensors(join(dir, 'other.safetensors'), one(2));
    expect([...Checkpoint.open(dir).f32('x')]).toEqual([1]);
  });

  test('ambiguous, empty and missing folders', () => {
    const dir = freshDir();
    expectFormatError(() => Checkpoint.open(dir), dir, 'no .safetensors file');
    writeSafetensors(join(dir, 'a.safetensors'), one(1));
    writeSafetensors(join(dir, 'b.safetensors'), one(2));
    expectFormatError(() => Checkpoint.open(dir), dir, 'a.safetensors, b.safetensors');
    expectFormatError(() => Checkpoint.open(join(dir, 'nope')), 'nope', 'not found');
  });

  test('missing tensor names the tensor and the folder', () => {
    const dir = freshDir();
    writeSafetensors(join(dir, 'model.safetensors'), one(1));
    const ck = Checkpoint.open(dir);
    expect(ck.has('x')).toBe(true);
    expect(ck.has('y')).toBe(false);
    expectFormatError(() => ck.info('lm_head.weight'), '"lm_head.weight"', dir);
    expectFormatError(() => ck.f32('lm_head.weight'), '"lm_head.weight"', dir);
  });

  function sharded(): string {
    const dir = freshDir();
    writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), {
      'model.embed.weight': { dtype: 'BF16', shape: [3], data: new Uint16Array(BF16_BITS) },
      'model.norm.weight': { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) },
    });
    writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), {
      'lm_head.weight': { dtype: 'F16', shape: [3], data: new Uint16Array(F16_BITS) },
    });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({
      metadata: { total_size: 20 },
      weight_map: {
        'model.embed.weight': 'model-00001-of-00002.safetensors',
        'model.norm.weight': 'model-00001-of-00002.safetensors',
        'lm_head.weight': 'model-00002-of-00002.safetensors',
      },
    }));
    return dir;
  }

  test('sharded checkpoint via model.safetensors.index.json', () => {
    const dir = sharded();
    const ck = Checkpoint.open(dir);
    expect([...ck.tensors.keys()].sort()).toEqual(['lm_head.weight', 'model.embed.weight', 'model.norm.weight']);
    expect(ck.info('lm_head.weight').file).toBe(join(dir, 'model-00002-of-00002.safetensors'));
    expect([...ck.f32('model.embed.weight')]).toEqual(BF16_VALS);
    expect([...ck.f32('lm_head.weight')]).toEqual(F16_VALS);
    expect([...ck.bits16('lm_head.weight')]).toEqual(F16_BITS);
    expect([...ck.f32('model.norm.weight')]).toEqual([1, 2]);
  });

  const badIndex: [string, unknown, string][] = [
    ['invalid JSON', '{"weight_map": ', 'not valid JSON'],
    ['not an object', '[1, 2]', 'weight_map'],
    ['no weight_map', { metadata: {} }, 'weight_map'],
    ['weight_map is an array', { weight_map: ['a'] }, 'weight_map'],
    ['empty weight_map', { weight_map: {} }, 'weight_map is empty'],
    ['shard not a string', { weight_map: { 'lm_head.weight': 3 } }, 'weight_map["lm_head.weight"]'],
    ['missing shard', { weight_map: { 'lm_head.weight': 'model-00009-of-00009.safetensors' } }, 'model-00009-of-00009.safetensors'],
    ['tensor missing from its shard', { weight_map: { 'lm_head.weight': 'model-00001-of-00002.safetensors' } }, 'missing from its shard'],
    ['shard outside the folder', { weight_map: { x: '../model.safetensors' } }, 'outside the checkpoint folder'],
  ];
  test.each(badIndex)('bad index: %s', (_label, index, want) => {
    const dir = sharded();
    writeFileSync(join(dir, 'model.safetensors.index.json'), typeof index === 'string' ? index : JSON.stringify(index));
    expectFormatError(() => Checkpoint.open(dir), 'model.safetensors.index.json', want);
  });

  test('a broken shard names the shard file', () => {
    const dir = sharded();
    writeFileSync(join(dir, 'model-00002-of-00002.safetensors'), new Uint8Array(5));
    expectFormatError(() => Checkpoint.open(dir), 'model-00002-of-00002.safetensors', 'shorter than');
  });
});

describe('bad headers', () => {
  const f32x2 = u8(new Float32Array([1, 2]));
  const ok = (extra: Record<string, unknown> = {}) => ({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, ...extra });
  const cases: [string, Uint8Array, string][] = [
    ['empty file', new Uint8Array(0), 'empty file'],
    ['shorter than 8 bytes', new Uint8Array([1, 0, 0]), 'shorter than the 8-byte header length'],
    ['header length beyond the file', build(ok(), f32x2, 999999n), 'header length 999999 exceeds file size'],
    ['header length 2^64-1', build(ok(), f32x2, (1n << 64n) - 1n), 'header length 18446744073709551615 exceeds'],
    ['header length 0', build(ok(), f32x2, 0n), 'not valid UTF-8 JSON'],
    ['header not JSON', build('{"a": [', f32x2), 'not valid UTF-8 JSON'],
    ['header not UTF-8', build(ok(), f32x2).map((b, i) => (i === 9 ? 0xff : b)), 'not valid UTF-8 JSON'],
    ['header an array', build('[]', f32x2), 'not a JSON object'],
    ['header null', build('null', f32x2), 'not a JSON object'],
    ['entry not an object', build({ a: [1, 2] }, f32x2), 'tensor "a": entry is an array'],
    ['entry missing dtype', build({ a: { shape: [2], data_offsets: [0, 8] } }, f32x2), 'needs dtype, shape and data_offsets'],
    ['entry missing shape', build({ a: { dtype: 'F32', data_offsets: [0, 8] } }, f32x2), 'needs dtype, shape and data_offsets'],
    ['entry missing offsets', build({ a: { dtype: 'F32', shape: [2] } }, f32x2), 'needs dtype, shape and data_offsets'],
    ['unknown dtype', build({ a: { dtype: 'F128', shape: [2], data_offsets: [0, 8] } }, f32x2), 'unknown dtype "F128"'],
    ['lowercase dtype', build({ a: { dtype: 'f32', shape: [2], data_offsets: [0, 8] } }, f32x2), 'unknown dtype "f32"'],
    ['shape not an array', build({ a: { dtype: 'F32', shape: 2, data_offsets: [0, 8] } }, f32x2), 'shape 2 is not an array'],
    ['negative dim', build({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, f32x2), 'non-negative integers'],
    ['fractional dim', build({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, f32x2), 'non-negative integers'],
    ['string dim', build({ a: { dtype: 'F32', shape: ['2'], data_offsets: [0, 8] } }, f32x2), 'non-negative integers'],
    ['unsafe dim', build({ a: { dtype: 'F32', shape: [2 ** 60], data_offsets: [0, 8] } }, f32x2), 'non-negative integers'],
    ['offsets of length 3', build({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8, 8] } }, f32x2), 'data_offsets [0,8,8]'],
    ['offsets begin > end', build({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, f32x2), 'begin <= end'],
    ['offsets not integers', build({ a: { dtype: 'F32', shape: [2], data_offsets: ['0', '8'] } }, f32x2), 'data_offsets'],
    ['end beyond data', build({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32x2), 'end 16 is beyond the 8-byte data section'],
    ['size mismatch', build({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32x2), 'F32 [3] needs 12 bytes but data_offsets span 8'],
    ['huge shape', build({ a: { dtype: 'F32', shape: [1e15, 1e15], data_offsets: [0, 8] } }, f32x2), 'needs too many bytes'],
    ['overlap', build({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32x2), 'overlap'],
    ['metadata not a map', build(ok({ __metadata__: ['x'] }), f32x2), '__metadata__ is not a string-to-string map'],
    ['name with a newline', build({ 'a\nb': { dtype: 'X', shape: [2], data_offsets: [0, 8] } }, f32x2), 'tensor "a\\nb": unknown dtype'],
    ['metadata value not a string', build(ok({ __metadata__: { n: 3 } }), f32x2), '__metadata__["n"] is a number'],
  ];
  test.each(cases)('%s', (_label, bytes, want) => {
    const p = save(bytes, 'broken.safetensors');
    expectFormatError(() => SafetensorsFile.open(p), p, want);
    expectFormatError(() => Checkpoint.open(p), 'broken.safetensors', want);
  });

  test('header over 100 MB is refused without reading it', () => {
    // A sparse file: the length field is checked before 100 MB of header would be decoded.
    const p = save(build('{}', new Uint8Array(0), 100_000_001n), 'big.safetensors');
    truncateSync(p, 8 + 100_000_001);
    expectFormatError(() => SafetensorsFile.open(p), 'big.safetensors', 'exceeds the 100000000-byte limit');
  });

  test('a directory or missing path is a FormatError', () => {
    expectFormatError(() => SafetensorsFile.open(freshDir()), 'not a regular file');
    expectFormatError(() => SafetensorsFile.open(join(TMP, 'missing.safetensors')), 'missing.safetensors', 'cannot open');
  });
});

describe('shared fixture rwkv7-tiny', () => {
  const dir = fixture('rwkv7-tiny');
  test.skipIf(dir === null)('model and reference files', () => {
    const ck = Checkpoint.open(dir!);
    expect(ck.info('model.embeddings.weight')).toMatchObject({ dtype: 'BF16', shape: [512, 128] });
    const emb = ck.f32('model.embeddings.weight');
    expect(emb.length).toBe(512 * 128);
    expect(emb.every(Number.isFinite)).toBe(true);
    expect(ck.bits16('model.embeddings.weight').length).toBe(512 * 128);
    expect(ck.info('model.layers.0.attn.k_k')).toMatchObject({ dtype: 'BF16', shape: [128] });
    const ref = readTensorFile(join(dir!, 'reference.safetensors'));
    const ids = ref.get('input_ids.1')!;
    expect(ids.data).toBeInstanceOf(Int32Array);
    expect(ids.data.length).toBe(7);
    expect(ref.get('logits.1')!.shape).toEqual([7, 512]);
  });
});

describe('fuzz', () => {
  // mulberry32: small seeded PRNG so failures reproduce.
  function rng(seed: number): () => number {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  test('3000 mutants open cleanly or throw FormatError', () => {
    const dir = freshDir();
    const basePath = join(dir, 'base.safetensors');
    writeSafetensors(basePath, {
      w: { dtype: 'F32', shape: [2, 3], data: new Float32Array(6).fill(0.5) },
      h: { dtype: 'BF16', shape: [5], data: new Uint16Array(5).fill(0x3f80) },
      p: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
      q: { dtype: 'I64', shape: [2], data: new BigInt64Array([1n, -1n]) },
      s: { dtype: 'F16', shape: [], data: new Uint16Array([0x3c00]) },
    }, { format: 'pt' });
    const base = new Uint8Array(readFileSync(basePath));
    const headerLen = Number(new DataView(base.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(base.subarray(8, 8 + headerLen))) as Record<string, Record<string, unknown>>;
    const data = base.subarray(8 + headerLen);

    const r = rng(12345);
    const int = (n: number) => Math.floor(r() * n);
    const pick = <T,>(xs: readonly T[]): T => xs[int(xs.length)]!;
    const wrong: unknown[] = [
      null, true, 'x', 'F32', -1, 0, 1.5, 1e308, [], {}, [1e15, 1e15], [2 ** 53, 2], [-1], [1, 2, 3], [0, 1e15],
      [0.5, 8], ['0', '8'], [[0], [8]], [8, 0], [0, 2 ** 60], { dtype: 'F32' }, 'BF16', 'F8_E4M3', 'U64',
    ];
    const hugeLens = [(1n << 64n) - 1n, 1n << 63n, 1n << 32n, 100_000_001n, BigInt(base.length), BigInt(base.length - 7)];

    function mutate(): Uint8Array {
      const kind = int(6);
      if (kind === 0) return base.slice(0, int(base.length)); // truncation
      if (kind === 1) { // bit flips inside the header
        const m = base.slice();
        for (let k = 1 + int(8); k > 0; k--) { const i = 8 + int(headerLen); m[i]! ^= 1 << int(8); }
        return m;
      }
      if (kind === 2) { // header length field huge or small
        const m = base.slice();
        const v = r() < 0.5 ? pick(hugeLens) : BigInt(int(headerLen + 16));
        new DataView(m.buffer).setBigUint64(0, v, true);
        return m;
      }
      if (kind === 3 || kind === 4) { // a JSON value replaced by a wrong type or a huge shape
        const h = structuredClone(header);
        const name = pick(Object.keys(h));
        const entry = h[name]!;
        if (kind === 4) entry.shape = pick([[1e15, 1e15], [2 ** 40, 2 ** 40, 2 ** 40], [1e300], [0, 1e15], [4294967296, 4294967296]]);
        else if (r() < 0.15) h[name] = pick(wrong) as Record<string, unknown>;
        else entry[pick(['dtype', 'shape', 'data_offsets', 'extra'])] = pick(wrong);
        return build(h, data);
      }
      const m = base.slice(); // random bytes anywhere, header length included
      for (let k = 1 + int(4); k > 0; k--) m[int(m.length)] = int(256);
      return m;
    }

    let opened = 0, rejected = 0;
    const t0 = performance.now();
    for (let i = 0; i < 3000; i++) {
      const bytes = mutate();
      try {
        // Every 10th mutant goes through the file system (mmap, and the empty-file path).
        const f = i % 10 === 0 ? SafetensorsFile.open(save(bytes, `m${i}.safetensors`, dir)) : SafetensorsFile.fromBytes(bytes, `m${i}.safetensors`);
        for (const name of f.tensors.keys()) {
          const info = f.info(name);
          expect(f.bytes(name).length).toBe(info.end - info.begin);
          f.f32(name);
        }
        opened++;
      } catch (e) {
        if (!(e instanceof FormatError)) throw new Error(`mutant ${i}: ${(e as Error)?.name}: ${(e as Error)?.message}`);
        expect(e.message).toContain(`m${i}.safetensors`);
        rejected++;
      }
    }
    const ms = performance.now() - t0;
    expect(opened).toBeGreaterThan(50);
    expect(rejected).toBeGreaterThan(1000);
    expect(ms).toBeLessThan(20_000);
  }, 30_000);
});
