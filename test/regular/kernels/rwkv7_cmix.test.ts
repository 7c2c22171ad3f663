// rwkv7_cmix (kernels/rwkv7/rwkv7_cmix.ts): RWKV7's channel-mix LayerNorm + token shift + key projection with relu²
// as one op — 'ln' (the LayerNorm in the prologue of rwkv7_proj_ln.wgsl with CMIX, h into hout, the shift state left
// to the next layer's time mix; forced only), 'ln_wg' (the same through workgroup memory) and 'ops' (ln_shift + matmul, the default) — against
// the reference (ln_shift.ref, matmul.ref, h) and against the two ops run one by one on the GPU. The state store a
// deferring 'ln' leaves is completed as rwkv7_tmix's prevCmix does (shift_store from hout) when cmixDeferred says so.
// Decode steps of one-token sequences on scattered slots, hidden sizes whose rows straddle the workgroup (128, 384,
// 1088: more than one vec4 a thread), key rows ending mid-workgroup, bf16 / f16 / f32 weights; a prefill step, a
// missing hout and a forced 'ops' run 'ops' (each case checks which variant ran and whether it deferred). Compares
// ffk, the shift state and (where the op deferred) hout.
// On a CPU adapter three cases run under one WebGPU binding each (rwkv7_helpers.ts otherBindingOnCpu).
import { describe, expect, test } from 'bun:test';
import { prng, randn, randu } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { hostWeight, packedStep, selectCtx, type Body } from './harness.ts';
import { checkFused, otherBindingOnCpu } from './rwkv7_helpers.ts';
import { cmixDeferred, rwkv7Cmix, rwkv7CmixOp, type Rwkv7CmixArgs } from '../../../kernels/rwkv7/rwkv7_cmix.ts';
import { lnShift } from '../../../kernels/rwkv7/ln_shift.ts';
import { matmul } from '../../../kernels/matmul/matmul.ts';
import { shiftStore } from '../../../kernels/rwkv7/token_shift.ts';
import { CpuBackend } from '../../../src/backend/cpu.ts';
import type { GpuBackend } from '../../../src/backend/gpu.ts';
import { stepShape } from '../../../src/backend/op.ts';

const SLOTS = 5;
type Seqs = { slot: number; len: number }[];
type Variant = 'ln' | 'ln_wg' | 'ops';

async function runCase(C: number, I: number, dtype: 'f32' | 'bf16' | 'f16', variant: Variant, seqs: Seqs, runs: Variant = variant, hasHout = true): Promise<void> {
  const what = `rwkv7_cmix C=${C} I=${I} ${dtype} [${variant}] seqs ${seqs.map(s => `${s.len}@${s.slot}`).join(',')}${hasHout ? '' : ' no hout'}`;
  const rng = prng(what);
  const step = packedStep(seqs);
  const N = step.ids.length;
  const x = randn(N * C, rng, 1.5, 0.2);
  const nw = new Float32Array(2 * C);
  nw.set(randn(C, rng, 0.2, 1), 0); nw.set(randn(C, rng, 0.2), C);
  const xk = randu(C, rng, 0, 1);
  const lnw = new Float32Array(3 * C);
  lnw.set(nw); lnw.set(xk, 2 * C);
  const key = randn(I * C, rng, 1 / Math.sqrt(C));
  const setup = { states: [{ key: 'shift', cols: C }], slots: SLOTS, init: { shift: randn(SLOTS * C, rng) } };
  const body = (fused: boolean): Body => async io => {
    const xt = io.o.act('x', C), kx = io.o.act('kx', C), ffk = io.o.act('ffk', I), hout = io.o.act('hout', C);
    io.put(xt, x); io.put(kx); io.put(ffk); io.put(hout);
    const ln = { x: xt, nw: io.weight('nw', hostWeight(nw, [2, C]), false), state: io.o.state('shift'), mix: io.weight('xk', hostWeight(xk, [1, C]), false), out: kx, xo: null, eps: 1e-5 };
    const keyW = io.weight('key', hostWeight(key, [I, C], dtype));
    const args: Rwkv7CmixArgs = { ln, lnw: io.weight('lnw', hostWeight(lnw, [3, C]), false), key: keyW, ffk, hout: hasHout ? hout : null };
    const out: Record<string, typeof ffk> = { ffk, shift: io.o.state('shift') };
    if (fused) {
      if (io.kind === 'gpu') {
        const g = io.o as GpuBackend, c = { adapter: g.adapter, step: stepShape({ ids: Int32Array.from(step.ids), cursors: step.cursors, keep: Int32Array.from(step.keep) }) };
        expect(g.variant(rwkv7CmixOp, args)).toBe(runs);   // the path under test ran
        expect(cmixDeferred(args, c)).toBe(runs !== 'ops');
        await rwkv7Cmix(io.o, args);
        if (cmixDeferred(args, c)) await shiftStore(io.o, hout, io.o.state('shift'));   // as the next rwkv7_tmix would
      } else await rwkv7Cmix(io.o, args);
      if (runs !== 'ops') out.hout = hout;   // written where the op defers (the reference always writes it)
    } else {
      await lnShift(io.o, ln);
      await matmul(io.o, kx, keyW, null, 'relu2', ffk);
    }
    return out;
  };
  await checkFused('FLA_KERNEL_RWKV7_CMIX', variant, step, setup, body(true), body(false), rng, what);
}

const DECODE: Seqs = [{ slot: 3, len: 1 }, { slot: 0, len: 1 }, { slot: 4, len: 1 }];

describe.skipIf(!HAS_GPU)('rwkv7_cmix', () => {
  test('select: ops (ln forced only); ln supports steps of one-token sequences with hout', () => {
    const o = new CpuBackend(), w = (dtype: string, shape: number[]) => ({ dtype, shape }) as never;
    const a = { ln: { x: { cols: 256 } }, lnw: w('f32', [3, 256]), key: w('bf16', [1024, 256]), hout: { cols: 256 } } as never;
    const none = { ...(a as object), hout: null } as never;
    const lens = [[1], [1, 1, 1], [1, 0, 1], [2], [1, 3]];
    expect(lens.map(l => rwkv7CmixOp.select(selectCtx(o.adapter, l), a))).toEqual(['ops', 'ops', 'ops', 'ops', 'ops']);
    expect(lens.map(l => rwkv7CmixOp.variants.ln!.supports!(a, selectCtx(o.adapter, l)))).toEqual([true, true, true, false, false]);
    expect(rwkv7CmixOp.variants.ln!.supports!(none, selectCtx(o.adapter, [1]))).toBe(false);
  });
  test('C=256 I=1024 bf16, decode of three slots [ln]', async () => {
    await runCase(256, 1024, 'bf16', 'ln', DECODE);
  }, 300_000);
  test('C=384 I=520 f16 (key rows end mid-workgroup), decode of two slots [ln]', async () => {
    await runCase(384, 520, 'f16', 'ln', [{ slot: 1, len: 1 }, { slot: 4, len: 1 }]);
  }, 300_000);
  test.skipIf(otherBindingOnCpu('bun-webgpu'))('C=1088 I=264 f32 (two vec4 of the row a thread), one slot [ln]', async () => {
    await runCase(1088, 264, 'f32', 'ln', [{ slot: 2, len: 1 }]);
  }, 300_000);
  test.skipIf(otherBindingOnCpu('dawn'))('C=2048 I=256 bf16, decode of three slots in two row blocks (forced: select wants one pass) [ln]', async () => {
    await runCase(2048, 256, 'bf16', 'ln', DECODE);
  }, 300_000);
  test.skipIf(otherBindingOnCpu('bun-webgpu'))('C=256 I=512 bf16, decode of three slots [ln_wg]', async () => {
    await runCase(256, 512, 'bf16', 'ln_wg', DECODE);
  }, 300_000);
  test('C=128 I=512 bf16, decode without hout: forced ln falls back to ops', async () => {
    await runCase(128, 512, 'bf16', 'ln', DECODE, 'ops', false);
  }, 300_000);
  test('C=128 I=256 bf16, prefill of 5 tokens and a decode row: forced ln falls back to ops', async () => {
    await runCase(128, 256, 'bf16', 'ln', [{ slot: 1, len: 5 }, { slot: 3, len: 1 }], 'ops');
  }, 300_000);
  test('C=256 I=512 f16, decode forced to ops [ops]', async () => {
    await runCase(256, 512, 'f16', 'ops', DECODE);
  }, 300_000);
});
