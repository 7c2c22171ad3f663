// Reads the tensors a model declares from a checkpoint, checks names, shapes and dtypes, and reports
// missing or unexpected tensors with one clear line.
import type { HostWeight } from '../backend/backend.ts';
import { FormatError } from '../util/errors.ts';
import { firstNonFinite, firstNonFinite16 } from '../util/finite.ts';
import type { Checkpoint } from './safetensors.ts';

const FLOAT = new Set(['F32', 'F16', 'BF16', 'F64']);

export class WeightReader {
  private used = new Set<string>();
  constructor(readonly ckpt: Checkpoint, readonly where: string) {}

  has(name: string): boolean { return this.ckpt.has(name); }

  /** Tensor `name` with the expected shape (numel-compatible shapes such as [1,1,C] vs [C] are accepted). */
  read(name: string, shape: number[]): HostWeight {
    if (!this.ckpt.has(name)) throw new FormatError(`${this.where}: missing tensor ${name} (expected shape [${shape}])`);
    const info = this.ckpt.info(name);
    if (!FLOAT.has(info.dtype)) throw new FormatError(`${this.where}: tensor ${name} has dtype ${info.dtype}, expected F32, F16 or BF16`);
    const got = info.shape.reduce((a, b) => a * b, 1), want = shape.reduce((a, b) => a * b, 1);
    const squeeze = (s: number[]) => s.filter(d => d !== 1).join(',');
    if (got !== want || squeeze(info.shape) !== squeeze(shape))
      throw new FormatError(`${this.where}: tensor ${name} has shape [${info.shape}], expected [${shape}]`);
    this.used.add(name);
    const w: HostWeight = info.dtype === 'BF16' || info.dtype === 'F16'
      ? { shape, dtype: info.dtype === 'BF16' ? 'bf16' : 'f16', bits16: this.ckpt.bits16(name), f32: undefined }
      : { shape, dtype: 'f32', f32: this.ckpt.f32(name) };
    const bad = w.bits16 ? firstNonFinite16(w.bits16, w.dtype as 'bf16' | 'f16') : firstNonFinite(w.f32!);
    if (bad >= 0) throw new FormatError(`${this.where}: tensor ${name} holds a non-finite value (NaN or ±Inf) at element ${bad}; the checkpoint is broken`);
    return w;
  }

  /** Read as f32 (vectors, small parameters). */
  f32(name: string, shape: number[]): Float32Array {
    this.read(name, shape);
    return this.ckpt.f32(name);
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
