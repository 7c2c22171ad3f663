// fla DeltaNet (`delta_net`, DeltaNetForCausalLM): spec-deltanet-attention-qwen3next.md §4.
// The block skeleton and mixer are in delta_common.ts.
import { bool, int, num, str, unsupported } from '../load/config.ts';
import { defineArch } from './arch.ts';
import { deltaDims, deltaStates, forwardDelta, loadDelta, parseSkeleton, type DeltaModelConfig, type DeltaWeights } from './delta_common.ts';
import type { QkAct } from '../../kernels/delta/delta_rule.ts';

export interface DeltaNetConfig extends DeltaModelConfig { num_heads: number; expand_k: number; expand_v: number }

export default defineArch<DeltaNetConfig, DeltaWeights>({
  modelTypes: ['delta_net'],

  parseConfig(j, where) {
    const sk = parseSkeleton(j, where);
    const d = sk.hidden_size;
    const H = int(j, 'num_heads', where, 16);
    const expand_k = num(j, 'expand_k', where, 1), expand_v = num(j, 'expand_v', where, 1);
    const KD = Math.trunc(d * expand_k), VD = Math.trunc(d * expand_v);
    if (KD % H !== 0) unsupported(where, 'expand_k', expand_k, `a value making int(hidden_size·expand_k) divisible by num_heads = ${H}`);
    if (VD % H !== 0) unsupported(where, 'expand_v', expand_v, `a value making int(hidden_size·expand_v) divisible by num_heads = ${H}`);
    const DK = KD / H, DV = VD / H;
    if (DK % 16 !== 0 || DK > 512) unsupported(where, 'expand_k', expand_k, 'a key head dim that is a multiple of 16 up to 512');
    if (DV % 16 !== 0) unsupported(where, 'expand_v', expand_v, 'a value head dim that is a multiple of 16');
    const qk_activation = str(j, 'qk_activation', where, 'silu');
    if (!['silu', 'relu', 'elu', 'identity'].includes(qk_activation)) unsupported(where, 'qk_activation', qk_activation, '"silu", "relu", "elu", "identity"');
    const qk_norm = str(j, 'qk_norm', where, 'l2');
    if (qk_norm !== 'l2' && qk_norm !== 'sum') unsupported(where, 'qk_norm', qk_norm, '"l2", "sum"');
    const conv = bool(j, 'use_short_conv', where, true);
    const W = int(j, 'conv_size', where, 4, 2);
    if (conv && W > 17) unsupported(where, 'conv_size', W, '2..17');
    return {
      ...sk, H, HV: H, DK, DV, num_heads: H, expand_k, expand_v,
      use_gate: bool(j, 'use_gate', where, false), use_short_conv: conv, conv_size: W,
      decay: false, use_beta: bool(j, 'use_beta', where, true), allow_neg_eigval: bool(j, 'allow_neg_eigval', where, false),
      qk_activation: (qk_activation === 'identity' ? 'none' : qk_activation) as QkAct, qk_norm,
    };
  },

  dims: deltaDims,
  state: deltaStates,
  load: loadDelta,
  forward: forwardDelta,
});
