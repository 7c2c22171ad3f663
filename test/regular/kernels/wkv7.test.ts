// wkv7 (kernels/rwkv7/wkv7_recurrent.wgsl): the RWKV7 time-mix core against wkv7.ref.ts, for head
// dims 64 and 128 (two heads each), three sequences of lengths 1, 7 and 65 packed in one step on
// different slots (one more slot untouched), nonzero initial state; the first layer (vmix null:
// writes vfirst) and later layers (read vfirst and vmix), with and without the fused kk norm.
// Compares y, vfirst and the whole state afterwards.
import { describe, test } from 'bun:test';
import { prng, randn, randu, type Prng } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, hostWeight, packedStep } from './harness.ts';
import { wkv7 } from '../../../kernels/rwkv7/wkv7.ts';

const SLOTS = 4;

/** proj planes r, w, k, v, a, g with model-like magnitudes. */
function projPlanes(N: number, C: number, rng: Prng): Float32Array {
  const P = N * C;
  const out = new Float32Array(6 * P);
  out.set(randn(P, rng, 0.5), 0);                // r
  out.set(randu(P, rng, -0.6, -1e-3), P);        // w: log-decay in [-0.6, 0)
  out.set(randn(P, rng, 0.5), 2 * P);            // k
  out.set(randn(P, rng), 3 * P);                 // v
  out.set(randu(P, rng, 0.02, 0.98), 4 * P);     // a = sigmoid(...) in (0, 1)
  out.set(randn(P, rng), 5 * P);                 // g
  return out;
}

async function runCase(D: number, first: boolean, fuseNorm: boolean, seqs = [{ slot: 2, len: 7 }, { slot: 0, len: 1 }, { slot: 3, len: 65 }]): Promise<void> {
  const H = 2, C = H * D;
  const what = `wkv7 D=${D} ${first ? 'first' : 'later'} layer${fuseNorm ? ' fuseNorm' : ''} seqs ${seqs.map(s => `${s.len}@${s.slot}`).join(',')}`;
  const rng = prng(what);
  const step = packedStep(seqs);
  const N = step.ids.length;
  const proj = projPlanes(N, C, rng);
  // a few tokens with k ≈ 0 (Σ(k⊙k_k)² ~ 1e-7 per head): only there do the fused norm 1/sqrt(ss + 1e-6)
  // and the unfused 1/max(‖kk‖, 1e-12) differ, so fuseNorm true/false are told apart
  for (const t of [0, 9, 40]) if (t < N) for (let c = 0; c < C; c++) proj[2 * N * C + t * C + c]! *= 1e-4;
  const vfirst = randn(N * C, rng);
  const vmix = randu(N * C, rng, 0, 1);   // both torch.lerp branches (|m| < 0.5 and ≥ 0.5)
  const params = new Float32Array(5 * C);
  params.set(randu(C, rng, 0.5, 1.5), 0);        // k_k
  params.set(randu(C, rng, 0, 1), C);            // k_a
  params.set(randn(C, rng, 0.3), 2 * C);         // r_k
  params.set(randn(C, rng, 0.2, 1), 3 * C);      // g_norm.weight
  params.set(randn(C, rng, 0.2), 4 * C);         // g_norm.bias
  const state = randn(SLOTS * C * D, rng, 0.3);  // every slot nonzero, slot 1 is not in the step
  await checkBoth(step, { states: [{ key: 'wkv', cols: C * D }], slots: SLOTS, init: { wkv: state } }, async io => {
    const p = io.o.act('proj', C, { planes: 6 }), vf = io.o.act('vfirst', C), vm = io.o.act('vmix', C), y = io.o.act('y', C);
    io.put(p, proj);
    io.put(vf, first ? undefined : vfirst);
    io.put(vm, vmix);
    io.put(y);
    const st = io.o.state('wkv');
    await wkv7(io.o, {
      proj: p, vfirst: vf, vmix: first ? null : vm, params: io.weight('params', hostWeight(params, [5, C]), false),
      state: st, out: y, D, fuseNorm, gnEps: D * 1e-5,
    });
    return { y, vfirst: vf, state: st, proj: p };
  }, { seed: rng, what });
}

describe.skipIf(!HAS_GPU)('wkv7', () => {
  for (const D of [64, 128]) {
    for (const first of [true, false]) {
      for (const fuseNorm of [false, true]) {
        test(`D=${D} ${first ? 'first layer (writes vfirst)' : 'later layer (vfirst, vmix)'}${fuseNorm ? ', fuseNorm' : ''}`, async () => {
          await runCase(D, first, fuseNorm);
        });
      }
    }
  }
  test('D=64: decode, one token in each of four slots', async () => {
    await runCase(64, false, true, [{ slot: 3, len: 1 }, { slot: 1, len: 1 }, { slot: 0, len: 1 }, { slot: 2, len: 1 }]);
  });
});
