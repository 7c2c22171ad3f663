// Every op, in one list: tests walk it (every variant compiles, every WGSL's @bindings match its kernel's list,
// every op with choices has a documented FLA_KERNEL_<OP> knob). A new op or fused variant: write its
// <op>.wgsl, <op>.ts (an `op({...})` declaration) and <op>.ref.ts, then add it here.
import type { Op } from '../src/backend/op.ts';
import { abcOp } from './abc/abc.ts';
import { ropeOp } from './attention/rope.ts';
import { ropeKvOp } from './attention/rope_kv.ts';
import { kvStoreOp, sdpaOp } from './attention/sdpa.ts';
import { shortConvOp } from './conv/short_conv.ts';
import { deltaRuleOp } from './delta/delta_rule.ts';
import { mulOp } from './elementwise/mul.ts';
import { siluMulOp } from './elementwise/silu_mul.ts';
import { embedOp, gatherRowsOp } from './embed/embed.ts';
import { glaOp } from './gla/gla.ts';
import { featureMapOp } from './linear_attn/feature_map.ts';
import { matmulOp } from './matmul/matmul.ts';
import { matmulFp8ConvOp, matmulFp8GatedOp, matmulFp8Op, matmulFp8SegOp } from './matmul/matmul_fp8.ts';
import { moeExpertsOp } from './moe/moe_experts.ts';
import { moeRouteOp } from './moe/moe_route.ts';
import { moeTopkOp } from './moe/moe_topk.ts';
import { layerNormOp } from './norm/layer_norm.ts';
import { rmsNormOp } from './norm/rms_norm.ts';
import { shiftStoreOp, tokenShiftOp } from './rwkv7/token_shift.ts';
import { lnShiftOp } from './rwkv7/ln_shift.ts';
import { wkv7Op } from './rwkv7/wkv7.ts';
import { wkv7LoraOp } from './rwkv7/wkv7_lora.ts';
import { rwkv7ProjOp } from './rwkv7/rwkv7_proj.ts';
import { rwkv7TmixOp } from './rwkv7/rwkv7_tmix.ts';
import { rwkv7CmixOp } from './rwkv7/rwkv7_cmix.ts';
import { argmaxOp } from './sample/argmax.ts';
import { sampleOp } from './sample/sample.ts';
import { matmulMultiOp } from './matmul/matmul_gemv_multi.ts';
import { qkvRopeOp } from './matmul/matmul_gemv_rope.ts';

export const OPS: readonly Op<any>[] = [
  abcOp, ropeOp, kvStoreOp, sdpaOp, shortConvOp, deltaRuleOp, mulOp, siluMulOp, embedOp, gatherRowsOp, glaOp,
  featureMapOp, matmulOp, matmulFp8Op, matmulFp8ConvOp, matmulFp8SegOp, matmulFp8GatedOp, moeRouteOp, moeTopkOp, moeExpertsOp, layerNormOp, rmsNormOp, tokenShiftOp, shiftStoreOp, lnShiftOp, wkv7Op, wkv7LoraOp, rwkv7ProjOp, rwkv7TmixOp, rwkv7CmixOp,
  argmaxOp, matmulMultiOp, sampleOp,
  ropeKvOp, qkvRopeOp,
];
