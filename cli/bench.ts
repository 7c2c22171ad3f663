// fla bench: llama-bench style speed figures (pp, tg, TTFT, batched decode) with mean ± std, the roofline beside
// each, and a per-kernel table from GPU timestamps.
import { GpuBackend } from '../src/backend/gpu.ts';
import { knob } from '../src/util/knobs.ts';
import { ceilings, decodeSpeed, decodeStepProfile, kernelProfile, kvCacheDtype, kvStates, longDecodeSpeed, promptSpeed, stat, type Ceilings, type KernelRow, type Stat } from '../src/bench/harness.ts';
import { syntheticModel } from '../src/bench/synthetic.ts';
import { expertTally } from '../kernels/moe/moe_experts.ts';
import { loadWeights, inspectModel } from '../src/runtime/model.ts';
import { Engine } from '../src/runtime/engine.ts';
import { CpuBackend } from '../src/backend/cpu.ts';
import { openBackend, parseDevice, resolveModel } from '../src/runtime/open.ts';
import { UsageError } from '../src/util/errors.ts';
import { commit } from '../src/util/version.ts';
import { HUB_OPTIONS, hubOptions } from './hub.ts';
import { optInt, rejectUnknown } from './options.ts';

/** A result against its upper bound: `fraction` of `bound` tokens/s (never above 1: a bound below the result was an underestimate). */
export interface Roofline { fraction: number; bound: number; kind: string; capped: boolean }
interface Row { test: string; value: Stat; unit: string; roofline: Roofline | null }

export function roofline(v: number, up: number | null, kind: string): Roofline | null {
  if (!up || !Number.isFinite(up) || !(v >= 0)) return null;
  return { fraction: Math.min(1, v / up), bound: up, kind, capped: v > up };
}

export function formatRoofline(r: Roofline | null): string {
  if (!r) return '–';
  return r.capped ? `at or above the estimated ${fmt(r.bound)} t/s (${r.kind}; the estimate is low here)` : `${(100 * r.fraction).toFixed(1)}% of ${fmt(r.bound)} t/s (${r.kind})`;
}

/** "12.3 ± 0.4" over several repetitions; the mean alone for one. */
export function formatStat(s: Stat): string {
  return s.n > 1 ? `${fmt(s.mean)} ± ${fmt(s.std)}` : fmt(s.mean);
}

export async function benchCommand(modelArg: string | undefined, opts: Record<string, any>): Promise<number> {
  rejectUnknown(opts, ['synthetic', 'p', 'promptTokens', 'n', 'genTokens', 'b', 'batch', 'r', 'reps', 'json', 'device', 'profile', 'dtype', 'ctx', ...HUB_OPTIONS]);
  const dtype = String(opts.dtype ?? 'bf16');
  if (dtype !== 'bf16' && dtype !== 'fp8') throw new UsageError(`--dtype ${dtype}: expected bf16 or fp8`);
  if (opts.dtype !== undefined && opts.synthetic === undefined) throw new UsageError('--dtype applies to --synthetic shapes (a checkpoint has its own dtype)');
  const p = optInt(opts.promptTokens, '--prompt-tokens', 512, 1);
  const n = optInt(opts.genTokens, '--gen-tokens', 128, 1);
  const reps = optInt(opts.reps, '--reps', 3, 1, 100);
  const longCtx = opts.ctx === undefined ? null : optInt(opts.ctx, '--ctx', 0, 1, 1 << 20);
  const batches = String(opts.batch ?? '1').split(',').map(s => optInt(s, '--batch', 1, 1, 4096));
  if (opts.synthetic !== undefined && modelArg !== undefined) throw new UsageError('give a model or --synthetic NAME, not both');
  const hub = hubOptions(opts);
  const dir = opts.synthetic !== undefined ? null : await resolveModel(modelArg, hub);   // a hub id is pulled as fla run does
  const backend = await openBackend(parseDevice(opts.device));
  try {
    const log = (s: string) => process.stderr.write(s + '\n');
    const model = opts.synthetic !== undefined ? syntheticModel(String(opts.synthetic), backend, dtype) : loadWeights(inspectModel(dir!), backend);
    const gpu = backend instanceof GpuBackend ? backend : null;
    if (gpu) await gpu.settle();
    const maxB = Math.max(...batches);
    const weightBytes = gpu ? gpu.uploadedBytes : backend instanceof CpuBackend ? backend.uploadedBytes : 0;   // the model's alone, before the ceiling's matmul weight
    log(`measuring ceilings …`);
    const ceil: Ceilings | null = gpu ? await ceilings(gpu) : null;   // before the engine: it replaces the state slots
    const engine = new Engine(model, Math.max(maxB, 1), Math.max(p, 512), Math.max(p, longCtx ?? 0) + n + 16);
    if (longCtx !== null && !kvStates(engine).length) throw new UsageError(`--ctx ${longCtx}: ${model.config.model_type} has no KV cache (its recurrent layers are O(1) per token)`);
    // the long decode feeds n + 1 tokens after the --ctx cached ones: they must fit the model's context
    if (longCtx !== null && longCtx + n + 1 > engine.ctx)
      throw new UsageError(`--ctx ${longCtx}: with --gen-tokens ${n} the decode needs ${longCtx + n + 1} positions, more than the model's context of ${engine.ctx} tokens (use --ctx ${engine.ctx - n - 1} at most)`);
    const stateBytes = model.arch.state(model.cfg, engine.ctx).reduce((a, sp) => a + 4 * sp.cols, 0) * Math.max(maxB, 1);
    log(`state: ${(stateBytes / 2 ** 30).toFixed(2)} GiB for ${Math.max(maxB, 1)} sequence(s) of a ${engine.ctx}-token context; weights ${(weightBytes / 2 ** 30).toFixed(2)} GiB`);
    const rows: Row[] = [];
    // MoE: a token reads only its k routed experts of each layer (and the shared ones), not all E
    const ex = expertTally.get(backend), K = Number(model.cfg?.num_experts_per_tok ?? 0);
    const readBytes = ex && K ? weightBytes - ex.bytes * (1 - K / ex.E) : weightBytes;
    const perWeight = dtype === 'fp8' ? 1 : 2;
    if (readBytes !== weightBytes) log(`a token reads ${(readBytes / 2 ** 30).toFixed(2)} GiB of the ${(weightBytes / 2 ** 30).toFixed(2)} GiB of weights (top-${K} of ${ex!.E} experts)`);
    const upTg = ceil && readBytes ? ceil.gbs * 1e9 / readBytes : null;               // tokens/s if the read weights stream at copy bandwidth
    const peak = ceil ? (gpu?.f16Weights && ceil.tc && 'split' in ceil.tc ? ceil.tc.split : ceil.tflops) : 0;   // the GEMM prefill runs on
    const upPp = ceil && readBytes ? peak * 1e12 / (2 * readBytes / perWeight) : null; // tokens/s at peak, 2 FLOPs per weight read
    const frac = roofline;
    log(`warm-up …`);
    // every shape timed below is compiled here first: a prompt of the full length (its GEMM tiles), and decode at each batch
    await promptSpeed(engine, p, 0);
    for (const b of new Set([1, ...batches])) await decodeSpeed(engine, b, 4, 0);
    log(`pp${p} …`);
    const pp: number[] = [], ttft: number[] = [];
    for (let r = 0; r < reps; r++) { const s = await promptSpeed(engine, p, r + 1); pp.push(s.tps); ttft.push(s.ttftMs); }
    rows.push({ test: `pp${p}`, value: stat(pp), unit: 't/s', roofline: frac(stat(pp).mean, upPp, 'compute') });
    rows.push({ test: `ttft (pp${p})`, value: stat(ttft), unit: 'ms', roofline: null });
    log(`tg${n} …`);
    const tg: number[] = [];
    for (let r = 0; r < reps; r++) tg.push(await decodeSpeed(engine, 1, n, r + 1));
    rows.push({ test: `tg${n}`, value: stat(tg), unit: 't/s', roofline: frac(stat(tg).mean, upTg, 'bandwidth') });
    for (const b of batches.filter(b => b > 1)) {
      log(`decode batch ${b} …`);
      const xs: number[] = [];
      for (let r = 0; r < reps; r++) xs.push(await decodeSpeed(engine, b, Math.min(n, 32), r + 1));
      rows.push({ test: `tg b=${b}`, value: stat(xs), unit: 't/s', roofline: frac(stat(xs).mean, upTg ? upTg * b : null, 'bandwidth, weights read once per step') });
    }
    // a decode step at context C reads the weights and C rows of every layer's K and V
    const kvBytes = (C: number) => kvStates(engine).reduce((a, s) => a + s.bytes * Math.min(1, (C + 1) / engine.ctx), 0);
    if (longCtx !== null) {
      log(`tg${n} at ${longCtx} tokens of context …`);
      const xs: number[] = [];
      for (let r = 0; r < reps; r++) xs.push(await longDecodeSpeed(engine, longCtx, n, r + 1));
      const up = ceil && weightBytes ? ceil.gbs * 1e9 / (weightBytes + kvBytes(longCtx)) : null;
      rows.push({ test: `tg${n} @ ctx ${longCtx}`, value: stat(xs), unit: 't/s', roofline: frac(stat(xs).mean, up, `bandwidth, weights + ${(kvBytes(longCtx) / 2 ** 20).toFixed(0)} MiB of KV per token`) });
    }
    const kernels: Record<string, KernelRow[]> = {};
    if (gpu?.gpu.timestamps && opts.profile !== false) {
      for (const b of new Set([1, ...batches])) kernels[`decode step (batch ${b})`] = await decodeStepProfile(engine, ceil, b);
      if (longCtx !== null) kernels[`decode step (batch 1, ${longCtx} tokens of context)`] = await kernelProfile(engine, () => longDecodeSpeed(engine, longCtx, 1, 9, true), ceil);
      kernels[`prefill (${p} tokens)`] = await kernelProfile(engine, () => promptSpeed(engine, p, 9), ceil);
    }
    const header = {
      device: backend.name, driver: gpu?.gpu.summary.name ?? 'cpu', backend: gpu?.gpu.summary.backend ?? 'cpu',
      binding: gpu ? `${gpu.gpu.summary.binding} ${gpu.gpu.summary.bindingVersion}` : null, robustness: gpu?.gpu.summary.robust ?? null,
      model: opts.synthetic !== undefined ? `synthetic ${opts.synthetic}` : model.dir, model_type: String(model.config.model_type),
      dtype: `${opts.synthetic !== undefined ? dtype : 'checkpoint'} weights${gpu?.f16Weights ? ` (f16 from bf16), ${f16GemmLabel()}` : ', f32 compute'}, ${kvCacheDtype()} KV cache`, weight_bytes: weightBytes, read_bytes_per_token: readBytes, ctx: engine.ctx, state_bytes: stateBytes, commit: commit(), date: new Date().toISOString().slice(0, 10),
      ceilings: ceil ? { copy_gbs: round(ceil.gbs), matmul_tflops: round(ceil.tflops, 4), tc_split_tflops: ceil.tc && 'split' in ceil.tc ? round(ceil.tc.split, 4) : null, tc_f16_tflops: ceil.tc && 'split' in ceil.tc ? round(ceil.tc.single, 4) : null, tc_error: ceil.tc && 'error' in ceil.tc ? ceil.tc.error : undefined } : null,
      // dispatches one greedy batch-1 decode step records (the model's ops and the device argmax)
      dispatches_per_token: engine.recordedDispatches(1, 1, 1, 'argmax'),
      // pipelined decode steps a submit (FLA_STEPS_PER_SUBMIT; 1 on the CPU backend)
      steps_per_submit: engine.stepsPerSubmit,
    };
    if (opts.json) {
      process.stdout.write(JSON.stringify({ ...header, results: rows.map(r => ({
        test: r.test, mean: round(r.value.mean), std: r.value.n > 1 ? round(r.value.std) : null, n: r.value.n, unit: r.unit,
        roofline: r.roofline && { fraction: round(r.roofline.fraction, 4), bound_tokens_per_s: round(r.roofline.bound, 2), kind: r.roofline.kind, capped: r.roofline.capped },
      })), kernels }) + '\n');
      return 0;
    }
    const out: string[] = [];
    out.push(`device: ${header.device} · model: ${header.model} (${header.model_type}, ${(weightBytes / 2 ** 20).toFixed(1)} MiB of weights) · ${header.dtype} · commit ${header.commit} · ${header.date}`);
    if (ceil) out.push(`measured ceilings: copy ${fmt(ceil.gbs)} GB/s, f32 matmul ${ceil.tflops >= 1 ? ceil.tflops.toFixed(2) + " TFLOP/s" : fmt(ceil.tflops * 1000) + " GFLOP/s"}`
      + `, tensor cores 4096³ ${!ceil.tc ? '– (no f16 subgroup matrices)' : 'error' in ceil.tc ? `failed (${ceil.tc.error})` : `${ceil.tc.split.toFixed(1)} TFLOP/s f32-grade (sgmat), ${ceil.tc.single.toFixed(1)} TFLOP/s f16 (sgmat_f16)`}`);
    out.push('', '| test | result | roofline |', '|---|---|---|');
    for (const r of rows) out.push(`| ${r.test} | ${formatStat(r.value)} ${r.unit} | ${formatRoofline(r.roofline)} |`);
    for (const [what, ks] of Object.entries(kernels)) {
      out.push('', `kernels, ${what}:`, '', '| kernel | calls | GPU ms | share | GB/s | % bandwidth | TFLOP/s | % peak |', '|---|---|---|---|---|---|---|---|');
      for (const k of ks) out.push(`| ${k.kernel} | ${k.calls} | ${k.ms.toFixed(3)} | ${(100 * k.share).toFixed(1)}% | ${k.gbs === null ? '–' : fmt(k.gbs)} | ${k.bwFrac === null ? '–' : (100 * k.bwFrac).toFixed(1) + '%'} | ${k.tflops === null ? '–' : k.tflops.toFixed(3)} | ${k.peakFrac === null ? '–' : (100 * k.peakFrac).toFixed(1) + '%'} |`);
    }
    process.stdout.write(out.join('\n') + '\n');
    return 0;
  } finally {
    backend.destroy();
  }
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** What the f16 weights are multiplied with: the forced matmul variant (FLA_KERNEL_MATMUL), else the default sgmat. */
function f16GemmLabel(): string {
  const v = knob('FLA_KERNEL_MATMUL');
  if (v === 'sgmat_f16') return 'single-product f16 tensor-core GEMM';
  if (v === 'f16single') return 'single-product f16 GEMM (no matrices)';
  if (v === 'f16split') return 'f32-grade split f16 GEMM (no matrices)';
  return 'f32-grade f16 tensor-core GEMM';
}
