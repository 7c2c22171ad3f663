// gla op wrapper: gated linear attention (GLA) and, without gate, fla's linear attention, over each packed sequence
// with per-slot f32 state. Kernels: gla_recurrent.wgsl (decode, short steps, and the normaliser z of linear
// attention) and gla_chunk_{prep,attn,state}.wgsl (chunked prefill, chunk 64, without normaliser), chosen per step
// in `select`.
import type { Dispatch, Gpu } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, type StepCtx, type View } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { FMAP, glaRef, glaStateCols, glaValueTile, type Fmap } from './gla.ref.ts';
import source from './gla_recurrent.wgsl' with { type: 'text' };
import prepSrc from './gla_chunk_prep.wgsl' with { type: 'text' };
import attnSrc from './gla_chunk_attn.wgsl' with { type: 'text' };
import stateSrc from './gla_chunk_state.wgsl' with { type: 'text' };

export const BINDINGS = ['step', 'meta', 'q', 'k', 'v', 'gk', 'state', 'o', 'dims', 'dims2'] as const;

export interface GlaArgs {
  q: View; k: View; v: View; gk: View | null; state: View; o: View; normalize: boolean;
  H: number; HKV: number; DK: number; DV: number; scale: number; gateNormalizer: number; clampMin: number | null; fmap: Fmap;
}

export function build(gpu: Gpu, s: StepCtx, a: GlaArgs, dummy: View): Promise<Dispatch> {
  if (a.H % a.HKV !== 0) throw new ShapeError(`gla: ${a.H} heads are not a multiple of ${a.HKV} kv heads`);
  const TV = glaValueTile(a.DV);
  if (a.DV % TV !== 0) throw new ShapeError(`gla: value head dim ${a.DV} must be a multiple of ${TV}`);
  return dispatch(gpu, {
    label: 'gla_recurrent', source,
    defines: { DK: a.DK, DV: a.DV, TV, HAS_GATE: a.gk !== null, NORMALIZE: a.normalize, FMAP: FMAP[a.fmap] },
  }, [{ buffer: s.uniform }, { buffer: s.meta }, binding(a.q), binding(a.k), binding(a.v), binding(a.gk ?? dummy), binding(a.state), binding(a.o),
    { buffer: gpu.uniform(new Float32Array([a.H, a.HKV, a.scale, a.gateNormalizer])) },
    { buffer: gpu.uniform(new Float32Array([a.clampMin ?? -3e38, 0, 0, 0])) }],
  [a.H * a.DV / TV, s.b, 1]);
}

export type GlaKernel = 'recurrent' | 'chunk';

/** Chunk length of the chunked prefill. */
export const CHUNK = 64;

/**
 * Geometry of gla_chunk_state: BV columns × G row groups (G·BV = 256 threads or the adapter's limit, G ≤ CH); the
 * S block (DK × BV) and the chunk's v block (CH × BV) must fit 24 KiB of workgroup memory. null: no geometry fits.
 */
export function chunkGeometry(DK: number, DV: number, maxInvocations = 256, maxWorkgroupStorage = 32768): { BV: number; G: number } | null {
  const tpb = Math.min(256, maxInvocations);
  const budget = Math.min(24576, maxWorkgroupStorage);
  let BV = 8;
  while (BV > 4 && (DV % BV !== 0 || (DK + CHUNK) * BV * 4 > budget)) BV >>= 1;
  if (DV % BV !== 0 || (DK + CHUNK) * BV * 4 > budget || tpb % BV !== 0 || tpb / BV > CHUNK || CHUNK % (tpb / BV) !== 0 || CHUNK > maxInvocations) return null;
  return { BV, G: tpb / BV };
}

/**
 * 'chunk' (the chunked prefill) for steps of more than one chunk of tokens, 'recurrent' otherwise (decode, short
 * prompts) and always with the normaliser z (linear attention's normalize: kept on the recurrent kernel). Both give
 * the same math; FLA_KERNEL_GLA=recurrent|chunk forces one (a forced 'chunk' still takes the recurrent kernel
 * for the normaliser).
 */
export function select(s: StepCtx, d: { normalize: boolean; DK: number; DV: number }, gpu?: Gpu): GlaKernel {
  if (d.normalize || !chunkGeometry(d.DK, d.DV, gpu?.maxInvocations, gpu?.maxWorkgroupStorage)) return 'recurrent';
  const forced = process.env.FLA_KERNEL_GLA;
  if (forced === 'recurrent' || forced === 'chunk') return forced;
  // measured: 1.38× faster prefill on an H200 (gla-1.3b, 4096 tokens), but 1.4–2× slower on lavapipe, whose
  // "GPU" is the CPU running one sequence's recurrence at full speed anyway (BENCHMARKS.md)
  if (gpu?.summary.type === 'cpu') return 'recurrent';
  return s.n > CHUNK ? 'chunk' : 'recurrent';
}

/** Scratch of the chunked path: qb [2, cap, H·DK] (qf, qg), kb [3, cap, HKV·DK] (B, kf, kg), A [cap, H·CH]. */
export interface GlaChunkScratch { qb: View; kb: View; A: View }

/** The three dispatches of the chunked path: prep (gate cumsums, scaled q/k), attn (intra-chunk A), state (o, S). */
export async function buildChunk(gpu: Gpu, s: StepCtx, a: GlaArgs, sc: GlaChunkScratch, dummy: View): Promise<Dispatch[]> {
  if (a.H % a.HKV !== 0) throw new ShapeError(`gla: ${a.H} heads are not a multiple of ${a.HKV} kv heads`);
  if (a.normalize) throw new ShapeError('gla: the chunked kernel has no normaliser z');
  const geo = chunkGeometry(a.DK, a.DV, gpu.maxInvocations, gpu.maxWorkgroupStorage);
  if (!geo) throw new ShapeError(`gla: no chunk geometry for DK=${a.DK} DV=${a.DV}`);
  const WG = Math.min(64, gpu.maxInvocations);
  const HAS_GATE = a.gk !== null;
  const dimsU = gpu.uniform(new Uint32Array([a.H, a.HKV, a.DV, 0]));
  const prep = await dispatch(gpu, {
    label: 'gla_chunk_prep', source: prepSrc, defines: { DK: a.DK, CH: CHUNK, WG, HAS_GATE, FMAP: FMAP[a.fmap] },
  }, [{ buffer: s.uniform }, { buffer: s.meta }, binding(a.q), binding(a.k), binding(a.gk ?? dummy), binding(sc.qb), binding(sc.kb),
    { buffer: gpu.uniform(new Float32Array([a.H, a.HKV, a.scale, a.gateNormalizer])) },
    { buffer: gpu.uniform(new Float32Array([a.clampMin ?? -3e38, 0, 0, 0])) }],
  [Math.ceil(a.HKV * a.DK / WG), s.b, Math.max(1, Math.ceil(s.n / CHUNK))]);
  const attn = await dispatch(gpu, { label: 'gla_chunk_attn', source: attnSrc, defines: { DK: a.DK, CH: CHUNK, HAS_GATE } },
    [{ buffer: s.uniform }, { buffer: s.meta }, binding(sc.qb), binding(sc.kb), binding(sc.A), { buffer: dimsU }], grid(s.n * a.H));
  const state = await dispatch(gpu, {
    label: 'gla_chunk_state', source: stateSrc, defines: { DK: a.DK, BV: geo.BV, G: geo.G, CH: CHUNK, QPT: CHUNK / geo.G, HAS_GATE },
  }, [{ buffer: s.uniform }, { buffer: s.meta }, binding(sc.qb), binding(sc.kb), binding(a.v), binding(sc.A), binding(a.state), binding(a.o),
    { buffer: dimsU }], [a.H * a.DV / geo.BV, s.b, 1]);
  return [prep, attn, state];
}

export function cost(N: number, H: number, DK: number, DV: number) {
  return { flops: 4 * N * H * DK * DV, bytes: 4 * N * H * (3 * DK + 2 * DV) };
}

export interface GlaOp {
  q: Tensor; k: Tensor; v: Tensor; gk: Tensor | null; state: Tensor; out: Tensor; normalize?: boolean;
  H: number; HKV: number; DK: number; DV: number; scale: number;
  gateNormalizer?: number; clampMin?: number | null; fmap?: Fmap;
}

/** o = gated linear attention of q, k, v (gk: raw gate logits, null = no decay; normalize: the state
 * of each slot also holds z [H, DK] after S [H, DK, DV]). */
export async function gla(o: Backend, a: GlaOp): Promise<void> {
  const d = {
    H: a.H, HKV: a.HKV, DK: a.DK, DV: a.DV, scale: a.scale, gateNormalizer: a.gateNormalizer ?? 16,
    clampMin: a.clampMin ?? null, fmap: a.fmap ?? 'none' as Fmap, normalize: !!a.normalize,
  };
  if (a.state.cols !== glaStateCols(d)) throw new ShapeError(`gla: state has ${a.state.cols} columns per slot, expected ${glaStateCols(d)}`);
  if (o instanceof GpuBackend) {
    if (select(o.step, d, o.gpu) === 'chunk') {
      const sc = {
        qb: o.view(o.act('gla_qb', d.H * d.DK, { planes: 2 })), kb: o.view(o.act('gla_kb', d.HKV * d.DK, { planes: 3 })),
        A: o.view(o.act('gla_A', d.H * CHUNK)),
      };
      for (const disp of await buildChunk(o.gpu, o.step, {
        ...d, q: o.view(a.q), k: o.view(a.k), v: o.view(a.v), gk: a.gk ? o.view(a.gk) : null, state: o.view(a.state),
        o: o.view(a.out),
      }, sc, o.dummyView)) o.push(disp);
      return;
    }
    o.push(await build(o.gpu, o.step, {
      ...d, q: o.view(a.q), k: o.view(a.k), v: o.view(a.v), gk: a.gk ? o.view(a.gk) : null, state: o.view(a.state),
      o: o.view(a.out),
    }, o.dummyView));
    return;
  }
  const c = o as CpuBackend;
  glaRef(c.data(a.q), c.data(a.k), c.data(a.v), a.gk ? c.data(a.gk) : null, c.data(a.state),
    c.data(a.out), c.step.cursors, d);
}
