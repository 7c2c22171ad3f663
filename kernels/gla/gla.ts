// gla op: gated linear attention (GLA) and, without gate, fla's linear attention, over each packed sequence with
// per-slot f32 state. Variants: 'recurrent' (gla_recurrent.wgsl: decode, short steps, and the normaliser z of
// linear attention) and 'chunk' (gla_chunk_{prep,attn,state}.wgsl: chunked prefill, chunk 64, without
// normaliser), chosen per step in `select`.
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { chunked, f32, grid, kernel, op, scratch, u32, type Ctx, type Launch } from '../lib.ts';
import { FMAP, glaRef, glaStateCols, glaValueTile, type Fmap } from './gla.ref.ts';
import source from './gla_recurrent.wgsl' with { type: 'text' };
import prepSrc from './gla_chunk_prep.wgsl' with { type: 'text' };
import attnSrc from './gla_chunk_attn.wgsl' with { type: 'text' };
import stateSrc from './gla_chunk_state.wgsl' with { type: 'text' };

export const KERNELS = {
  recurrent: kernel('gla_recurrent', source, ['step', 'stepmeta', 'q', 'k', 'v', 'gk', 'state', 'o', 'dims', 'dims2']),
  prep: kernel('gla_chunk_prep', prepSrc, ['step', 'stepmeta', 'q', 'k', 'gk', 'qb', 'kb', 'dims', 'dims2']),
  attn: kernel('gla_chunk_attn', attnSrc, ['step', 'stepmeta', 'qb', 'kb', 'A', 'dims']),
  state: kernel('gla_chunk_state', stateSrc, ['step', 'stepmeta', 'qb', 'kb', 'v', 'A', 'state', 'o', 'dims']),
};

/** gk: raw gate logits, null = no decay; normalize: the state of each slot also holds z [H, DK] after S [H, DK, DV]. */
export interface GlaArgs {
  q: Tensor; k: Tensor; v: Tensor; gk: Tensor | null; state: Tensor; out: Tensor; normalize: boolean;
  H: number; HKV: number; DK: number; DV: number; scale: number; gateNormalizer: number; clampMin: number | null; fmap: Fmap;
}

export type GlaKernel = 'recurrent' | 'chunk';

/** Chunk length of the chunked prefill. */
export const CHUNK = 64;

/**
 * Geometry of gla_chunk_state: BV columns × G row groups (G·BV = 256 threads or the adapter's limit, G ≤ CH); the
 * S block (DK × BV) and the chunk's v block (CH × BV) must fit 24 KiB of workgroup memory; DK a multiple of 4 (S
 * is held as vec4 over key rows). null: no geometry fits.
 */
export function chunkGeometry(DK: number, DV: number, maxInvocations = 256, maxWorkgroupStorage = 32768): { BV: number; G: number } | null {
  const tpb = Math.min(256, maxInvocations);
  const budget = Math.min(24576, maxWorkgroupStorage);
  let BV = 8;
  const bytes = (bv: number) => (DK + 4 + CHUNK) * bv * 4;   // S transposed (each column padded by a vec4), v
  while (BV > 4 && (DV % BV !== 0 || bytes(BV) > budget)) BV >>= 1;
  if (DK % 4 !== 0 || DV % BV !== 0 || bytes(BV) > budget || tpb % BV !== 0 || tpb / BV > CHUNK || CHUNK % (tpb / BV) !== 0 || maxInvocations < 256) return null;   // gla_chunk_attn: 256 threads
  return { BV, G: tpb / BV };
}

/** gla_chunk_attn's slab of key dims: the most of 32, 16, 8, 4 dividing DK whose three CH × (SL + 1) f32 blocks fit. */
export function attnSlab(DK: number, maxWorkgroupStorage: number): number {
  return [32, 16, 8].find(sl => DK % sl === 0 && 3 * CHUNK * (sl + 1) * 4 <= maxWorkgroupStorage) ?? 4;
}

/** The chunked kernels have no normaliser z, and need a state-pass geometry that fits the adapter. */
const chunkFits = (a: GlaArgs, c: Ctx) => !a.normalize && chunkGeometry(a.DK, a.DV, c.adapter.maxInvocations, c.adapter.maxWorkgroupStorage) !== null;

const dims = (a: GlaArgs) => f32(a.H, a.HKV, a.scale, a.gateNormalizer);
const dims2 = (a: GlaArgs) => f32(a.clampMin ?? -3e38, 0, 0, 0);

export const glaOp = op<GlaArgs>({
  name: 'gla',
  check(a) {
    if (a.state.cols !== glaStateCols(a)) throw new ShapeError(`gla: state has ${a.state.cols} columns per slot, expected ${glaStateCols(a)}`);
    if (a.H % a.HKV !== 0) throw new ShapeError(`gla: ${a.H} heads are not a multiple of ${a.HKV} kv heads`);
  },
  /**
   * 'chunk' (the chunked prefill) when a sequence has more than one chunk of tokens, on GPU adapters (the rule of
   * delta_rule, `chunked`); 'recurrent' otherwise, and always with the normaliser z (linear attention's normalize).
   */
  select: (c, a) => (chunkFits(a, c) && chunked(c, CHUNK) ? 'chunk' : 'recurrent'),
  variants: {
    recurrent: {
      launches: (a, c) => {
        const TV = glaValueTile(a.DV);
        if (a.DV % TV !== 0) throw new ShapeError(`gla: value head dim ${a.DV} must be a multiple of ${TV}`);
        return [{
          kernel: KERNELS.recurrent, grid: [a.H * a.DV / TV, c.step.b, 1],
          defines: { DK: a.DK, DV: a.DV, TV, HAS_GATE: a.gk !== null, NORMALIZE: a.normalize, FMAP: FMAP[a.fmap] },
          bind: { q: a.q, k: a.k, v: a.v, gk: a.gk, state: a.state, o: a.out, dims: dims(a), dims2: dims2(a) },
        }];
      },
    },
    // prep (gate cumsums, scaled q/k), attn (intra-chunk A), state (o, S).
    // Scratch: qb [2, cap, H·DK] (qf, qg), kb [3, cap, HKV·DK] (B, kf, kg), A [cap, H·CH].
    chunk: {
      supports: chunkFits,
      scratch: a => ({ qb: { cols: a.H * a.DK, planes: 2 }, kb: { cols: a.HKV * a.DK, planes: 3 }, A: { cols: a.H * CHUNK } }),
      launches: (a, c): Launch[] => {
        if (a.normalize) throw new ShapeError('gla: the chunked kernel has no normaliser z');
        const geo = chunkGeometry(a.DK, a.DV, c.adapter.maxInvocations, c.adapter.maxWorkgroupStorage);
        if (!geo) throw new ShapeError(`gla: no chunk geometry for DK=${a.DK} DV=${a.DV}`);
        const WG = Math.min(64, c.adapter.maxInvocations), HAS_GATE = a.gk !== null, n = c.step.n;
        const dimsU = u32(a.H, a.HKV, a.DV, 0), qb = scratch('qb'), kb = scratch('kb'), A = scratch('A');
        const MC = Math.max(1, Math.ceil(c.step.maxLen / CHUNK));   // chunks of the longest sequence (gla_chunk_attn's grid)
        return [
          { kernel: KERNELS.prep, grid: [Math.ceil(a.HKV * a.DK / WG), c.step.b, Math.max(1, Math.ceil(n / CHUNK))],
            defines: { DK: a.DK, CH: CHUNK, WG, HAS_GATE, FMAP: FMAP[a.fmap] },
            bind: { q: a.q, k: a.k, gk: a.gk, qb, kb, dims: dims(a), dims2: dims2(a) } },
          { kernel: KERNELS.attn, grid: grid(c.step.b * MC * a.H), defines: { DK: a.DK, CH: CHUNK, SL: attnSlab(a.DK, c.adapter.maxWorkgroupStorage), HAS_GATE },
            bind: { qb, kb, A, dims: u32(a.H, a.HKV, MC, 0) } },
          { kernel: KERNELS.state, grid: [a.H * a.DV / geo.BV, c.step.b, 1],
            defines: { DK: a.DK, BV: geo.BV, G: geo.G, CH: CHUNK, QPT: CHUNK / geo.G, HAS_GATE },
            bind: { qb, kb, v: a.v, A, state: a.state, o: a.out, dims: dimsU } },
        ];
      },
    },
  },
  ref: (a, h) => glaRef(h.data(a.q), h.data(a.k), h.data(a.v), a.gk ? h.data(a.gk) : null, h.data(a.state), h.data(a.out), h.step.cursors, a),
});

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
export function gla(o: Backend, a: GlaOp): Promise<void> {
  return o.run(glaOp, {
    ...a, gateNormalizer: a.gateNormalizer ?? 16, clampMin: a.clampMin ?? null, fmap: a.fmap ?? 'none', normalize: !!a.normalize,
  });
}
