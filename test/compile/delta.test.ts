// Compiles every pipeline variant of the delta-rule family (kernels/delta) and the short conv (kernels/conv)
// through the backend's build of each op variant, inside a validation scope; nothing is dispatched.
import { describe, expect, test } from 'bun:test';
import { shortConvOp, type ConvAct } from '../../kernels/conv/short_conv.ts';
import { deltaRuleOp, type DeltaDims, type DeltaOp, type QkAct, type QkNorm } from '../../kernels/delta/delta_rule.ts';
import { HAS_GPU } from '../helpers/gpu.ts';
import { built, state, step, t, w } from './build.ts';

const QK_ACTS: QkAct[] = ['none', 'silu', 'relu', 'elu'];
const QK_NORMS: QkNorm[] = ['l2', 'sum', 'none'];
const B = [false, true];

describe.skipIf(!HAS_GPU)('delta-rule and short-conv variants compile', () => {
  test('short_conv × silu: fused, and split (short_conv then conv_store); a packed part of a wider row', async () => {
    step([50, 20], 2);
    for (const act of ['none', 'silu'] as ConvAct[]) {
      const a = { x: t(96), w: w([96, 1, 4]), state: state(3 * 96), y: t(96, { name: 'y' }), act };
      expect((await built(`short_conv ${act}`, shortConvOp, a)).map(d => d.label)).toEqual(['short_conv_fused']);
      expect((await built(`short_conv ${act} split`, shortConvOp, a, 'split')).map(d => d.label)).toEqual(['short_conv', 'conv_store']);
      const p = { ...a, x: t(200, { name: 'p' }), xOff: 8, siluFrom: 64 };
      expect((await built(`short_conv ${act} packed`, shortConvOp, p)).map(d => d.label)).toEqual(['short_conv_fused']);
    }
  });

  const args = (d: DeltaDims, gate: boolean, beta: boolean): DeltaOp => ({
    q: t(d.H * d.DK), k: t(d.H * d.DK, { name: 'k' }), v: t(d.HV * d.DV), a: gate ? t(d.HV) : null, b: beta ? t(d.HV, { name: 'b' }) : null,
    gp: gate ? w([2, d.HV]) : null, state: state(d.HV * d.DK * d.DV, 2), out: t(d.HV * d.DV, { name: 'o' }), d,
  });

  test('recurrent and chunked: every activation × norm × v silu × gate × beta × negative eigenvalues (DK = DV = 64)', async () => {
    step([50, 20], 2);
    for (const qkAct of QK_ACTS) for (const qkNorm of QK_NORMS) for (const vSilu of B) for (const gate of B) for (const beta of B) for (const negEig of B) {
      const d: DeltaDims = { H: 2, HV: 4, DK: 64, DV: 64, qkAct, qkNorm, vSilu, negEig };
      const what = `delta ${qkAct} ${qkNorm} vSilu=${vSilu} gate=${gate} beta=${beta} negEig=${negEig}`;
      expect((await built(what, deltaRuleOp, args(d, gate, beta), 'recurrent')).map(x => x.label)).toEqual(['delta_rule_recurrent']);
      expect((await built(what, deltaRuleOp, args(d, gate, beta), 'chunk')).map(x => x.label))
        .toEqual(['delta_chunk_prep', 'delta_chunk_kkt', 'delta_chunk_solve_blk', 'delta_chunk_state']);
    }
  });

  // the packed projections of delta_common.ts with the output norm: fused (one kernel), or the norm after the others
  const packed = (d: DeltaDims, gate: boolean, beta: boolean, z: boolean): DeltaOp => {
    const KD = d.H * d.DK, VD = d.HV * d.DV, qkv = t(2 * KD + VD + 3, { name: 'qkv' }), p = t(VD + 2 * d.HV + 5, { name: 'proj' });
    return { ...args(d, gate, beta), q: qkv, k: qkv, v: qkv, a: gate ? p : null, b: beta ? p : null,
      off: { q: 3, k: 3 + KD, v: 3 + 2 * KD, a: VD + 1, b: VD + 2 + d.HV }, norm: { w: w([d.DV]), gate: z ? p : null, gateOff: 0, eps: 1e-6 } };
  };

  test('packed with the output norm: fused and fused_sg × activation × gate × beta × z; recurrent and chunked then rms_norm; DV 48, 128, 256', async () => {
    step([50, 20], 2);
    for (const qkAct of QK_ACTS) for (const gate of B) for (const beta of B) for (const z of B) {
      const d: DeltaDims = { H: 2, HV: 4, DK: 64, DV: 64, qkAct, qkNorm: 'l2', vSilu: !gate, negEig: false };
      const what = `delta packed ${qkAct} gate=${gate} beta=${beta} z=${z}`;
      expect((await built(what, deltaRuleOp, packed(d, gate, beta, z), 'fused')).map(x => x.label)).toEqual(['delta_rule_fused']);
      expect((await built(`${what} sg`, deltaRuleOp, packed(d, gate, beta, z), 'fused_sg')).map(x => x.label)).toEqual(['delta_rule_fused_sg']);
    }
    const d: DeltaDims = { H: 2, HV: 4, DK: 64, DV: 64, qkAct: 'none', qkNorm: 'l2', vSilu: false, negEig: false };
    expect((await built('delta packed recurrent', deltaRuleOp, packed(d, true, true, true), 'recurrent')).map(x => x.label)).toEqual(['delta_rule_recurrent', 'rms_norm']);
    expect((await built('delta packed chunk', deltaRuleOp, packed(d, true, true, true), 'chunk')).map(x => x.label))
      .toEqual(['delta_chunk_prep', 'delta_chunk_kkt', 'delta_chunk_solve_blk', 'delta_chunk_state', 'rms_norm']);
    for (const [DK, DV] of [[128, 48], [128, 128], [128, 256], [256, 128]]) {
      const e: DeltaDims = { ...d, H: 1, HV: 2, DK: DK!, DV: DV! };
      expect((await built(`delta packed fused DK=${DK} DV=${DV}`, deltaRuleOp, packed(e, true, true, true), 'fused')).map(x => x.label)).toEqual(['delta_rule_fused']);
      expect((await built(`delta packed fused_sg DK=${DK} DV=${DV}`, deltaRuleOp, packed(e, true, true, true), 'fused_sg')).map(x => x.label)).toEqual(['delta_rule_fused_sg']);
    }
  });

  test('with the short conv: in fused_sg\'s prologue where a value head is a q/k head (one dispatch), else short_conv_fused first', async () => {
    step([50, 20], 2);
    for (const [H, HV, DK, DV] of [[2, 2, 128, 256], [2, 4, 64, 64], [1, 1, 64, 48]]) {
      const d: DeltaDims = { H: H!, HV: HV!, DK: DK!, DV: DV!, qkAct: 'none', qkNorm: 'l2', vSilu: false, negEig: false };
      const KD = d.H * d.DK, VD = d.HV * d.DV, C = 2 * KD + VD, p = t(VD + 2 * d.HV + C + 3, { name: 'proj' }), qkv = t(C, { name: 'qkv' });
      const x: DeltaOp = { ...args(d, true, true), q: qkv, k: qkv, v: qkv, a: p, b: p, off: { q: 0, k: KD, v: 2 * KD, a: VD, b: VD + d.HV },
        norm: { w: w([d.DV]), gate: p, gateOff: 0, eps: 1e-6 }, conv: { x: p, w: w([C, 1, 4]), state: state(3 * C), act: 'silu', xOff: VD + 2 * d.HV, siluFrom: 2 * KD } };
      const labels = (await built(`delta conv H=${H} HV=${HV} DK=${DK} DV=${DV}`, deltaRuleOp, x, 'fused_sg')).map(y => y.label);
      expect(labels).toEqual(H === HV ? ['delta_rule_fused_sg'] : ['short_conv_fused', 'delta_rule_fused_sg']);
      expect((await built(`delta conv fused H=${H} HV=${HV}`, deltaRuleOp, x, 'fused')).map(y => y.label)).toEqual(['short_conv_fused', 'delta_rule_fused']);
    }
  });

  test('head dims: DK, DV ∈ {16, 64, 128, 256, 512} combinations', async () => {
    step([50, 20], 2);
    for (const [DK, DV] of [[16, 16], [64, 128], [128, 64], [128, 128], [256, 512], [512, 256], [256, 48]]) {
      const d: DeltaDims = { H: 1, HV: 2, DK: DK!, DV: DV!, qkAct: 'none', qkNorm: 'l2', vSilu: false, negEig: false };
      await built(`delta recurrent DK=${DK} DV=${DV}`, deltaRuleOp, args(d, true, true), 'recurrent');
      await built(`delta chunk DK=${DK} DV=${DV}`, deltaRuleOp, args(d, true, true), 'chunk');
    }
  });
});
