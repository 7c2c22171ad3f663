// Shared by the fla delta-rule families (gated_deltanet.ts, delta_net.ts): the fla block skeleton
// (spec-deltanet-attention-qwen3next.md §2) around a delta-rule token mixer (§3.3 / §4.3).
import { shortConv, convState } from '../../kernels/conv/short_conv.ts';
import { deltaRule, deltaState, type DeltaDims, type QkAct } from '../../kernels/delta/delta_rule.ts';
import { embed } from '../../kernels/embed/embed.ts';
import { matmul } from '../../kernels/matmul/matmul.ts';
import { rmsNorm } from '../../kernels/norm/rms_norm.ts';
import type { Backend, StateSpec, Tensor, Weight } from '../backend/backend.ts';
import { bool, int, num, optInt, str, unsupported } from '../load/config.ts';
import type { WeightReader } from '../load/weights.ts';
import type { ModelDims } from './arch.ts';
import { loadHead, loadMlp, logits, mlp, type MlpWeights } from './blocks.ts';

/** What the two families have in common once their configs are read. */
export interface DeltaModelConfig {
  hidden_size: number; num_hidden_layers: number; vocab_size: number; intermediate_size: number;
  norm_eps: number; tie_word_embeddings: boolean;
  /** mixer shape */
  H: number; HV: number; DK: number; DV: number;
  use_gate: boolean; use_short_conv: boolean; conv_size: number;
  /** gated (GDN) decay from a_proj/A_log/dt_bias */
  decay: boolean; use_beta: boolean; allow_neg_eigval: boolean;
  qk_activation: QkAct; qk_norm: 'l2' | 'sum';
}

type Json = Record<string, unknown>;

/** Fields of the fla skeleton (§2): sizes, MLP width, norms, embeddings, refused options. */
export function parseSkeleton(j: Json, where: string) {
  const d = int(j, 'hidden_size', where, 2048);
  if (j.attn !== undefined && j.attn !== null) unsupported(where, 'attn', j.attn, 'null (hybrid attention layers are not implemented)');
  if (j.attnres_block_size !== undefined && j.attnres_block_size !== null)
    unsupported(where, 'attnres_block_size', j.attnres_block_size, 'null (attention residuals are not implemented)');
  const act = str(j, 'hidden_act', where, 'swish');
  if (act !== 'swish') unsupported(where, 'hidden_act', act, '"swish"');
  const I = optInt(j, 'intermediate_size', where) ?? 256 * Math.ceil(Math.trunc(d * num(j, 'hidden_ratio', where, 4) * 2 / 3) / 256);
  return {
    hidden_size: d, num_hidden_layers: int(j, 'num_hidden_layers', where, 24), vocab_size: int(j, 'vocab_size', where, 32000),
    intermediate_size: I, norm_eps: num(j, 'norm_eps', where, 1e-6), tie_word_embeddings: bool(j, 'tie_word_embeddings', where, false),
  };
}

export function deltaDims(c: DeltaModelConfig): ModelDims {
  return { hidden: c.hidden_size, vocab: c.vocab_size, maxContext: null };
}

const mixerDims = (c: DeltaModelConfig): DeltaDims => ({
  H: c.H, HV: c.HV, DK: c.DK, DV: c.DV, qkNorm: c.qk_norm,
  // with the short conv, SiLU on q/k happens in the conv; other activations come after it (§4.3 step 3)
  qkAct: c.use_short_conv && c.qk_activation === 'silu' ? 'none' : c.qk_activation,
  vSilu: !c.use_short_conv, negEig: c.allow_neg_eigval,
});

export function deltaStates(c: DeltaModelConfig): StateSpec[] {
  const out: StateSpec[] = [];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    if (c.use_short_conv) {
      out.push(convState(`${l}.conv_q`, c.H * c.DK, c.conv_size), convState(`${l}.conv_k`, c.H * c.DK, c.conv_size),
        convState(`${l}.conv_v`, c.HV * c.DV, c.conv_size));
    }
    out.push(deltaState(`${l}.S`, c));
  }
  return out;
}

interface Layer {
  attn_norm: Weight; mlp_norm: Weight;
  q: Weight; k: Weight; v: Weight; a: Weight | null; gp: Weight | null; b: Weight | null; g: Weight | null;
  q_conv: Weight | null; k_conv: Weight | null; v_conv: Weight | null; o_norm: Weight; o: Weight;
  mlp: MlpWeights;
}
export interface DeltaWeights { emb: Weight; layers: Layer[]; norm: Weight; head: Weight }

export function loadDelta(c: DeltaModelConfig, r: WeightReader, o: Backend): DeltaWeights {
  const d = c.hidden_size, V = c.vocab_size, I = c.intermediate_size, KD = c.H * c.DK, VD = c.HV * c.DV, W = c.conv_size;
  const mat = (n: string, s: number[]) => o.weight(n, r.read(n, s), true);
  const vec = (n: string, s: number[]) => o.weight(n, r.read(n, s), false);
  r.ignore(n => /^model\.layers\.\d+\.attn\.D$/.test(n));   // unused parameter of checkpoints before fla 834989cc (§11.16)
  const layers: Layer[] = [];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`, a = `${p}attn.`;
    layers.push({
      attn_norm: vec(`${p}attn_norm.weight`, [d]), mlp_norm: vec(`${p}mlp_norm.weight`, [d]),
      q: mat(`${a}q_proj.weight`, [KD, d]), k: mat(`${a}k_proj.weight`, [KD, d]), v: mat(`${a}v_proj.weight`, [VD, d]),
      a: c.decay ? mat(`${a}a_proj.weight`, [c.HV, d]) : null,
      gp: c.decay ? o.weight(`${a}A_log|dt_bias`, r.stack([`${a}A_log`, `${a}dt_bias`], c.HV), false) : null,
      b: c.use_beta ? mat(`${a}b_proj.weight`, [c.HV, d]) : null,
      g: c.use_gate ? mat(`${a}g_proj.weight`, [VD, d]) : null,
      q_conv: c.use_short_conv ? vec(`${a}q_conv1d.weight`, [KD, 1, W]) : null,
      k_conv: c.use_short_conv ? vec(`${a}k_conv1d.weight`, [KD, 1, W]) : null,
      v_conv: c.use_short_conv ? vec(`${a}v_conv1d.weight`, [VD, 1, W]) : null,
      o_norm: vec(`${a}o_norm.weight`, [c.DV]), o: mat(`${a}o_proj.weight`, [d, VD]),
      mlp: loadMlp(r, o, `${p}mlp`, d, I),
    });
  }
  const emb = mat('model.embeddings.weight', [V, d]);
  return { emb, layers, norm: vec('model.norm.weight', [d]), head: loadHead(r, o, emb, c.tie_word_embeddings, V, d) };
}

export async function forwardDelta(o: Backend, w: DeltaWeights, c: DeltaModelConfig): Promise<Tensor> {
  const d = c.hidden_size, KD = c.H * c.DK, VD = c.HV * c.DV, eps = c.norm_eps;
  const md = mixerDims(c);
  const x = o.act('x', d), h = o.act('h', d);
  const qt = o.act('q_in', KD), kt = o.act('k_in', KD), vt = o.act('v_in', VD);
  const qc = o.act('q', KD), kc = o.act('k', KD), vc = o.act('v', VD);
  const at = o.act('a', c.HV), bt = o.act('b', c.HV), z = o.act('z', VD), y = o.act('y', VD), yn = o.act('yn', VD);
  await embed(o, w.emb, x);
  for (let l = 0; l < w.layers.length; l++) {
    const L = w.layers[l]!;
    await rmsNorm(o, x, L.attn_norm, h, { eps });
    await matmul(o, h, L.q, null, 'none', qt);
    await matmul(o, h, L.k, null, 'none', kt);
    await matmul(o, h, L.v, null, 'none', vt);
    if (L.a) await matmul(o, h, L.a, null, 'none', at);
    if (L.b) await matmul(o, h, L.b, null, 'none', bt);
    let q = qt, k = kt, v = vt;
    if (c.use_short_conv) {
      const qkAct = c.qk_activation === 'silu' ? 'silu' : 'none';
      await shortConv(o, qt, L.q_conv!, o.state(`${l}.conv_q`), qc, qkAct);
      await shortConv(o, kt, L.k_conv!, o.state(`${l}.conv_k`), kc, qkAct);
      await shortConv(o, vt, L.v_conv!, o.state(`${l}.conv_v`), vc, 'silu');
      q = qc; k = kc; v = vc;
    }
    await deltaRule(o, { q, k, v, a: L.a ? at : null, gp: L.gp, b: L.b ? bt : null, state: o.state(`${l}.S`), out: y, d: md });
    if (L.g) await matmul(o, h, L.g, null, 'none', z);
    await rmsNorm(o, y, L.o_norm, yn, { eps, headDim: c.DV, gate: L.g ? z : null });
    await matmul(o, yn, L.o, null, 'none', x, true);
    await rmsNorm(o, x, L.mlp_norm, h, { eps });
    await mlp(o, L.mlp, h, x);
  }
  return logits(o, x, w.head, (xk, xn) => rmsNorm(o, xk, w.norm, xn, { eps }));
}
