// sdpa_sgmat.wgsl (sdpa's flash_sgmat variant) through Tint on any machine: dawn.node's Null backend offers
// chromium-experimental-subgroup-matrix (no configs, so no pipelines), enough to parse and resolve every shader the
// variant would launch on an H200 (f16 16×16×16 → f32, subgroup size 32, 48 KiB of workgroup memory): head dims 64
// and 128 (and 32, 16), each KV-cache dtype. Lavapipe has no subgroup matrices; the numerics run on the GPU machine
// (attention.test.ts, attention_kv16.test.ts). Also the plan: how many subgroups fit, and where there is none.
import { describe, expect, test } from 'bun:test';
import { createRequire } from 'node:module';
import { sdpaOp } from '../../../kernels/attention/sdpa.ts';
import { sgmatFlashBytes, sgmatFlashPlan } from '../../../kernels/attention/sdpa_sgmat.ts';
import { sdpaRef } from '../../../kernels/attention/sdpa.ref.ts';
import { sdpaSgmatRef } from '../../../kernels/attention/sdpa_sgmat.ref.ts';
import { INCLUDES } from '../../../kernels/lib.ts';
import { prng, randn } from '../../helpers/allclose.ts';
import type { Adapter, Ctx } from '../../../src/backend/op.ts';
import { bindingNames, preprocess } from '../../../src/gpu/wgsl.ts';

const H200: Adapter = {
  kind: 'gpu', type: 'unknown', f16: true, subgroups: true, subgroupSize: 32, maxInvocations: 1024, maxWorkgroupStorage: 49152,
  maxBinding: 2 ** 31 - 4, features: new Set(['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix']),
  subgroupMatrix: [{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }, { componentType: 'f16', resultComponentType: 'f16', M: 16, N: 16, K: 16 }],
};
const cursors = [{ slot: 0, start: 0, len: 100, pos: 0 }, { slot: 1, start: 100, len: 30, pos: 5 }];
const ctx: Ctx = { adapter: H200, step: { n: 130, k: 2, b: 2, lens: [100, 30], maxLen: 100, cursors } };

async function nullDevice(): Promise<GPUDevice | null> {
  if (process.platform !== 'linux' || process.arch !== 'x64') return null;
  const { create } = createRequire(import.meta.url)('webgpu/dist/linux-x64/dawn.node');
  const gpu = create(['backend=null', 'enable-dawn-features=allow_unsafe_apis']);
  (globalThis as any).__flaNullDawnSdpa = gpu;   // the instance must outlive its device (src/gpu/binding.ts)
  const a = await gpu.requestAdapter();
  if (!a?.features.has('chromium-experimental-subgroup-matrix')) return null;
  return a.requestDevice({ requiredFeatures: ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'] as GPUFeatureName[] });
}

const device = await nullDevice();
if (!device) console.warn('skip: sdpa_sgmat WGSL (dawn.node Null backend with subgroup matrices unavailable here)');

describe.skipIf(!device)('sdpa_sgmat.wgsl resolves in Tint', () => {
  for (const D of [16, 32, 64, 128]) for (const kv of ['f32', 'f16', 'bf16'] as const) {
    test(`D ${D}, ${kv} cache`, async () => {
      const cols = (kv === 'f32' ? 200 : 100) * 2 * D;
      const a = { q: { rows: 'n', cols: 8 * D }, k: { cols }, v: { cols }, out: { rows: 'n', cols: 8 * D }, H: 8, KV: 2, D, ctx: 200, kv } as any;
      const ls = sdpaOp.variants.flash_sgmat!.launches(a, ctx);
      expect(ls.length).toBe(1);
      const l = ls[0]!;
      const code = preprocess(l.kernel.source, l.defines ?? {}, { f16: true, subgroups: true }, { ...INCLUDES, ...sdpaOp.includes });
      expect(bindingNames(code)).toEqual([...l.kernel.bindings]);
      const info = await device!.createShaderModule({ code }).getCompilationInfo();
      const errors = info.messages.filter(m => m.type === 'error').map(m => `${m.lineNum}:${m.linePos} ${m.message}`);
      expect({ D, kv, errors }).toEqual({ D, kv, errors: [] });
    });
  }
});

// The split arithmetic itself, emulated on the CPU (sdpa_sgmat.ref.ts): f32-grade against sdpaRef at head dims 64 and
// 128 (measured 1.6e-7 and 2.1e-7 at 300 tokens, GQA 2; an H200 run gave 2–3e-4 when lo was lost, as the single
// product gives here, ~4e-4).
describe('sdpa_sgmat arithmetic (CPU emulation)', () => {
  for (const D of [64, 128]) test(`D=${D}, GQA 2, 70 tokens after a 30-token prefix, a window of 50: split ≤ 1e-6, single > 1e-4`, () => {
    const rng = prng(`sgmat emulation ${D}`), H = 4, KV = 2, ctx = 100;
    const q = randn(70 * H * D, rng), k = randn(ctx * KV * D, rng), v = randn(ctx * KV * D, rng);
    const cursors = [{ slot: 0, start: 0, len: 70, pos: 30 }];
    const err = (window: number, single: boolean) => {
      const dims = { H, KV, D, ctx, window, scale: 1 / Math.sqrt(D), kv: 'f32' as const };
      const want = new Float32Array(70 * H * D), got = new Float32Array(70 * H * D);
      sdpaRef(q, k, v, want, cursors, dims);
      sdpaSgmatRef(q, k, v, got, cursors, dims, { single });
      let dm = 0, mm = 0;
      for (let i = 0; i < want.length; i++) { dm = Math.max(dm, Math.abs(got[i]! - want[i]!)); mm = Math.max(mm, Math.abs(want[i]!)); }
      return dm / mm;
    };
    for (const w of [0, 50]) {
      expect(err(w, false)).toBeLessThan(1e-6);
      expect(err(w, true)).toBeGreaterThan(1e-4);
    }
  });
});

describe('sgmatFlashPlan', () => {
  test('4 subgroups at D ≤ 64 in 48 KiB, 2 at D = 128; none without the f16 config, past D 128 or off multiples of 16', () => {
    expect(sgmatFlashPlan(H200, 64)).toEqual({ NS: 4, BC: 32, BR: 64 });
    expect(sgmatFlashPlan(H200, 128)).toEqual({ NS: 2, BC: 32, BR: 32 });
    expect(sgmatFlashBytes(64, 4, 32)).toBeLessThanOrEqual(49152);
    expect(sgmatFlashPlan(H200, 256)).toBeNull();
    expect(sgmatFlashPlan(H200, 40)).toBeNull();
    expect(sgmatFlashPlan({ ...H200, subgroupMatrix: [] }, 64)).toBeNull();
    expect(sgmatFlashPlan({ ...H200, subgroupSize: 16 }, 64)).toBeNull();
    expect(sgmatFlashPlan({ ...H200, maxWorkgroupStorage: 16384 }, 128)).toBeNull();
  });
});
