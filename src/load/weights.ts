// Reads the tensors a model declares from a checkpoint, checks names, shapes and dtypes, and reports
// missing or unexpected tensors with one clear line.
import type { HostWeight } from '../backend/backend.ts';
import { FormatError } from '../util/errors.ts';
import { firstNonFinite, firstNonFinite16 } from '../util/finite.ts';
import { dequantFp8, type Checkpoint } from './safetensors.ts';

const FLOAT = new Set(['F32', 'F16', 'BF16', 'F64', 'F8_E4M3']);

/** config.json `quantization_config` of an fp8 checkpoint: block-scaled F8_E4M3 weights. */
export interface Fp8Quant { br: number; bc: number }

/** The fp8 quantization of a config.json (null when unquantized); anything but block-scaled fp8 is refused. */
export function parseQuant(j: Record<string, unknown>, where: string): Fp8Quant | null {
  const q = j.quantization_config as Record<string, unknown> | undefined;
  if (q === undefined || q === null) return null;
  if (typeof q !== 'object' || Array.isArray(q)) throw new FormatError(`${where}: quantization_config must be an object`);
  if (q.quant_method !== 'fp8') throw new FormatError(`${where}: quantization_config.quant_method ${JSON.stringify(q.quant_method ?? null)} is not supported (expected "fp8")`);
  if (q.fmt !== undefined && q.fmt !== 'e4m3') throw new FormatError(`${where}: quantization_config.fmt ${JSON.stringify(q.fmt)} is not supported (expected "e4m3")`);
  const b = q.weight_block_size;
  if (!Array.isArray(b) || b.length !== 2 || !b.every(v => Number.isInteger(v) && v >= 4 && v % 4 === 0))
    throw new FormatError(`${where}: quantization_config.weight_block_size ${JSON.stringify(b ?? null)} is not supported (expected [rows, cols], multiples of 4, e.g. [128, 128])`);
  return { br: b[0] as number, bc: b[1] as number };
}

export class WeightReader {
  private used = new Set<string>();
  constructor(readonly ckpt: Checkpoint, readonly where: string, readonly quant: Fp8Quant | null = null) {}

  has(name: string): boolean { return this.ckpt.has(name); }

  /** Check that tensor `name` exists with a float dtype and the expected shape; mark it used. */
  private check(name: string, shape: number[]) {
    if (!this.ckpt.has(name)) throw new FormatError(`${this.where}: missing tensor ${name} (expected shape [${shape}])`);
    const info = this.ckpt.info(name);
    if (!FLOAT.has(info.dtype)) throw new FormatError(`${this.where}: tensor ${name} has dtype ${info.dtype}, expected F32, F16, BF16 or F8_E4M3`);
    const got = info.shape.reduce((a, b) => a * b, 1), want = shape.reduce((a, b) => a * b, 1);
    const squeeze = (s: number[]) => s.filter(d => d !== 1).join(',');
    if (got !== want || squeeze(info.shape) !== squeeze(shape))
      throw new FormatError(`${this.where}: tensor ${name} has shape [${info.shape}], expected [${shape}]`);
    return info;
  }

  /** Tensor `name` with the expected shape (numel-compatible shapes such as [1,1,C] vs [C] are accepted); fp8 comes dequantized. */
  read(name: string, shape: number[]): HostWeight {
    const info = this.check(name, shape);
    this.used.add(name);
    const w: HostWeight = info.dtype === 'F8_E4M3'
      ? (() => { const q = this.fp8(name, shape); return { shape, dtype: 'f32' as const, f32: dequantFp8(q, q.bytes.length / shape.at(-1)!, shape.at(-1)!) }; })()
      : info.dtype === 'BF16' || info.dtype === 'F16'
      ? { shape, dtype: info.dtype === 'BF16' ? 'bf16' : 'f16', bits16: this.ckpt.bits16(name), f32: undefined }
      : { shape, dtype: 'f32', f32: this.ckpt.f32(name) };
    const bad = w.bits16 ? firstNonFinite16(w.bits16, w.dtype as 'bf16' | 'f16') : firstNonFinite(w.f32!);
    if (bad >= 0) throw new FormatError(`${this.where}: tensor ${name} holds a non-finite value (NaN or ±Inf) at element ${bad}; the checkpoint is broken`);
    return w;
  }

  /**
   * A matrix that fp8-capable kernels read as stored: F8_E4M3 bytes with their block scales (`<name>_scale_inv`,
   * [⌈R / br⌉, ⌈C / bc⌉]) stay fp8; other dtypes come as read() gives them.
   */
  readQ(name: string, shape: number[]): HostWeight {
    if (!this.ckpt.has(name) || this.ckpt.info(name).dtype !== 'F8_E4M3') return this.read(name, shape);
    this.check(name, shape);
    this.used.add(name);
    return { shape, dtype: 'fp8', fp8: this.fp8(name, shape) };
  }

  private fp8(name: string, shape: number[]) {
    const q = this.quant, sn = `${name}_scale_inv`;
    if (!q) throw new FormatError(`${this.where}: tensor ${name} is F8_E4M3 but config.json has no fp8 quantization_config`);
    if (!this.ckpt.has(sn)) throw new FormatError(`${this.where}: tensor ${name} is F8_E4M3 but its block scales ${sn} are missing`);
    const C = shape.at(-1)!, R = shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const want = [Math.ceil(R / q.br), Math.ceil(C / q.bc)], got = this.ckpt.info(sn).shape;
    if (got.length !== 2 || got[0] !== want[0] || got[1] !== want[1])
      throw new FormatError(`${this.where}: tensor ${sn} has shape [${got}], expected [${want}] for ${name} [${R}, ${C}] in blocks of [${q.br}, ${q.bc}] (quantization_config.weight_block_size)`);
    const sd = this.ckpt.info(sn).dtype;
    if (!['F32', 'BF16', 'F16'].includes(sd)) throw new FormatError(`${this.where}: tensor ${sn} has dtype ${sd}, expected F32, BF16 or F16`);
    this.used.add(sn);
    const bytes = this.ckpt.bytes(name), scale = this.ckpt.f32(sn);
    const nan = bytes.findIndex(b => (b & 0x7f) === 0x7f), bad = firstNonFinite(scale);
    if (nan >= 0) throw new FormatError(`${this.where}: tensor ${name} holds an F8_E4M3 NaN at element ${nan}; the checkpoint is broken`);
    if (bad >= 0) throw new FormatError(`${this.where}: tensor ${sn} holds a non-finite value (NaN or ±Inf) at element ${bad}; the checkpoint is broken`);
    return { bytes, scale, rp: R, br: q.br, bc: q.bc };
  }

  /** Read as f32 (vectors, small parameters). */
  f32(name: string, shape: number[]): Float32Array {
    const w = this.read(name, shape);
    return w.f32 ?? this.ckpt.f32(name);
  }

  /** Several f32 tensors of `width` elements each (any shape, e.g. [1,1,C] or [H,D]) stacked into one [n, width] weight. */
  stack(names: string[], width: number): HostWeight {
    const out = new Float32Array(names.length * width);
    names.forEach((n, i) => {
      const s = this.ckpt.has(n) ? this.ckpt.info(n).shape : [width];
      out.set(this.f32(n, s.reduce((a, b) => a * b, 1) === width ? s : [width]), i * width);
    });
    return { shape: [names.length, width], dtype: 'f32', f32: out };
  }

  /** Mark tensors that may be present and are deliberately unused. */
  ignore(pred: (name: string) => boolean): void {
    for (const n of this.ckpt.tensors.keys()) if (pred(n)) this.used.add(n);
  }

  /** Fail when the checkpoint holds tensors the model did not read (a sign of a wrong config). */
  checkAllUsed(): void {
    const extra = [...this.ckpt.tensors.keys()].filter(n => !this.used.has(n));
    if (extra.length) {
      const list = extra.slice(0, 5).join(', ') + (extra.length > 5 ? `, … (${extra.length} in all)` : '');
      throw new FormatError(`${this.where}: unexpected tensors not used by the config: ${list}`);
    }
  }
}
