// The static list of architectures (bun build --compile must see every module): one import per model_type.
import { UnsupportedModelError } from '../util/errors.ts';
import type { Arch } from './arch.ts';
import abc from './abc.ts';
import deltaNet from './delta_net.ts';
import gatedDeltanet from './gated_deltanet.ts';
import gla from './gla.ts';
import linear_attn from './linear_attn.ts';
import llama from './llama.ts';
import qwen3Moe from './qwen3_moe.ts';
import qwen3Next from './qwen3_next.ts';
import rwkv7 from './rwkv7.ts';
import transformer from './transformer.ts';

export const ARCHS: Arch[] = [llama, rwkv7, transformer, gla, gatedDeltanet, deltaNet, linear_attn, abc, qwen3Next, qwen3Moe];

export function supportedModelTypes(): string[] {
  return ARCHS.flatMap(a => a.modelTypes).sort();
}

export function getArch(modelType: unknown, where: string): Arch {
  const a = ARCHS.find(x => x.modelTypes.includes(String(modelType)));
  if (!a) throw new UnsupportedModelError(`${where}: model_type ${JSON.stringify(modelType ?? null)} is not supported (supported: ${supportedModelTypes().join(', ')})`);
  return a;
}
