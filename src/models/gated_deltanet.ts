// fla Gated DeltaNet (`gated_deltanet`, GatedDeltaNetForCausalLM): spec-deltanet-attention-qwen3next.md §3.
// The block skeleton and mixer are in delta_common.ts.
import { bool, int, num, optInt } from '../load/config.ts';
import { unsupported } from '../load/config.ts';
import { defineArch } from './arch.ts';
import { deltaDims, deltaStates, forwardDelta, loadDelta, parseSkeleton, type DeltaModelConfig, type DeltaWeights } from './delta_common.ts';

export interface GatedDeltaNetConfig extends DeltaModelConfig {
  num_heads: number; num_v_heads: number; head_dim: number; expand_v: number;
}

export default defineArch<GatedDeltaNetConfig, DeltaWeights>({
  modelTypes: ['gated_deltanet'],

  parseConfig(j, where) {
    const sk = parseSkeleton(j, where);
    const H = int(j, 'num_heads', where, 6);
    const HV = optInt(j, 'num_v_heads', where) ?? H;
    if (HV % H !== 0) unsupported(where, 'num_v_heads', HV, `a multiple of num_heads = ${H}`);
    const DK = int(j, 'head_dim', where, 256);
    const expand_v = num(j, 'expand_v', where, 2);
    const DV = DK * expand_v;
    if (!Number.isInteger(DV)) unsupported(where, 'expand_v', expand_v, `a value making head_dim·expand_v an integer`);
    if (DK % 16 !== 0 || DK > 512) unsupported(where, 'head_dim', DK, 'a multiple of 16 up to 512');
    if (DV % 16 !== 0) unsupported(where, 'expand_v', expand_v, 'a value making head_dim·expand_v a multiple of 16');
    const conv = bool(j, 'use_short_conv', where, true);
    const W = int(j, 'conv_size', where, 4, 2);
    if (conv && W > 17) unsupported(where, 'conv_size', W, '2..17');
    return {
      ...sk, H, HV, DK, DV, num_heads: H, num_v_heads: HV, head_dim: DK, expand_v,
      use_gate: bool(j, 'use_gate', where, true), use_short_conv: conv, conv_size: W,
      decay: true, use_beta: true, allow_neg_eigval: bool(j, 'allow_neg_eigval', where, false),
      qk_activation: 'silu', qk_norm: 'l2',
    };
  },

  dims: deltaDims,
  state: deltaStates,
  load: loadDelta,
  forward: forwardDelta,
});
