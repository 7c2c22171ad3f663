// Every FLA_* environment knob that changes what fla computes or how: one table, validated on read. A bad value
// is a one-line UsageError naming the knob and what it allows. README.md "Knobs" documents the same table.
import { UsageError } from './errors.ts';

export interface Knob {
  /** allowed values; a number knob has `int` instead */
  values?: readonly string[];
  int?: { min: number; max: number; pow2?: boolean };
  doc: string;
}

export const KNOBS: Record<string, Knob> = {
  FLA_KERNEL_MATMUL: { values: ['gemv_vec', 'gemv_vec_wg', 'gemv', 'gemm', 'blocked', 'sgmat', 'sgmat_f16', 'f16split', 'f16single'], doc: 'force the matmul variant (default: gemv_vec for ≤ 16 rows, ≤ 64 on GPUs; past 16 rows sgmat where the adapter has f16 subgroup matrices (unless FLA_TENSOR_CORES=0); else gemm; blocked on CPU adapters). gemv_vec_wg: gemv_vec without subgroup operations; gemv: the older 4-row GEMV; sgmat_f16: one f16 product (faster, rtol 1e-3); f16split/f16single: the same arithmetic without subgroup matrices (shader-f16). An f16 variant also makes bf16 weights f16 at load' },
  FLA_KERNEL_MATMUL_MULTI: { values: ['fused', 'fused_wg', 'split'], doc: 'force how sibling projections run (default: fused, one register-tiled GEMV with the RMSNorm in its prologue and, for gate|up, the SwiGLU product in its epilogue, for ≤ 16 rows, on GPUs ≤ 64 where matmul would pick gemv_vec; fused_wg: fused reducing through workgroup memory (no subgroup operations); split: rms_norm + one matmul each + silu_mul)' },
  FLA_KERNEL_WKV7_LORA: { values: ['fused', 'fused_wg', 'split', 'chunk'], doc: 'force how the RWKV7 time-mix core runs its LoRA up-projections (default: fused, in the recurrence\'s prologue, subgroup reductions where the adapter has them, while every sequence of the step has ≤ 16 tokens; fused_wg: the same reducing through workgroup memory; past that chunk where wkv7 would chunk, else split; split: lora_up over every token, then wkv7_recurrent; chunk: lora_up, then the chunked wkv7)' },
  FLA_KERNEL_LN_SHIFT: { values: ['fused', 'fused_wg'], doc: 'force how RWKV7\'s LayerNorm + token shift reduces its row statistics (default: fused, subgroup reductions where the adapter has them; fused_wg: through workgroup memory)' },
  FLA_KERNEL_RWKV7_TMIX: { values: ['ln', 'ln_wg', 'ops'], doc: 'force how RWKV7\'s time-mix front (LayerNorm + token shift, the seven projections, the core) runs (default: ln where every sequence of the step has one token — the LayerNorm and token shift in the projection GEMV\'s prologue, the shift-state store in the core\'s epilogue, subgroup reductions where the adapter has them; ln_wg: the same through workgroup memory; ops: ln_shift, rwkv7_proj and wkv7_lora as each would run alone)' },
  FLA_KERNEL_RWKV7_PROJ: { values: ['fused', 'fused_wg', 'split'], doc: 'force how RWKV7\'s r, k, v and LoRA down-projections run (default: fused, one GEMV over all seven, each reading its own mix plane, for ≤ 16 rows, subgroup reductions where the adapter has them; fused_wg: the same reducing through workgroup memory; split: three matmuls and the LoRA GEMV)' },
  FLA_SGMAT_TILE: { values: ['w128x256', 'w256x128', 'w128', 'w128d', 'w128k64', 'w128c', 'w128x64', 'w64x128k64', 'q128', 'q128k64', 'q128x64', 'q128x64d', 'q128x64k64', 'q64x128', 'q64x128k64', 'q64', 'q64d', 'q64k64', 'q64k64d', 'n32', 'n32d', 'n32x64', 'n64', 'n64d', 'n64k64', 'n64x64', 'n64w8d'], doc: 'the tile of the subgroup-matrix GEMM (kernels/matmul/matmul_sgmat.ts SGMAT_TILES; default: by the output shape, see sgmatPlan)' },
  FLA_SGMAT_FLUSH_K: { int: { min: 64, max: 65536, pow2: true }, doc: 'K elements between restarts of the split subgroup-matrix GEMM\'s accumulators into its f32 sums (benchmarking; default 256: the tensor cores truncate inside a chain, so the error grows with it)' },
  FLA_SGMAT_SPLITK: { int: { min: 1, max: 64 }, doc: 'K slices of the subgroup-matrix GEMM (benchmarking; default: 1 where the tile gives ≥ 120 workgroups, else enough for 264 (up to 64 rows; 120 past that), each slice ≥ 256 of K, at most 8; rows of a step\'s last tokens never split)' },
  FLA_TENSOR_CORES: { values: ['0', '1'], doc: 'tensor cores: by default (and with 1) bf16 matrices become f16 at load and GEMMs of more than 16 rows run on subgroup matrices where the adapter has f16 ones (dawn.node on NVIDIA) — sgmat, each activation split into two f16 halves, f32-grade; decode GEMVs read the f16 weights (the same values). 0: the f32 path everywhere; 1 warns where the adapter has none' },
  FLA_WEBGPU: { values: ['auto', 'bun-webgpu', 'dawn'], doc: 'the WebGPU binding (default auto: bun-webgpu where it has a build, dawn.node where that offers more kernel features — shader-f16, subgroup matrices — or bun-webgpu fails to load)' },
  FLA_KERNEL_MATMUL_FP8: { values: ['gemv_vec', 'gemv_vec_wg', 'gemm'], doc: 'force the fp8-weight matmul variant (default: gemv_vec, 16-byte loads with subgroup reductions, for ≤ 8 rows, else gemm; gemv_vec_wg: gemv_vec reducing through workgroup memory)' },
  FLA_KERNEL_MATMUL_FP8_MULTI: { values: ['default', 'wg'], doc: 'force how sibling fp8 projections behind their RMSNorm reduce at decode (default: subgroup reductions where the adapter has them; wg: through workgroup memory, the portable path, for tests)' },
  FLA_MOE_DOWN_ROUTE: { values: ['gu', 'self'], doc: 'where the fused decode moe_down gets each token\'s top-k when the experts route themselves (default gu: moe_gu writes its selection beside its outputs; self: every moe_down workgroup selects again from the router logits, as before; benchmarking A/B, same sums)' },
  FLA_FP8_XS: { values: ['0', '1'], doc: 'the fp8 decode GEMVs (matmul_fp8 gemv_vec and its conv/seg/gate forms, and moe_gu) stage their input rows in workgroup memory once per workgroup, behind an RMSNorm (its weight applied) or a gate (the product formed), where rows × IN × 4 bytes fit 16 KiB (default 1); 0: every lane group reads them from the input (benchmarking A/B, same sums up to rounding)' },
  FLA_FP8_LANES: { int: { min: 1, max: 256, pow2: true }, doc: 'lanes per output row (split-K) of the fp8 decode GEMVs (matmul_fp8 gemv_vec and its forms) and of the fused expert GEMVs (moe_gu, moe_down), at most the workgroup, narrowed to a short row\'s units (benchmarking; default: from 32, widened while the grid is small)' },
  FLA_MOE_ROUTE: { values: ['lists', 'rounds'], doc: 'how the subgroup top-k (moe_topk_sg, and the fused decode experts routing themselves) selects up to 16 experts (default lists: every subgroup sorts its own top-k, then one merge: two barriers; rounds: one workgroup-wide round and barrier per expert, as before; benchmarking A/B, same selection)' },
  FLA_FP8_WG: { int: { min: 64, max: 1024, pow2: true }, doc: 'threads per workgroup of the fp8 decode GEMVs and of the fused expert GEMVs (moe_gu, moe_down), at most the adapter\'s (benchmarking; default 256)' },
  FLA_FP8_UNROLL: { int: { min: 1, max: 8, pow2: true }, doc: 'weight units each lane of the fp8 decode GEMVs keeps in flight (benchmarking; default 8 at one row where a lane has 8 units, else 4, 2 or 1 by rows held)' },
  FLA_KERNEL_MATMUL_FP8_CONV: { values: ['fused', 'split'], doc: 'force how an fp8 projection that feeds a short conv runs (Qwen3-Next\'s in_proj → conv1d; default: fused, the conv and its history update in the GEMV\'s epilogue, on decode steps of ≤ 8 sequences of one token; split: matmul_fp8_multi then short_conv)' },
  FLA_KERNEL_MATMUL_FP8_SEG: { values: ['fused', 'split'], doc: 'force how stacked fp8 projections with one output each run (Qwen3-Next\'s q|gate|k|v; default: fused, one GEMV with the RMSNorm in its prologue, for ≤ 8 rows; split: rms_norm, then one tiled GEMM per segment)' },
  FLA_KERNEL_MATMUL_FP8_GATED: { values: ['fused', 'split'], doc: 'force how an fp8 projection of a gated input runs (Qwen3-Next\'s o_proj of attention ⊙ σ(gate); default: fused, the product formed in the GEMV\'s loads, for ≤ 8 rows; split: mul, then matmul_fp8)' },
  FLA_KERNEL_MOE_TOPK: { values: ['subgroup', 'wg'], doc: 'force the MoE router top-k variant (default: subgroup where the adapter has subgroups — subgroup reductions, one barrier per selected expert; wg: workgroup-memory trees, portable)' },
  FLA_KERNEL_MOE_EXPERTS: { values: ['gemv', 'gemv_wg', 'grouped'], doc: 'force the experts variant (default: gemv, the fused gate·up and down GEMVs over the chosen and shared experts with subgroup reductions, for ≤ 8 tokens, else the grouped GEMM over expert segments; gemv_wg: gemv reducing through workgroup memory)' },
  FLA_KERNEL_DELTA_RULE: { values: ['fused', 'recurrent', 'chunk'], doc: 'force the delta-rule variant (default: chunk when a sequence of the step has more than 64 tokens on a GPU adapter; else fused — the recurrence with the output RMSNorm in its epilogue, one workgroup per value head — where the inputs are packed projections, the op carries the norm and the value head fits a workgroup; else recurrent, with the norm as its own rms_norm dispatch)' },
  FLA_KERNEL_SHORT_CONV: { values: ['fused', 'split'], doc: 'force the short-convolution variant (default: fused, the conv and its history update in one dispatch; split: short_conv then conv_store)' },
  FLA_KERNEL_GLA: { values: ['recurrent', 'chunk'], doc: 'force the GLA / linear-attention variant (same default as delta_rule; the normaliser always runs recurrent)' },
  FLA_KERNEL_WKV7: { values: ['recurrent', 'chunk'], doc: 'force the RWKV7 time-mix variant (default: chunk when a sequence of the step has more than 64 tokens on a GPU adapter; recurrent for decode and short steps); in RWKV7 models it picks wkv7_lora\'s path for steps past 16 tokens (recurrent: split, chunk: chunk)' },
  FLA_KERNEL_SDPA: { values: ['flash', 'flash_sgmat', 'single', 'split', 'split_wg'], doc: 'force the attention variant (default: split — split-K over the context plus a combine pass, subgroup reductions where the adapter has subgroups — when every sequence of the step has ≤ 16 tokens and the cache holds > 256 tokens; flash — query-row tiles × key tiles in workgroup memory, online softmax — for longer steps where its tiles fit; else single, one workgroup per query token and head; split_wg: split reducing through workgroup memory; flash_sgmat: flash on subgroup matrices (tensor cores), each operand split into f16 hi + lo, only where the adapter has f16 subgroup matrices, forced only: f32-grade on an H200, 3.9e-7 / 5.4e-7 max relative error at head dims 64 / 128 over 512 tokens, but slower there than flash, 107 vs 87 µs a llama-1b layer)' },
  FLA_KERNEL_ATTN_OUT: { values: ['fused', 'fused_wg', 'split'], doc: 'force how attention and its output projection run (default: split — sdpa, then matmul, each as chosen alone; fused: where sdpa runs split-K, its combine pass merged into the decode GEMV\'s prologue, two dispatches instead of three, slower on an H200 so far; fused_wg: fused reducing through workgroup memory, no subgroup operations)' },
  FLA_SDPA_BR: { int: { min: 16, max: 64, pow2: true }, doc: 'query rows (tokens × the query heads of a KV head) per workgroup of the flash attention variant at most (benchmarking; default 32, lowered to fit the workgroup memory)' },
  FLA_SDPA_TX: { int: { min: 4, max: 16, pow2: true }, doc: 'threads sharing each group of 4 query rows in the flash attention variant (benchmarking; default 16 where head dim / 4 is a multiple of 16, 8 where of 8, else 4; ignored where it does not divide head dim / 4)' },
  FLA_SDPA_SPLITS: { int: { min: 1, max: 256 }, doc: 'splits per query token of the split attention variant (benchmarking; default: enough for 512 workgroups on a GPU, each split at least two key blocks of the cache)' },
  FLA_KV_CACHE: { values: ['f32', 'f16', 'bf16'], doc: 'KV-cache storage (default f32; f16/bf16 pack two values per u32 word, halving the bytes a long-context decode step reads, at ~1e-3 relative error in the logits)' },
  FLA_GEMV_COLS: { int: { min: 1, max: 4, pow2: true }, doc: 'output columns each lane group of the decode GEMVs (matmul gemv_vec, matmul_multi fused) holds for 2+ batch rows, each x load serving all of them (benchmarking; default 1 at one row, 2 at two, 4 from three; 1 is the untiled GEMV of before; gate|up pairs take at least 2; lowered where the reduction would not fit workgroup memory)' },
  FLA_GEMV_ROWS: { int: { min: 1, max: 16, pow2: true }, doc: 'batch rows a lane of the decode GEMVs holds at most (benchmarking; default 16 for gemv_vec, 8 for matmul_multi fused: every weight is read once per block of this many rows)' },
  FLA_GEMV_LANES: { int: { min: 1, max: 256, pow2: true }, doc: 'lanes per lane group (split-K) of the decode GEMVs (benchmarking; default: from 32 (16 for gate|up pairs at one batch row), widened while the grid is small, narrowed to the units of a short row)' },
  FLA_GEMV_UNROLL: { int: { min: 1, max: 8, pow2: true }, doc: 'load units in flight per lane of the decode GEMVs (benchmarking; default 4 for ≤ 4 sums a lane, 2 for ≤ 16, else 1)' },
  FLA_GEMV_COMB_LANES: { int: { min: 1, max: 256, pow2: true }, doc: 'lanes per lane group of attn_out\'s fused GEMV at one batch row (benchmarking; default as the decode GEMVs): fewer lanes give a workgroup more output columns, so fewer workgroups each merge the attention partials' },
  FLA_GEMV_ROW_LOOP: { values: ['0', '1'], doc: '1: the decode GEMVs run a register tile\'s batch rows as a loop for the shader compiler to unroll instead of one explicit call per row (benchmarking A/B; same sums)' },
  FLA_DELTA_FUSED_RL: { int: { min: 1, max: 8, pow2: true }, doc: 'row lanes per value column of the fused delta-rule decode kernel (delta_rule_fused: each of RL threads holds DK / RL rows of the column, their sums meeting in workgroup memory; benchmarking; default: the most that keep DV · RL ≤ 512 threads and the adapter\'s limit; 1 is the one-thread-a-column kernel of before)' },
  FLA_DELTA_CHUNK_BV: { int: { min: 4, max: 64, pow2: true }, doc: 'value columns per workgroup of delta_chunk_state (benchmarking; default 8)' },
  FLA_RWKV7_LN_RPT: { int: { min: 1, max: 8, pow2: true }, doc: 'output rows per lane group of rwkv7_proj_ln, RWKV7\'s decode projection GEMV with the LayerNorm in its prologue (benchmarking; default 1: more rows, fewer workgroups, each building the mixed rows once)' },
  FLA_WKV7_CHUNK_BV: { int: { min: 4, max: 64, pow2: true }, doc: 'value columns per workgroup of wkv7_chunk_state (benchmarking; default 8, lowered to fit 24 KiB of workgroup memory)' },
  FLA_HOST_ARGMAX: { values: ['0', '1'], doc: '1: greedy decode reads the logits back and picks the token on the host instead of on the device (comparison; same tokens)' },
  FLA_HOST_SAMPLING: { values: ['0', '1'], doc: '1: temperature sampling (temperature > 0 or a repetition penalty) reads each step\'s logits back and samples on the host (src/runtime/sample.ts\'s Sampler and its RNG) instead of drawing on the device (kernels/sample/sample.ts: the same candidates, a different draw for the same seed); the CPU backend always samples on the host' },
  FLA_SPIN_MS: { int: { min: 0, max: 1000 }, doc: 'milliseconds to busy-poll a pending GPU readback before polling every 1 ms (default 0.5 on CPU adapters, 50 on GPUs)' },
  FLA_DAWN_SKIP_VALIDATION: { values: ['0', '1'], doc: '1: dawn.node skips WebGPU validation of commands (less CPU per dispatch; an invalid command is then undefined behaviour, not an error)' },
  FLA_DAWN_ROBUSTNESS: { values: ['0', '1'], doc: '0: dawn.node drops WebGPU robustness (Dawn\'s disable_robustness: no index clamping in the shaders, no Vulkan robustBufferAccess); every kernel stays in bounds by construction (docs/bounds.md). On an H200 (llama-1b, one A/B) batch-1 decode faster, prefill and batch-8 decode slower, so default 1. bun-webgpu always keeps it' },
  FLA_GUARD_BUFFERS: { values: ['0', '1'], doc: 'tests: 1 gives every storage and uniform buffer a trailing canary region, bindings that end at a buffer\'s end reach into it, and every canary is checked at each readback: a write past the end of a buffer is an error naming it, a read past it gets NaN (docs/bounds.md)' },
  FLA_PIPELINE: { values: ['0', '1'], doc: '0: greedy decode waits for each token before submitting the next step (default 1: the next step is submitted while the GPU runs the current one, its token fed on the device)' },
  FLA_NO_REPLAY: { values: ['0', '1'], doc: '1: run the model for every decode step instead of replaying the recorded dispatches' },
};

/** `FLA_KERNEL_<OP>`: the knob that forces a variant of op `name`. */
export function kernelKnob(op: string): string { return `FLA_KERNEL_${op.toUpperCase()}`; }

/** The validated value of knob `name`, or undefined when unset (or empty). */
export function knob(name: string, env: Record<string, string | undefined> = process.env): string | undefined {
  const spec = KNOBS[name];
  if (!spec) throw new Error(`knob ${name} is not in src/util/knobs.ts`);
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (spec.values && !spec.values.includes(v)) throw new UsageError(`${name}=${v}: expected one of ${spec.values.join(', ')}`);
  if (spec.int) {
    const n = Number(v), { min, max, pow2 } = spec.int;
    if (!/^\d+$/.test(v) || n < min || n > max || (pow2 && (n & (n - 1)) !== 0))
      throw new UsageError(`${name}=${v}: expected ${pow2 ? 'a power of two' : 'an integer'} in ${min}..${max}`);
  }
  return v;
}

/** Check every knob set in `env`, and that no FLA_KERNEL_* names an op without variants to choose from. */
export function checkKnobs(env: Record<string, string | undefined> = process.env): void {
  for (const name of Object.keys(env)) {
    if (name in KNOBS) knob(name, env);
    else if (name.startsWith('FLA_KERNEL_') && env[name])
      throw new UsageError(`${name}: unknown knob (known: ${Object.keys(KNOBS).filter(k => k.startsWith('FLA_KERNEL_')).join(', ')})`);
  }
}
