// rwkv7_tmix (kernels/rwkv7/rwkv7_tmix.ts): ln_shift + rwkv7_proj + wkv7_lora as one op — 'ln' (the LayerNorm and
// token shift in the prologue of rwkv7_proj_ln.wgsl, the shift-state store in wkv7_lora's epilogue), 'ln_wg' (the
// same through workgroup memory) and 'ops' (the three ops) — against the reference (the three ops' references in
// order) and against the three ops run one by one on the GPU. Decode steps of one-token sequences on scattered
// slots, head dims 64 and 128, first-layer ranks (writes vfirst) and later layers, bf16 / f16 / f32 weights, hidden
// sizes whose rows straddle the lanes and workgroups (128, 256, 384), the layer-0 pre-norm; a short prefill step and
// LoRA ranks past C fall back to 'ops'; prefill steps with a sequence past 16 tokens run 'mm' (the LoRA as matmuls) where
// the arguments carry the LoRA matrices, 'ops' when forced (each case checks which variant ran). Compares
// r, k, v, the core's output, vfirst, the wkv and shift states and LN_pre(e). On a CPU adapter four cases (f32 first layer,
// RPT=4, both ln_wg) run under one WebGPU binding each, two under each (rwkv7_helpers.ts otherBindingOnCpu).
import { describe, expect, test } from 'bun:test';
import { prng, randn, randu } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { hostWeight, packedStep, selectCtx, type Body } from './harness.ts';
import { checkFused, otherBindingOnCpu, withEnv } from './rwkv7_helpers.ts';
import { rwkv7Tmix, rwkv7TmixOp } from '../../../kernels/rwkv7/rwkv7_tmix.ts';
import { lnShift } from '../../../kernels/rwkv7/ln_shift.ts';
import { rwkv7Proj } from '../../../kernels/rwkv7/rwkv7_proj.ts';
import { wkv7Lora } from '../../../kernels/rwkv7/wkv7_lora.ts';
import type { LoraRanks } from '../../../kernels/rwkv7/wkv7_lora.ref.ts';
import { CpuBackend } from '../../../src/backend/cpu.ts';
import type { GpuBackend } from '../../../src/backend/gpu.ts';

const SLOTS = 5;
type Seqs = { slot: number; len: number }[];
type Variant = 'ln' | 'ln_wg' | 'ops' | 'mm';

async function runCase(C: number, D: number, ranks: LoraRanks, pre: boolean, dtype: 'f32' | 'bf16' | 'f16', variant: Variant, seqs: Seqs, runs: Variant = variant): Promise<void> {
  const R = ranks.w + ranks.a + ranks.g + ranks.v, first = ranks.v === 0, nr = pre ? 4 : 2;
  const what = `rwkv7_tmix C=${C} D=${D} ranks ${ranks.w},${ranks.a},${ranks.g},${ranks.v}${pre ? ' pre' : ''} ${dtype} [${variant}] seqs ${seqs.map(s => `${s.len}@${s.slot}`).join(',')}`;
  const rng = prng(what);
  const step = packedStep(seqs);
  const N = step.ids.length;
  const x = randn(N * C, rng, 1.5, 0.2);
  const nw = new Float32Array(nr * C);
  nw.set(randn(C, rng, 0.2, 1), 0); nw.set(randn(C, rng, 0.2), C);
  if (pre) { nw.set(randn(C, rng, 0.2, 1), 2 * C); nw.set(randn(C, rng, 0.2), 3 * C); }
  const xmix = randu(6 * C, rng, 0, 1);
  const lnw = new Float32Array((nr + 6) * C);
  lnw.set(nw); lnw.set(xmix, nr * C);
  const ws = [0, 1, 2].map(() => randn(C * C, rng, 1 / Math.sqrt(C)));
  const wl = randn(R * C, rng, 2 / Math.sqrt(C));
  const wu = randn(R * C, rng, 1 / Math.sqrt(32));
  const params = new Float32Array(8 * C);
  params.set(randu(C, rng, 0.5, 1.5), 0); params.set(randu(C, rng, 0, 1), C); params.set(randn(C, rng, 0.3), 2 * C);
  params.set(randn(C, rng, 0.2, 1), 3 * C); params.set(randn(C, rng, 0.2), 4 * C); params.set(randn(C, rng, 0.5, -1), 5 * C);
  params.set(randn(C, rng, 0.5), 6 * C); params.set(randn(C, rng, 0.5), 7 * C);
  const vfirst = randn(N * C, rng);
  const setup = {
    states: [{ key: 'wkv', cols: C * D }, { key: 'shift', cols: C }], slots: SLOTS,
    init: { wkv: randn(SLOTS * C * D, rng, 0.3), shift: randn(SLOTS * C, rng) },
  };
  const body = (fused: boolean): Body => async io => {
    const xt = io.o.act('x', C), xo = io.o.act('xo', C), mix = io.o.act('mix', C, { planes: 6 }), proj = io.o.act('proj', C, { planes: 6 });
    const lora = io.o.act('lora', R), vf = io.o.act('vfirst', C), y = io.o.act('y', C);
    io.put(xt, x); io.put(xo, pre ? undefined : new Float32Array(N * C)); io.put(mix); io.put(proj); io.put(lora);
    io.put(vf, first ? undefined : vfirst); io.put(y);
    const planes = (t: typeof mix) => Array.from({ length: 6 }, (_, i) => io.o.plane(t, i));
    const W = ws.map((w, i) => io.weight(`w${i}`, hostWeight(w, [C, C], dtype)));
    const ln = { x: xt, nw: io.weight('nw', hostWeight(nw, [nr, C]), false), state: io.o.state('shift'), mix: io.weight('xmix', hostWeight(xmix, [6, C]), false), out: mix, xo: pre ? xo : null, eps: 1e-5 };
    const pa = { mix, mixPlanes: planes(mix), wr: W[0]!, wk: W[1]!, wv: W[2]!, wl: io.weight('wl', hostWeight(wl, [R, C], dtype)), ranks, proj, projPlanes: planes(proj), lora };
    const core = { proj, lora, wu: io.weight('wu', hostWeight(wu, [R, C], dtype)), ranks, params: io.weight('params', hostWeight(params, [8, C]), false), vfirst: vf, state: io.o.state('wkv'), out: y, D, fuseNorm: false, gnEps: D * 1e-5 };
    // the LoRA matrices as a checkpoint has them ('mm'): W1… rows of wl, W2… the transposed row blocks of wu
    const segs = first ? 3 : 4, rk = [ranks.w, ranks.a, ranks.g, ranks.v], i0 = [0, ranks.w, ranks.w + ranks.a, ranks.w + ranks.a + ranks.g];
    const upT = (i: number) => { const r = rk[i]!, out = new Float32Array(C * r); for (let j = 0; j < r; j++) for (let c = 0; c < C; c++) out[c * r + j] = wu[(i0[i]! + j) * C + c]!; return out; };
    const rows = Array.from({ length: segs }, (_, i) => io.o.act(`lora_${i}`, rk[i]!));
    const vmix = io.o.act('vmix', C);
    for (const t of rows) io.put(t);
    io.put(vmix);
    const mm = {
      down: Array.from({ length: segs }, (_, i) => io.weight(`down${i}`, hostWeight(wl.slice(i0[i]! * C, (i0[i]! + rk[i]!) * C), [rk[i]!, C], dtype))),
      up: Array.from({ length: segs }, (_, i) => io.weight(`up${i}`, hostWeight(upT(i), [C, rk[i]!], dtype))),
      bias: (first ? [5, 6] : [5, 6, 7]).map(r => io.weight(`bias${r}`, hostWeight(params.slice(r * C, (r + 1) * C), [C]), false)),
      rows, vmix: first ? null : vmix,
    };
    const args = { ln, lnw: io.weight('lnw', hostWeight(lnw, [nr + 6, C]), false), proj: pa, core, mm };
    if (fused && io.kind === 'gpu') expect((io.o as GpuBackend).variant(rwkv7TmixOp, args)).toBe(runs);   // the path under test ran
    if (fused) await rwkv7Tmix(io.o, args);
    else { await lnShift(io.o, ln); await rwkv7Proj(io.o, pa); await wkv7Lora(io.o, core); }
    const out: Record<string, typeof y> = { r: io.o.plane(proj, 0), k: io.o.plane(proj, 2), v: io.o.plane(proj, 3), y, vfirst: vf, wkv: io.o.state('wkv'), shift: io.o.state('shift') };
    if (pre) out.xo = xo;
    return out;
  };
  await checkFused('FLA_KERNEL_RWKV7_TMIX', variant, step, setup, body(true), body(false), rng, what);
}

const DECODE: Seqs = [{ slot: 3, len: 1 }, { slot: 0, len: 1 }, { slot: 4, len: 1 }];

describe.skipIf(!HAS_GPU)('rwkv7_tmix', () => {
  test('select: ln for steps of one-token sequences, else ops', () => {
    const o = new CpuBackend(), w = (dtype: string, shape: number[]) => ({ dtype, shape }) as never;
    const a = { ln: { xo: null }, lnw: w('f32', [8, 256]), proj: { mix: { cols: 256 }, lora: { cols: 144 }, wr: w('bf16', []), wk: w('bf16', []), wv: w('bf16', []), wl: w('bf16', []), ranks: { w: 32, a: 32, g: 64, v: 16 } }, core: { D: 64, wu: w('bf16', []) } } as never;
    expect([[1], [1, 1, 1], [1, 0, 1], [2], [1, 3], [17]].map(l => rwkv7TmixOp.select(selectCtx(o.adapter, l), a))).toEqual(['ln', 'ln', 'ln', 'ops', 'ops', 'ops']);
  });
  test('C=256 D=64 bf16 later layer, decode of three slots [ln]', async () => {
    await runCase(256, 64, { w: 32, a: 32, g: 64, v: 16 }, false, 'bf16', 'ln', DECODE);
  }, 300_000);
  test.skipIf(otherBindingOnCpu('bun-webgpu'))('C=128 D=64 f32 first layer ranks (writes vfirst), one slot [ln]', async () => {
    await runCase(128, 64, { w: 32, a: 24, g: 32, v: 0 }, false, 'f32', 'ln', [{ slot: 2, len: 1 }]);
  }, 300_000);
  test('C=128 D=64 f32 layer 0 with the pre-norm (writes LN_pre(e) and vfirst), one slot [ln]', async () => {
    await runCase(128, 64, { w: 32, a: 24, g: 32, v: 0 }, true, 'f32', 'ln', [{ slot: 2, len: 1 }]);
  }, 300_000);
  test('C=384 D=64 bf16 layer 0 with the pre-norm, decode of three slots [ln]', async () => {
    await runCase(384, 64, { w: 32, a: 32, g: 64, v: 0 }, true, 'bf16', 'ln', DECODE);
  }, 300_000);
  test.skipIf(otherBindingOnCpu('dawn'))('C=256 D=128 f16 layer 0 with the pre-norm, decode of two slots [ln_wg]', async () => {
    await runCase(256, 128, { w: 64, a: 40, g: 48, v: 0 }, true, 'f16', 'ln_wg', [{ slot: 1, len: 1 }, { slot: 4, len: 1 }]);
  }, 300_000);
  test('C=256 D=128 f16 later layer, decode of two slots [ln]', async () => {
    await runCase(256, 128, { w: 64, a: 40, g: 48, v: 24 }, false, 'f16', 'ln', [{ slot: 1, len: 1 }, { slot: 4, len: 1 }]);
  }, 300_000);
  test('C=384 D=64 bf16, ranks as kjv-rwkv7, decode of three slots [ln]', async () => {
    await runCase(384, 64, { w: 32, a: 32, g: 64, v: 16 }, false, 'bf16', 'ln', DECODE);
  }, 300_000);
  test.skipIf(otherBindingOnCpu('dawn'))('C=384 D=64 bf16, four output rows per lane group (FLA_RWKV7_LN_RPT=4; segments end mid-group) [ln]', async () => {
    await withEnv('FLA_RWKV7_LN_RPT', '4', async () => {
        await runCase(384, 64, { w: 32, a: 40, g: 64, v: 16 }, false, 'bf16', 'ln', DECODE);
    });
  }, 300_000);
  test.skipIf(otherBindingOnCpu('bun-webgpu'))('C=256 D=64 bf16 later layer, decode of three slots [ln_wg]', async () => {
    await runCase(256, 64, { w: 32, a: 32, g: 64, v: 16 }, false, 'bf16', 'ln_wg', DECODE);
  }, 300_000);
  test('C=128 D=64 bf16, LoRA ranks summing past C: forced ln falls back to ops', async () => {
    await runCase(128, 64, { w: 32, a: 32, g: 64, v: 16 }, false, 'bf16', 'ln', DECODE, 'ops');
  }, 300_000);
  test('C=128 D=64 bf16 prefill of 5 tokens and a decode row: ln forced falls back to ops', async () => {
    await runCase(128, 64, { w: 32, a: 32, g: 32, v: 0 }, true, 'bf16', 'ln', [{ slot: 1, len: 5 }, { slot: 3, len: 1 }], 'ops');
  }, 300_000);
  test('C=256 D=64 bf16 later layer, prefill of 20 and 33 tokens and a decode row [mm]', async () => {
    await runCase(256, 64, { w: 32, a: 32, g: 64, v: 16 }, false, 'bf16', 'mm', [{ slot: 1, len: 20 }, { slot: 4, len: 1 }, { slot: 0, len: 33 }]);
  }, 300_000);
  test('C=128 D=64 f32 layer 0 with the pre-norm, prefill of 17 tokens [mm] (writes vfirst)', async () => {
    await runCase(128, 64, { w: 32, a: 24, g: 32, v: 0 }, true, 'f32', 'mm', [{ slot: 2, len: 17 }]);
  }, 300_000);
  test('C=256 D=128 f16 later layer, prefill of 70 tokens (chunked core where the adapter chunks) [mm]', async () => {
    await runCase(256, 128, { w: 64, a: 40, g: 48, v: 24 }, false, 'f16', 'mm', [{ slot: 3, len: 70 }, { slot: 0, len: 2 }]);
  }, 300_000);
  test('C=128 D=64 bf16 prefill of 20 tokens forced to ops [ops]', async () => {
    await runCase(128, 64, { w: 32, a: 32, g: 32, v: 16 }, false, 'bf16', 'ops', [{ slot: 1, len: 20 }]);
  }, 300_000);
});
