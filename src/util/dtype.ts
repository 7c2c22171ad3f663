// Number formats of checkpoints as f32: bf16, f16 and F8 (E4M3 / E5M2) bit patterns, and block-scaled F8 matrices.
// Below every layer: the loader reads them, the backends widen weights with them.

/** Widen bf16 bit patterns to f32: bf16 is the top half of an f32. */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i]! << 16;
  return out;
}

let f16Table: Float32Array | undefined;

/** Convert IEEE half bit patterns to f32 (via a 64K-entry table). */
export function f16ToF32(bits: Uint16Array): Float32Array {
  const table = (f16Table ??= halfTable());
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
  return out;
}

function halfTable(): Float32Array {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    t[h] = exp === 0 ? sign * man * 2 ** -24
      : exp === 31 ? (man ? NaN : sign * Infinity)
      : sign * (1 + man / 1024) * 2 ** (exp - 15);
  }
  return t;
}

let e4m3: Float32Array | undefined;
let e5m2: Float32Array | undefined;

/** The 256 f32 values of F8_E4M3 or F8_E5M2 bytes. */
export function fp8Values(kind: 'e4m3' | 'e5m2'): Float32Array {
  return kind === 'e4m3' ? (e4m3 ??= fp8Table(4, 3, false)) : (e5m2 ??= fp8Table(5, 2, true));
}

/** F8_E4M3 ("fn": no infinities, S.1111.111 is NaN) byte → f32. */
export function e4m3ToF32(b: number): number { return (e4m3 ??= fp8Table(4, 3, false))[b & 0xff]!; }

/**
 * The f32 values of a block-scaled F8_E4M3 matrix [R, C]: e4m3(bytes[r·C + c]) · scale[srow(r)·SC + ⌊c / bc⌋]
 * (layout in backend.ts Fp8Data). The CPU backend's weights and the reference of every fp8 kernel.
 */
export function dequantFp8(d: { bytes: Uint8Array; scale: Float32Array; rp: number; br: number; bc: number }, R: number, C: number): Float32Array {
  const t = (e4m3 ??= fp8Table(4, 3, false)), out = new Float32Array(R * C);
  const SC = Math.ceil(C / d.bc), SRP = Math.ceil(d.rp / d.br);
  for (let r = 0; r < R; r++) {
    const srow = Math.floor(r / d.rp) * SRP + Math.floor((r % d.rp) / d.br);
    for (let c = 0; c < C; c++) out[r * C + c] = Math.fround(t[d.bytes[r * C + c]!]! * d.scale[srow * SC + Math.floor(c / d.bc)]!);
  }
  return out;
}

// E4M3 is the "fn" variant (no infinities, only S.1111.111 is NaN); E5M2 follows IEEE rules.
export function fp8Table(expBits: number, manBits: number, ieee: boolean): Float32Array {
  const t = new Float32Array(256);
  const bias = (1 << (expBits - 1)) - 1, maxExp = (1 << expBits) - 1, manMax = 1 << manBits;
  for (let v = 0; v < 256; v++) {
    const sign = v & 0x80 ? -1 : 1, exp = (v >> manBits) & maxExp, man = v & (manMax - 1);
    if (ieee && exp === maxExp) t[v] = man ? NaN : sign * Infinity;
    else if (!ieee && exp === maxExp && man === manMax - 1) t[v] = NaN;
    else if (exp === 0) t[v] = sign * (man / manMax) * 2 ** (1 - bias);
    else t[v] = sign * (1 + man / manMax) * 2 ** (exp - bias);
  }
  return t;
}

export function lookup8(src: Uint8Array, table: Float32Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return out;
}
