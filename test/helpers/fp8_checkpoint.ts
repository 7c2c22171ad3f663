// Checkpoint layouts the MoE model tests write from a fixture: fused experts split one module per expert, and an fp8
// (F8_E4M3, block-scaled) checkpoint with its dequantized f32 copy.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { e4m3ToF32, readTensorFile, writeSafetensors, type StDtype } from '../../src/load/safetensors.ts';

type T = { dtype: StDtype; shape: number[]; data: ArrayBufferView };

/** The fixture's tensors as f32, with the fused experts split into one module per expert. */
export function perExpert(dir: string): Record<string, { shape: number[]; data: Float32Array }> {
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const I = cfg.moe_intermediate_size as number, d = cfg.hidden_size as number;
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of readTensorFile(join(dir, 'model.safetensors'))) {
    const data = t.data as Float32Array;
    const m = /^(.*\.mlp\.experts)\.(gate_up_proj|down_proj)$/.exec(name);
    if (!m) { out[name] = { shape: t.shape, data }; continue; }
    for (let e = 0; e < t.shape[0]!; e++) {
      const p = `${m[1]}.${e}.`;
      if (m[2] === 'gate_up_proj') {
        out[`${p}gate_proj.weight`] = { shape: [I, d], data: data.slice(e * 2 * I * d, (e * 2 + 1) * I * d) };
        out[`${p}up_proj.weight`] = { shape: [I, d], data: data.slice((e * 2 + 1) * I * d, (e + 1) * 2 * I * d) };
      } else out[`${p}down_proj.weight`] = { shape: [d, I], data: data.slice(e * d * I, (e + 1) * d * I) };
    }
  }
  return out;
}

/** Nearest F8_E4M3 byte of v (round to nearest; ties to the even byte), |v| ≤ 448. */
const POS = Array.from({ length: 127 }, (_, b) => e4m3ToF32(b));
export function toE4m3(v: number): number {
  const a = Math.min(Math.abs(v), 448);
  let lo = 0, hi = 126;
  while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (POS[mid]! <= a) lo = mid; else hi = mid; }
  const b = a - POS[lo]! < POS[hi]! - a || (a - POS[lo]! === POS[hi]! - a && lo % 2 === 0) ? lo : hi;
  return (v < 0 ? 0x80 : 0) | b;
}


/**
 * Write fixture `dir` as an fp8 checkpoint (blocks br×bc; the tensors `quant` names) to `fp8dir` and its dequantized f32
 * copy to `f32dir`; returns the max over blocks of max|dequantized − original| / max|original|.
 */
export function writeFp8(dir: string, quant: (name: string) => boolean, fp8dir: string, f32dir: string, br: number, bc: number): number {
  let worst = 0;   // max over blocks of max|dequantized − original| / max|original|
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const q: Record<string, T> = {}, deq: Record<string, T> = {};
  for (const [name, t] of Object.entries(perExpert(dir))) {
    if (!quant(name)) { q[name] = deq[name] = { dtype: 'F32', shape: t.shape, data: t.data }; continue; }
    const [R, C] = t.shape as [number, number], SR = Math.ceil(R / br), SC = Math.ceil(C / bc);
    const bytes = new Uint8Array(R * C), scale = new Float32Array(SR * SC), back = new Float32Array(R * C);
    for (let i = 0; i < SR; i++) for (let j = 0; j < SC; j++) {
      let m = 0;
      for (let r = i * br; r < Math.min(R, (i + 1) * br); r++) for (let c = j * bc; c < Math.min(C, (j + 1) * bc); c++) m = Math.max(m, Math.abs(t.data[r * C + c]!));
      const s = Math.fround((m || 1) / 448);
      scale[i * SC + j] = s;
      for (let r = i * br; r < Math.min(R, (i + 1) * br); r++) for (let c = j * bc; c < Math.min(C, (j + 1) * bc); c++) {
        const b = toE4m3(t.data[r * C + c]! / s);
        bytes[r * C + c] = b;
        back[r * C + c] = Math.fround(e4m3ToF32(b) * s);
        worst = Math.max(worst, Math.abs(back[r * C + c]! - t.data[r * C + c]!) / (m || 1));
      }
    }
    q[name] = { dtype: 'F8_E4M3', shape: t.shape, data: bytes };
    q[`${name}_scale_inv`] = { dtype: 'F32', shape: [SR, SC], data: scale };
    deq[name] = { dtype: 'F32', shape: t.shape, data: back };
  }
  writeFileSync(join(fp8dir, 'config.json'), JSON.stringify({ ...cfg, quantization_config: { quant_method: 'fp8', fmt: 'e4m3', activation_scheme: 'dynamic', weight_block_size: [br, bc] } }));
  writeSafetensors(join(fp8dir, 'model.safetensors'), q);
  writeFileSync(join(f32dir, 'config.json'), JSON.stringify(cfg));
  writeSafetensors(join(f32dir, 'model.safetensors'), deq);
  return worst;
}
