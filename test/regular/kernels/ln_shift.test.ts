// ln_shift (kernels/rwkv7/ln_shift.wgsl): LayerNorm + token shift + shift-state store in one dispatch, against its
// reference and against the unfused GPU ops it replaces (layer_norm [+ pre layer_norm], token_shift, shift_store).
// Widths straddling the workgroup (64, 130, 200, 320), several sequences packed on their own slots at different
// positions (some resuming from a nonzero shift state, some of one token, one of 70 tokens), 6 mix planes (time mix,
// with and without the layer-0 pre-norm) and 1 (channel mix); rows of several column blocks (1000); the portable
// workgroup-memory reduction ('fused_wg') on two cases. Checks the mixed planes, the state and LN_pre(e).
import { describe, test } from 'bun:test';
import { prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { hostWeight, packedStep, type Body } from './harness.ts';
import { checkFused } from './rwkv7_helpers.ts';
import { lnShift } from '../../../kernels/rwkv7/ln_shift.ts';
import { layerNorm } from '../../../kernels/norm/layer_norm.ts';
import { shiftStore, tokenShift } from '../../../kernels/rwkv7/token_shift.ts';

const SLOTS = 6;

async function runCase(C: number, M: number, pre: boolean, seqs: { slot: number; len: number }[], warm: number[], variant: 'fused' | 'fused_wg' = 'fused'): Promise<void> {
  const what = `ln_shift C=${C} M=${M}${pre ? ' pre' : ''} seqs ${seqs.map(s => `${s.len}@${s.slot}`).join(',')} [${variant}]`;
  const rng = prng(what);
  const step = packedStep(seqs);
  const N = step.ids.length;
  const x = randn(N * C, rng, 2, 0.3);
  const nw = new Float32Array((pre ? 4 : 2) * C);
  nw.set(randn(C, rng, 0.2, 1), 0);
  nw.set(randn(C, rng, 0.2), C);
  if (pre) { nw.set(randn(C, rng, 0.2, 1), 2 * C); nw.set(randn(C, rng, 0.2), 3 * C); }
  const mix = randn(M * C, rng, 0.3, 0.5);
  const init = new Float32Array(SLOTS * C);
  for (const s of warm) init.set(randn(C, rng), s * C);
  const setup = { states: [{ key: 'shift', cols: C }], slots: SLOTS, init: { shift: init } };
  const inputs = (io: Parameters<Body>[0]) => {
    const xt = io.o.act('x', C), out = io.o.act('mix', C, { planes: M }), xo = io.o.act('xo', C);
    io.put(xt, x); io.put(out); io.put(xo, pre ? undefined : new Float32Array(N * C));
    return { xt, out, xo, st: io.o.state('shift') };
  };
  const fused: Body = async io => {
    const { xt, out, xo, st } = inputs(io);
    await lnShift(io.o, { x: xt, nw: io.weight('nw', hostWeight(nw, [pre ? 4 : 2, C]), false), state: st, mix: io.weight('mix', hostWeight(mix, [M, C]), false), out, xo: pre ? xo : null, eps: 1e-5 });
    return { out, state: st, xo };
  };
  const unfused: Body = async io => {
    const { xt, out, xo, st } = inputs(io);
    const w = (i: number) => io.weight(`nw${i}`, hostWeight(nw.slice(i * C, (i + 1) * C), [C]), false);
    const h = io.o.act('h', C);
    let inp = xt;
    if (pre) { await layerNorm(io.o, xt, w(2), w(3), 1e-5, xo); inp = xo; }
    await layerNorm(io.o, inp, w(0), w(1), 1e-5, h);
    await tokenShift(io.o, h, st, io.weight('mix', hostWeight(mix, [M, C]), false), out);
    await shiftStore(io.o, h, st);
    return { out, state: st, xo };
  };
  await checkFused('FLA_KERNEL_LN_SHIFT', variant, step, setup, fused, unfused, rng, what);
}

describe.skipIf(!HAS_GPU)('ln_shift', () => {
  test('C=64 M=6 pre: four sequences (lengths 5, 1, 9, 1), two resuming', async () => {
    await runCase(64, 6, true, [{ slot: 2, len: 5 }, { slot: 0, len: 1 }, { slot: 3, len: 9 }, { slot: 5, len: 1 }], [2, 5, 4]);
  }, 300_000);
  test('C=200 M=6: decode, one token in each of three slots, all resuming', async () => {
    await runCase(200, 6, false, [{ slot: 1, len: 1 }, { slot: 4, len: 1 }, { slot: 0, len: 1 }], [0, 1, 2, 3, 4, 5]);
  }, 300_000);
  test('C=130 M=1: prefill of 70 tokens packed with a short resuming sequence', async () => {
    await runCase(130, 1, false, [{ slot: 3, len: 70 }, { slot: 1, len: 3 }], [1, 3]);
  }, 300_000);
  test('C=320 M=6 pre: prefill and decode together; an empty sequence leaves its slot alone', async () => {
    await runCase(320, 6, true, [{ slot: 1, len: 33 }, { slot: 2, len: 0 }, { slot: 4, len: 1 }], [1, 2, 4]);
  }, 300_000);
  test('C=256 M=1: decode of one sequence', async () => {
    await runCase(256, 1, false, [{ slot: 5, len: 1 }], [5]);
  });
  test('C=1000 M=6 pre: rows of four column blocks, the last one partial; decode and a short prefill', async () => {
    await runCase(1000, 6, true, [{ slot: 0, len: 1 }, { slot: 3, len: 4 }], [0, 3]);
  }, 300_000);
  // the portable reduction (what 'fused' runs without subgroups)
  test('C=320 M=6 pre: prefill and decode together [fused_wg]', async () => {
    await runCase(320, 6, true, [{ slot: 1, len: 33 }, { slot: 2, len: 0 }, { slot: 4, len: 1 }], [1, 2, 4], 'fused_wg');
  }, 300_000);
  test('C=200 M=1: decode, two slots resuming [fused_wg]', async () => {
    await runCase(200, 1, false, [{ slot: 1, len: 1 }, { slot: 4, len: 1 }], [1, 4], 'fused_wg');
  }, 300_000);
});
