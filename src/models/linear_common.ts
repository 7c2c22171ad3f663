// Pieces shared by fla's GLA, ABC and linear-attention models (spec-rwkv7-gla-abc.md §2.3 step 10, §0.2;
// spec-deltanet-attention-qwen3next.md §2): config checks common to the fla skeleton, the SwiGLU MLP, and the
// embedding → … → final RMSNorm → lm_head frame.
import { embed } from '../../kernels/embed/embed.ts';
import { rmsNorm } from '../../kernels/norm/rms_norm.ts';
import type { Backend, Tensor, Weight } from '../backend/backend.ts';
import { int, num, optInt, str, unsupported } from '../load/config.ts';
import type { WeightReader } from '../load/weights.ts';
import type { HeadArgmax } from './arch.ts';
import { headRmsNorm, loadHead, logits, loadMlp as loadSwiGlu, mlp as swiGlu, type MlpWeights } from './blocks.ts';

type Json = Record<string, unknown>;

/** Reject the options of the fla skeleton we do not implement (hybrid attention layers, attention residuals, non-SwiGLU MLP). */
export function checkSkeleton(j: Json, where: string): void {
  if (j.attn !== undefined && j.attn !== null) unsupported(where, 'attn', j.attn, 'null (hybrid attention layers are not implemented)');
  if (j.attnres_block_size !== undefined && j.attnres_block_size !== null)
    unsupported(where, 'attnres_block_size', j.attnres_block_size, 'null');
  const act = str(j, 'hidden_act', where, 'swish');
  if (act !== 'swish' && act !== 'silu') unsupported(where, 'hidden_act', act, '"swish"');
}

/** MLP width: intermediate_size, else 256·ceil(int(C·hidden_ratio·2/3)/256). */
export function mlpWidth(j: Json, where: string, C: number): number {
  const I = optInt(j, 'intermediate_size', where);
  if (I !== null) return I;
  return 256 * Math.ceil(Math.trunc(C * num(j, 'hidden_ratio', where, 4) * 2 / 3) / 256);
}

/** int(C·expand) and its split over heads (a divisor check naming the field). */
export function expandDim(j: Json, key: string, def: number, C: number, H: number, where: string): { total: number; head: number } {
  const total = Math.trunc(C * num(j, key, where, def));
  if (total <= 0 || total % H !== 0) unsupported(where, key, j[key] ?? def, `a value making int(hidden_size·${key}) a positive multiple of num_heads`);
  return { total, head: total / H };
}

export interface Frame { emb: Weight; norm: Weight; head: Weight }
export interface Mlp { norm: Weight; mlp: MlpWeights }

export function loadFrame(r: WeightReader, o: Backend, C: number, V: number, tie: boolean): Frame {
  const emb = o.weight('model.embeddings.weight', r.read('model.embeddings.weight', [V, C]), true);
  return { emb, norm: o.weight('model.norm.weight', r.read('model.norm.weight', [C]), false), head: loadHead(r, o, emb, tie, V, C) };
}

export function loadMlp(r: WeightReader, o: Backend, l: number, C: number, I: number): Mlp {
  const p = `model.layers.${l}.`;
  return { norm: o.weight(`${p}mlp_norm.weight`, r.read(`${p}mlp_norm.weight`, [C]), false), mlp: loadSwiGlu(r, o, `${p}mlp`, C, I) };
}

/** x += down(silu(gate(h)) ⊙ up(h)), h = RMSNorm(x). */
export async function mlpBlock(o: Backend, w: Mlp, x: Tensor, eps: number): Promise<void> {
  const h = o.act('h', x.cols);
  await swiGlu(o, w.mlp, h, x, { w: w.norm, eps });   // the norm runs inside gate|up
}

/** x = embeddings[ids]. */
export async function embedTokens(o: Backend, f: Frame, C: number): Promise<Tensor> {
  const x = o.act('x', C);
  await embed(o, f.emb, x);
  return x;
}

/** logits of the kept rows: lm_head(RMSNorm(x)), the norm in the head GEMV's prologue (headRmsNorm). */
export function logitsOf(o: Backend, f: Frame, x: Tensor, eps: number, pick?: HeadArgmax): Promise<Tensor> {
  return logits(o, x, f.head, headRmsNorm(o, f.norm, eps), pick);
}
