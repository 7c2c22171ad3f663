// rope, kv_store and sdpa (kernels/attention): GPU against the CPU reference. Queries of several sequences in one
// step, each continuing a cached prefix (cursor.pos): for single at lengths around its 64-key block edge and 1000;
// for split / split_wg around their key blocks and split edges up to 3000 and 4000 keys, head dims 64, 128 and 256,
// GQA ratios 1, 2, 4 and 8, a sliding window, multi-token chunks; each sdpa variant forced with FLA_KERNEL_SDPA
// (single: prefill; split: split-K over the context plus a combine pass; split_wg: split without subgroups; direct:
// split's kernel as one pass, no combine).
// 16-bit caches are in attention_kv16.test.ts.
import { describe, expect, test } from 'bun:test';
import { invFreq, ropeTable } from '../../../kernels/attention/rope.ref.ts';
import { rope } from '../../../kernels/attention/rope.ts';
import { directHeads, flashPlan, kvStore, sdpa, sdpaOp, splitPlan, splitPlanOverride, splitsOf, type SplitTweak } from '../../../kernels/attention/sdpa.ts';
import { sgmatFlashPlan } from '../../../kernels/attention/sdpa_sgmat.ts';
import { prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { SGMAT_RTOL, stepOf, withEnv, withSdpa } from './attention_steps.ts';
import { checkBoth, gpuBackend, hostWeight, selectCtx } from './harness.ts';


const SLOTS = 8;
type Seq = { slot: number; len: number; pos: number };

async function attentionCase(variant: string, H: number, KV: number, D: number, seqs: Seq[], window = 0, ctxExtra = 0): Promise<void> {
  const rtol = variant === 'flash_sgmat' ? SGMAT_RTOL : 1e-4;
  const what = `sdpa ${variant} H=${H} KV=${KV} D=${D} window=${window} seqs ${seqs.map(s => `${s.pos}+${s.len}@${s.slot}`).join(',')}`;
  const rng = prng(what);
  const step = stepOf(seqs);
  const N = step.ids.length, ctx = Math.max(...seqs.map(s => s.pos + s.len)) + ctxExtra;
  const q = randn(N * H * D, rng), k = randn(N * KV * D, rng), v = randn(N * KV * D, rng);
  const kc = randn(SLOTS * ctx * KV * D, rng), vc = randn(SLOTS * ctx * KV * D, rng);   // cached prefixes (and garbage beyond)
  const table = ropeTable(invFreq(10000, D), ctx);
  await withSdpa(variant, () => checkBoth(step, { states: [{ key: 'k', cols: ctx * KV * D }, { key: 'v', cols: ctx * KV * D }], slots: SLOTS, init: { k: kc, v: vc } }, async io => {
    const qt = io.o.act('q', H * D), kt = io.o.act('k', KV * D), vt = io.o.act('v', KV * D), out = io.o.act('out', H * D);
    io.put(qt, q); io.put(kt, k); io.put(vt, v); io.put(out);
    const tw = io.weight('rope', hostWeight(table, [2, ctx, D / 2]), false);
    await rope(io.o, qt, tw, { D, R: D });
    await rope(io.o, kt, tw, { D, R: D });
    await kvStore(io.o, kt, io.o.state('k'), ctx, 'f32');
    await kvStore(io.o, vt, io.o.state('v'), ctx, 'f32');
    await sdpa(io.o, qt, io.o.state('k'), io.o.state('v'), out, { H, KV, D, ctx, window, kv: 'f32' });
    return { q: qt, k: kt, out, kc: io.o.state('k'), vc: io.o.state('v') };
  }, { seed: rng, what, rtol }));
}

describe.skipIf(!HAS_GPU)('attention kernels', () => {
  for (const len of [1, 63, 64, 65]) {
    test(`single, D=64 GQA 2: prefill of ${len} tokens from an empty cache`, async () => {
      await attentionCase('single', 4, 2, 64, [{ slot: 1, len, pos: 0 }]);
    });
  }
  test('single, D=128 MHA: decode steps of three sequences with cached prefixes 0, 70 and 129', async () => {
    await attentionCase('single', 2, 2, 128, [{ slot: 0, len: 1, pos: 70 }, { slot: 2, len: 1, pos: 0 }, { slot: 1, len: 1, pos: 129 }]);
  });
  test('single, D=64 GQA 4: chunks continuing prefixes (pos 5 + 60, pos 64 + 3)', async () => {
    await attentionCase('single', 8, 2, 64, [{ slot: 2, len: 60, pos: 5 }, { slot: 0, len: 3, pos: 64 }]);
  });
  test('single, D=128 GQA 2: 1000 tokens', async () => {
    await attentionCase('single', 2, 1, 128, [{ slot: 0, len: 1000, pos: 0 }]);
  });
  test('single, D=64: sliding window 16 over a 40-token prefix', async () => {
    await attentionCase('single', 2, 2, 64, [{ slot: 1, len: 9, pos: 40 }], 16);
  });

  // flash: BR query rows (tokens × G heads) per workgroup and BC = 32 keys a tile (flashPlan: 32 rows, 16 on lavapipe
  // at D=128), so lengths around 32-key tiles and 64-row tiles, GQA 1, 2, 4 and 8, head dims 32, 64, 128 (and 48:
  // TX = 4), continued prefixes, packed sequences of different lengths in one step, a sliding window, FLA_SDPA_BR.
  const FLASH: [number, number, number, Seq[]][] = [
    [4, 2, 64, [{ slot: 1, len: 17, pos: 0 }]],
    [4, 2, 64, [{ slot: 1, len: 31, pos: 0 }, { slot: 3, len: 33, pos: 0 }, { slot: 0, len: 65, pos: 0 }]],
    [8, 2, 128, [{ slot: 2, len: 97, pos: 5 }, { slot: 0, len: 20, pos: 64 }]],
    [8, 1, 64, [{ slot: 0, len: 200, pos: 31 }]],
    [2, 2, 128, [{ slot: 4, len: 129, pos: 0 }, { slot: 5, len: 1, pos: 40 }]],
    [4, 4, 32, [{ slot: 0, len: 70, pos: 0 }]],
    [6, 3, 48, [{ slot: 1, len: 40, pos: 3 }]],
  ];
  for (const [H, KV, D, seqs] of FLASH) {
    test(`flash, H=${H} KV=${KV} D=${D}: ${seqs.map(s => `${s.pos}+${s.len}`).join(', ')}`, async () => {
      await attentionCase('flash', H, KV, D, seqs);
    });
  }
  test('flash: sliding windows 16 and 40 over tiles, BR capped to 16 and 32', async () => {
    await attentionCase('flash', 4, 2, 64, [{ slot: 1, len: 90, pos: 7 }, { slot: 2, len: 30, pos: 0 }], 16);
    await withEnv('FLA_SDPA_BR', '16', () => attentionCase('flash', 4, 2, 64, [{ slot: 0, len: 100, pos: 0 }], 40));
    await withEnv('FLA_SDPA_BR', '32', () => attentionCase('flash', 8, 2, 128, [{ slot: 0, len: 50, pos: 0 }, { slot: 1, len: 19, pos: 2 }]));
  });
  test('flash: FLA_SDPA_TX 16 and 4 (threads a row group) at D=64, BR 64 where it fits', async () => {
    await withEnv('FLA_SDPA_TX', '16', () => attentionCase('flash', 8, 2, 64, [{ slot: 0, len: 77, pos: 9 }, { slot: 1, len: 30, pos: 0 }]));
    await withEnv('FLA_SDPA_TX', '4', () => attentionCase('flash', 8, 2, 64, [{ slot: 0, len: 77, pos: 9 }, { slot: 1, len: 30, pos: 0 }], 20));
    await withEnv('FLA_SDPA_BR', '64', () => attentionCase('flash', 4, 1, 64, [{ slot: 0, len: 150, pos: 0 }]));
  });
  // D = 256 (Qwen3-Next's gated attention) needs 35 KiB of workgroup memory (BR 16, BC 16, TX 16): the GPU machine
  test.skipIf(!HAS_GPU || flashPlan(gpuBackend().adapter, 256) === null)('flash, D=256 GQA 8: 100 tokens after 7, and 40 from empty', async () => {
    await attentionCase('flash', 16, 2, 256, [{ slot: 0, len: 100, pos: 7 }, { slot: 1, len: 40, pos: 0 }]);
  });
  test('flash, D=128 GQA 2: 1000 tokens', async () => {
    await attentionCase('flash', 2, 1, 128, [{ slot: 0, len: 1000, pos: 0 }]);
  });

  // flash_sgmat (subgroup matrices: the GPU machine only): the flash shapes at D 64 and 128 and 16-bit caches, f32-grade
  // (rtol SGMAT_RTOL, attention_steps.ts; FLA_TEST_VERBOSE=1 prints the measured error)
  const sgmat = HAS_GPU && sgmatFlashPlan(gpuBackend().adapter, 64) !== null;
  test.skipIf(!sgmat)('flash_sgmat: the flash shapes at head dims 64 and 128, windows, packed sequences', async () => {
    for (const [H, KV, D, seqs] of FLASH) if (D === 64 || D === 128) await attentionCase('flash_sgmat', H, KV, D, seqs);
    await attentionCase('flash_sgmat', 4, 2, 64, [{ slot: 1, len: 90, pos: 7 }, { slot: 2, len: 30, pos: 0 }], 16);
    await attentionCase('flash_sgmat', 8, 2, 128, [{ slot: 0, len: 300, pos: 0 }, { slot: 1, len: 19, pos: 2 }], 40);
    await attentionCase('flash_sgmat', 32, 8, 64, [{ slot: 0, len: 512, pos: 0 }]);   // llama-1b's heads
  });

  // split / split_wg: FLA_SDPA_SPLITS forces S = 5 splits; each split takes ceil(L / S) keys rounded up to the KB
  // keys of one iteration (splitPlan: KB depends on the adapter's subgroup size, the head dim and the GQA ratio), so
  // one decode step of 8 sequences puts a context's end (L = pos + 1) at 1, KB − 1, KB, KB + 1 (one key past the
  // first block), 5·KB − 1, 5·KB, 5·KB + 1 (a split edge: three splits busy, two empty) and 3000 (several blocks
  // a split, the last one part-full).
  // split_wg (workgroup-memory reductions: two barriers a block, slow on lavapipe) runs fewer shapes, up to 1500 keys.
  // split's default plan over an f32 cache takes one query head a lane and the head groups of a KV head side by side
  // in its workgroup (QS: GQA 2, 4, 8 here, splitPlan), fewer side by side and the rest across workgroups where the
  // merge's workgroup memory or 4 key groups a slot do not fit (D 256).
  const SHAPES = { split: [[4, 4, 64], [8, 4, 64], [8, 2, 64], [8, 2, 128], [16, 2, 256], [8, 1, 64], [8, 1, 128]], split_wg: [[4, 4, 64], [16, 2, 256]] } as const;
  for (const variant of ['split', 'split_wg'] as const) for (const [H, KV, D] of SHAPES[variant]) {
    const longest = variant === 'split' ? 3000 : 1500;
    test(`${variant}, H=${H} KV=${KV} D=${D}: decode of 8 sequences across block and split edges, up to ${longest} keys`, async () => {
      const ad = gpuBackend().adapter, KB = splitPlan(ad, { H, KV, D, ctx: longest + 7, kv: 'f32' }, variant === 'split').KB;
      const ls = [1, KB - 1, KB, KB + 1, 5 * KB - 1, 5 * KB, 5 * KB + 1, longest];
      expect(ls.every((L, i) => i === 0 || L > ls[i - 1]!)).toBe(true);
      await withEnv('FLA_SDPA_SPLITS', '5', () => attentionCase(variant, H, KV, D, ls.map((L, slot) => ({ slot, len: 1, pos: L - 1 })), 0, 7));
    });
  }
  for (const variant of ['split', 'split_wg']) {
    test(`${variant}, D=64 GQA 4: one sequence at ${variant === 'split' ? 4000 : 1000} keys, S from splitsOf (and packed steps: three sequences)`, async () => {
      await attentionCase(variant, 8, 2, 64, [{ slot: 1, len: 1, pos: variant === 'split' ? 3999 : 999 }], 0, 100);
      await attentionCase(variant, 8, 2, 128, [{ slot: 0, len: 1, pos: 129 }, { slot: 2, len: 1, pos: 0 }, { slot: 1, len: 1, pos: 777 }]);
    });
    test(`${variant}: many splits (S = 42 at D=64, 13 at D=256: the combine's four-load loop and its remainder)`, async () => {
      await withEnv('FLA_SDPA_SPLITS', '42', () => attentionCase(variant, 8, 2, 64, [{ slot: 0, len: 1, pos: 2999 }, { slot: 1, len: 1, pos: 700 }], 0, 7));
      await withEnv('FLA_SDPA_SPLITS', '13', () => attentionCase(variant, 4, 1, 256, [{ slot: 0, len: 1, pos: 1999 }], 0, 7));
    });
    test(`${variant}, D=64 GQA 2: short chunks (16 and 3 tokens) continuing prefixes 300 and 64`, async () => {
      await attentionCase(variant, 4, 2, 64, [{ slot: 2, len: 16, pos: 300 }, { slot: 0, len: 3, pos: 64 }]);
    });
    test(`${variant}, D=64 and D=128: sliding window 100 over prefixes 40, 99, 100, 500`, async () => {
      for (const D of [64, 128])
        await attentionCase(variant, 4, 2, D, [{ slot: 1, len: 1, pos: 40 }, { slot: 0, len: 1, pos: 99 }, { slot: 2, len: 1, pos: 500 }], 100);
      await attentionCase(variant, 4, 2, 64, [{ slot: 1, len: 2, pos: 99 }, { slot: 0, len: 1, pos: 100 }], 100);
    });
  }

  // direct: split's kernel as one pass writing the output (one split, GH query heads a workgroup); decode of 7
  // sequences ending around its key blocks (KB keys an iteration, from the plan at GH heads) for GH = 1 and all the
  // heads of a KV head (FLA_SDPA_DIRECT_HEADS) at D 64, 2 at D 128, and the default GH at D 256 / GQA 8
  test('direct, D=64 GQA 4 (GH 1, 4), D=128 GQA 2 (GH 2), D=256 GQA 8: decode across its key-block edges', async () => {
    for (const [H, KV, D, ghs] of [[8, 2, 64, ['1', '4']], [4, 2, 128, ['2']], [8, 1, 256, [undefined]]] as const) for (const gh of ghs) {
      const KB = splitPlan(gpuBackend().adapter, { H, KV, D, ctx: 1000, kv: 'f32' }, true, gh ? Number(gh) : H / KV, true).KB;
      const ls = [1, KB - 1, KB, KB + 1, 2 * KB + 1, 3 * KB - 1, D === 256 ? 300 : 700];
      const run = () => attentionCase('direct', H, KV, D, ls.map((L, slot) => ({ slot, len: 1, pos: L - 1 })), 0, 5);
      await (gh ? withEnv('FLA_SDPA_DIRECT_HEADS', gh, run) : run());
    }
  }, 300_000);
  test('direct, GQA 2: short chunks (16 and 3 tokens) after prefixes 300 and 64 at D=64; sliding window 100 at D=128', async () => {
    await attentionCase('direct', 4, 2, 64, [{ slot: 2, len: 16, pos: 300 }, { slot: 0, len: 3, pos: 64 }]);
    await attentionCase('direct', 4, 2, 128, [{ slot: 1, len: 1, pos: 40 }, { slot: 0, len: 2, pos: 99 }, { slot: 2, len: 1, pos: 500 }], 100);
  }, 300_000);

  // the split plans scripts/bench_attn.ts sweeps (splitPlanOverride): without the prefetch of the next iteration's K/V,
  // other key unrolls and lanes per key, the head-groups-fastest grid with the merge through workgroup memory alone; splits of 5 over 8 sequences ending at the block and split edges
  // G 4: every query head of a KV head in each lane (the f32 plan before the query-head slots, FLA_SDPA_SPLIT_LANE_HEADS);
  // QS 1 / 2: one / two head groups a workgroup, the others across workgroups (HG / QS a KV head); G 2: two heads a lane
  for (const tw of [{ PF: false }, { KU: 1, PF: true }, { KU: 4 }, { TPK: 16, PF: true }, { WG: 64 }, { KHF: true, SGM: false }, { KW: 2 }, { KW: 2, WG: 128, KHF: true },
    { G: 4 }, { G: 4, PF: false, TPK: 16 }, { QS: 1 }, { QS: 2, KHF: true }, { G: 2, QS: 1 }, { KP: true }, { KP: true, KU: 3, WG: 64 }] as SplitTweak[])
    test(`split with plan ${JSON.stringify(tw)}, D=64 GQA 4 and D=128 GQA 2: decode across block and split edges`, async () => {
      splitPlanOverride(tw);
      try {
        for (const [H, KV, D] of [[8, 2, 64], [4, 2, 128]] as const) {
          const KB = splitPlan(gpuBackend().adapter, { H, KV, D, ctx: 1007, kv: 'f32' }, true).KB;
          const ls = [1, KB - 1, KB + 1, 2 * KB, 5 * KB - 1, 5 * KB + 1, 600];
          await withEnv('FLA_SDPA_SPLITS', '5', () => attentionCase('split', H, KV, D, ls.map((L, slot) => ({ slot, len: 1, pos: L - 1 })), 0, 7));
        }
      } finally { splitPlanOverride(null); }
    }, 300_000);

  // FLA_SDPA_SPLIT_KP: key-parallel (sdpa_split_kp: one key a thread for the scores, blocks of WG keys), MHA and GQA 8
  // at D 64 and 128 (WG 256: 8 · 128 / 4 (head, unit) pairs), 8 sequences ending at its block and split edges; a
  // window; split_wg (its block max through a workgroup tree instead of subgroupMax)
  test('split key-parallel (FLA_SDPA_SPLIT_KP 1), MHA and GQA 8 at D=64 and D=128: decode across block and split edges, a window, split_wg', async () => {
    await withEnv('FLA_SDPA_SPLIT_KP', '1', async () => {
      for (const [H, KV, D] of [[4, 4, 64], [8, 1, 128]] as const) {
        const p = splitPlan(gpuBackend().adapter, { H, KV, D, ctx: 3000, kv: 'f32' }, true);
        expect(p).toMatchObject({ KP: true, KB: D === 128 ? 256 : 128 });
        const ls = [1, p.KB - 1, p.KB + 1, 2 * p.KB, 5 * p.KB - 1, 5 * p.KB + 1, 2000];
        await withEnv('FLA_SDPA_SPLITS', '5', () => attentionCase('split', H, KV, D, ls.map((L, slot) => ({ slot, len: 1, pos: L - 1 })), 0, 7));
      }
      await attentionCase('split', 8, 2, 64, [{ slot: 1, len: 1, pos: 40 }, { slot: 0, len: 2, pos: 299 }, { slot: 2, len: 1, pos: 500 }], 100);
      await attentionCase('split_wg', 8, 2, 64, [{ slot: 1, len: 1, pos: 129 }, { slot: 0, len: 1, pos: 0 }, { slot: 2, len: 1, pos: 700 }]);
    });
  }, 300_000);

  // FLA_SDPA_SPLIT_KV_HEADS: one workgroup takes all KV heads of its keys (KW = KV: key groups of different heads side
  // by side, merged per head; with the default one query head a lane, KV heads × query-head slots: 4 × 2 at GQA 2);
  // decode of 8 sequences ending at its key-block and split edges, at GQA 2 / D 64 and MHA / D 128
  test('split with all KV heads a workgroup (FLA_SDPA_SPLIT_KV_HEADS 4), D=64 GQA 2 and D=128 MHA: decode across block and split edges', async () => {
    await withEnv('FLA_SDPA_SPLIT_KV_HEADS', '4', async () => {
      for (const [H, KV, D] of [[8, 4, 64], [4, 4, 128]] as const) {
        const p = splitPlan(gpuBackend().adapter, { H, KV, D, ctx: 1007, kv: 'f32' }, true);
        expect(p.KW).toBe(4);
        const ls = [1, p.KB - 1, p.KB + 1, 2 * p.KB, 5 * p.KB - 1, 5 * p.KB + 1, 600];
        await withEnv('FLA_SDPA_SPLITS', '5', () => attentionCase('split', H, KV, D, ls.map((L, slot) => ({ slot, len: 1, pos: L - 1 })), 0, 7));
      }
      // 300 splits (a 512-thread combine, combineWg) of a few keys each, most of them empty for the shorter sequence
      // (both query heads a lane: the plan's smaller key blocks)
      await withEnv('FLA_SDPA_SPLIT_LANE_HEADS', '2', async () => {
        const KB = splitPlan(gpuBackend().adapter, { H: 8, KV: 4, D: 64, ctx: 5000, kv: 'f32' }, true).KB;
        expect(5000 / (2 * KB)).toBeGreaterThanOrEqual(300);
        await withEnv('FLA_SDPA_SPLITS', '300', () => attentionCase('split', 8, 4, 64, [{ slot: 0, len: 1, pos: 4999 }, { slot: 1, len: 1, pos: 99 }]));
      });
    });
  }, 300_000);

  test('partial rotary: R = D/4 leaves the other dims alone', async () => {
    const D = 64, R = 16, H = 2;
    const step = stepOf([{ slot: 0, len: 5, pos: 3 }]);
    const rng = prng('partial rope');
    const x = randn(5 * H * D, rng);
    const res = await checkBoth(step, { states: [], slots: 1 }, async io => {
      const t = io.o.act('x', H * D);
      io.put(t, x);
      await rope(io.o, t, io.weight('rope', hostWeight(ropeTable(invFreq(1e6, R), 16), [2, 16, R / 2]), false), { D, R });
      return { t };
    }, { seed: rng, what: 'partial rope' });
    const got = res.t!.data;
    for (let r = 0; r < 5 * H; r++) for (let i = R; i < D; i++) expect(got[r * D + i]).toBe(x[r * D + i]!);
  });
});

describe('sdpa select', () => {
  const adapter = { kind: 'gpu', type: 'discrete', f16: true, subgroups: true, subgroupSize: 32, maxInvocations: 1024, maxWorkgroupStorage: 32768, maxBinding: 2 ** 31, features: new Set<string>() } as const;
  const args = (ctx: number) => ({ H: 32, KV: 8, D: 64, ctx }) as any;
  test('decode-shaped steps over a long cache take split, over a short one direct; prefill flash where its tiles fit', async () => {
    expect(sdpaOp.select(selectCtx(adapter, [1]), args(32768))).toBe('split');
    expect(sdpaOp.select(selectCtx(adapter, [1, 1, 1, 16]), args(8193))).toBe('split');
    expect(sdpaOp.select(selectCtx(adapter, [17]), args(32768))).toBe('flash');
    expect(sdpaOp.select(selectCtx(adapter, [17]), { ...args(4096), D: 40 })).toBe('single');
    // direct up to ctx·D = 2^17 for one sequence of 32 heads (2048 keys at D 64, 1024 at D 128), 4× that from 8 tokens
    expect(sdpaOp.select(selectCtx(adapter, [1]), args(2048))).toBe('direct');
    expect(sdpaOp.select(selectCtx(adapter, [1]), args(2049))).toBe('split');
    expect(sdpaOp.select(selectCtx(adapter, [1]), { ...args(1024), D: 128 })).toBe('direct');
    expect(sdpaOp.select(selectCtx(adapter, [1]), { ...args(1025), D: 128 })).toBe('split');
    expect(sdpaOp.select(selectCtx(adapter, Array(8).fill(1)), args(8192))).toBe('direct');
    expect(sdpaOp.select(selectCtx(adapter, Array(8).fill(1)), args(8193))).toBe('split');
    expect(sdpaOp.select(selectCtx(adapter, [1, 16]), args(256))).toBe('direct');
    expect(sdpaOp.select(selectCtx(adapter, [1]), { ...args(256), D: 42 })).toBe('single');   // not 16-byte units
    await withEnv('FLA_SDPA_DIRECT_MAX_CTX', '0', async () => expect(sdpaOp.select(selectCtx(adapter, [1]), args(256))).toBe('split'));
    await withEnv('FLA_SDPA_DIRECT_MAX_CTX', '32768', async () => expect(sdpaOp.select(selectCtx(adapter, [1]), args(32768))).toBe('direct'));
  });
  test('direct: one query head a workgroup until the batch fills DIRECT_WGS workgroups, FLA_SDPA_DIRECT_HEADS where it divides', async () => {
    expect(directHeads(args(512), selectCtx(adapter, [1]))).toBe(1);
    expect(directHeads(args(512), selectCtx(adapter, Array(8).fill(1)))).toBe(1);
    expect(directHeads(args(512), selectCtx(adapter, Array(64).fill(1)))).toBe(2);   // 2048 heads: 1024 workgroups of 2
    expect(directHeads(args(512), selectCtx(adapter, Array(256).fill(1)))).toBe(4);   // at most the 4 of a KV head
    await withEnv('FLA_SDPA_DIRECT_HEADS', '2', async () => expect(directHeads(args(512), selectCtx(adapter, [1]))).toBe(2));
    await withEnv('FLA_SDPA_DIRECT_HEADS', '8', async () => expect(directHeads(args(512), selectCtx(adapter, [1]))).toBe(1));   // 8 ∤ 4
  });
  test('one sequence at 32 K fills a discrete card: llama-1b 8 KV heads × 64 splits, Qwen3-Next 2 × 256', async () => {
    // f32: one query head a lane, the 4 head groups of a KV head side by side (QS 4: 64 threads each), the subgroup merge
    expect(splitPlan(adapter, args(32768), true)).toMatchObject({ WG: 256, TPK: 2, UPL: 8, G: 1, HG: 4, QS: 4, KW: 1, KU: 2, KB: 64, SG_RED: true, SG_MERGE: true, SGS: 32, PF: false });
    // the plan before (FLA_SDPA_SPLIT_LANE_HEADS 4, or more: the most dividing H / KV): all 4 query heads a lane
    for (const g of ['4', '64']) await withEnv('FLA_SDPA_SPLIT_LANE_HEADS', g, async () =>
      expect(splitPlan(adapter, args(32768), true)).toMatchObject({ WG: 64, TPK: 8, UPL: 2, G: 4, HG: 1, QS: 1, KU: 2, KB: 16, SG_RED: true, SG_MERGE: false, SGS: 32, PF: true }));
    await withEnv('FLA_SDPA_SPLIT_LANE_HEADS', '3', async () => expect(splitPlan(adapter, args(32768), true)).toMatchObject({ G: 2, HG: 2, QS: 2, WG: 128, TPK: 4 }));
    await withEnv('FLA_SDPA_SPLIT_LANE_HEADS', '4', async () => {
      expect(splitsOf(args(32768), selectCtx(adapter, [1]))).toBe(64);
      expect(splitsOf(args(300), selectCtx(adapter, [1]))).toBe(10);   // each split at least two 16-key iterations
    });
    // D 128: 4 lanes a key, the merge in 16 KiB through the subgroup butterflies
    expect(splitPlan(adapter, { ...args(32768), D: 128 }, true)).toMatchObject({ WG: 256, TPK: 4, UPL: 8, G: 1, QS: 4, KB: 32, SG_MERGE: true });
    // direct, one head a workgroup: 4 lanes a key, 256 threads, the subgroup merge (64 key groups)
    expect(splitPlan(adapter, args(512), true, 1, true)).toMatchObject({ WG: 256, TPK: 4, UPL: 4, G: 1, KU: 4, KB: 256, SG_MERGE: true, PF: false });
    expect(splitPlan(adapter, { ...args(512), D: 128 }, true, 1, true)).toMatchObject({ WG: 256, TPK: 4, UPL: 8, KU: 2, KB: 128, SG_MERGE: true });
    expect(splitPlan(adapter, args(512), false, 1, true)).toMatchObject({ SG_RED: false, SG_MERGE: false, WG: 128 });   // the merge's 16 KiB
    // a 16-bit cache: all 8 KV heads a workgroup (each key's cache row whole), 256 splits of 128 threads
    expect(splitPlan(adapter, { ...args(32768), kv: 'f16' }, true)).toMatchObject({ WG: 128, TPK: 8, UPL: 1, KU: 2, KW: 8, KB: 4, PF: true });
    expect(splitsOf({ ...args(32768), kv: 'f16' }, selectCtx(adapter, [1]))).toBe(256);
    expect(splitPlan(adapter, { ...args(32768), kv: 'f16' }, true, 4, true)).toMatchObject({ KW: 1 });   // direct: one head group
    await withEnv('FLA_SDPA_SPLIT_KV_HEADS', '1', async () => expect(splitPlan(adapter, { ...args(32768), kv: 'f16' }, true)).toMatchObject({ KW: 1, KB: 32 }));
    await withEnv('FLA_SDPA_SPLIT_LANE_HEADS', '4', async () => {
      await withEnv('FLA_SDPA_SPLIT_KV_HEADS', '8', async () => expect(splitPlan(adapter, args(32768), true)).toMatchObject({ KW: 8, KB: 2, PF: false }));
      await withEnv('FLA_SDPA_SPLIT_KV_HEADS', '6', async () => expect(splitPlan(adapter, args(32768), true)).toMatchObject({ KW: 4 }));   // the most dividing 8
    });
    // KV heads × 4 query-head slots: 8 × 4 of 2 lanes would pass the merge's 32 KiB, 4 × 4 fit with 4 key groups each
    await withEnv('FLA_SDPA_SPLIT_KV_HEADS', '8', async () => expect(splitPlan(adapter, args(32768), true)).toMatchObject({ KW: 4, QS: 4, WG: 128, KB: 8, SG_MERGE: false }));
    expect(splitsOf(args(32768), selectCtx(adapter, [1]))).toBe(64);   // 512 workgroups of 256 threads
    expect(splitsOf(args(32768), selectCtx(adapter, [1, 1, 1, 1]))).toBe(16);
    expect(splitsOf(args(300), selectCtx(adapter, [1]))).toBe(3);   // each split at least two 64-key iterations
    const q3n = { H: 16, KV: 2, D: 256, ctx: 32768 } as any;
    // f32, GQA 8 at D 256: 4 head groups side by side (8 would leave 1 key group a slot in the merge's 32 KiB), 2 workgroups a KV head
    expect(splitPlan(adapter, q3n, true)).toMatchObject({ WG: 128, TPK: 8, UPL: 8, G: 1, HG: 8, QS: 4, KU: 2, KB: 8 });
    expect(splitsOf(q3n, selectCtx(adapter, [1]))).toBe(512);
    await withEnv('FLA_SDPA_SPLIT_LANE_HEADS', '8', async () => {
      expect(splitPlan(adapter, q3n, true)).toMatchObject({ WG: 128, TPK: 32, UPL: 2, KU: 1 });   // ≥ 4 key groups
      expect(splitsOf(q3n, selectCtx(adapter, [1]))).toBe(256);
    });
    expect(splitPlan(adapter, { ...q3n, kv: 'f16' }, true)).toMatchObject({ TPK: 32, UPL: 1, KU: 1, KW: 2, WG: 128, KB: 2, PF: true });
  });
  test('flashPlan: tiles from the head dim and the workgroup memory; none past it (then single)', async () => {
    const big = { ...adapter, maxWorkgroupStorage: 49152 }, small = { ...adapter, maxWorkgroupStorage: 16384 };
    expect(flashPlan(big, 64)).toMatchObject({ BR: 32, BC: 32, TX: 16, WG: 128, KPT: 2, DV4: 1 });
    expect(flashPlan(big, 128)).toMatchObject({ BR: 32, BC: 32, TX: 16, WG: 128, DV4: 2 });
    expect(flashPlan(big, 32)).toMatchObject({ TX: 8 });
    expect(flashPlan(adapter, 128)).toMatchObject({ BR: 16, BC: 32, TX: 16, DV4: 2 });   // 32 KiB (lavapipe)
    expect(flashPlan(big, 256)).toMatchObject({ BR: 16, BC: 16, TX: 16, KPT: 1, DV4: 4 });
    expect(flashPlan(adapter, 256)).toBeNull();
    expect(flashPlan(small, 128)).toBeNull();
    expect(flashPlan(big, 40)).toBeNull();
    await withEnv('FLA_SDPA_BR', '64', async () => expect(flashPlan(big, 64)).toMatchObject({ BR: 64, WG: 256 }));
    await withEnv('FLA_SDPA_TX', '8', async () => expect(flashPlan(big, 64)).toMatchObject({ TX: 8, KPT: 4, DV4: 2 }));
  });
  test('FLA_SDPA_SPLITS forces S (within the cache\'s blocks)', async () => {
    await withEnv('FLA_SDPA_SPLITS', '7', async () => {
      expect(splitsOf(args(32768), selectCtx(adapter, [1]))).toBe(7);
      expect(splitsOf(args(300), selectCtx(adapter, [1]))).toBe(3);   // 300 keys: at most ceil(300 / (2 · 64)) splits
      await withEnv('FLA_SDPA_SPLIT_LANE_HEADS', '4', async () => expect(splitsOf(args(100), selectCtx(adapter, [1]))).toBe(4));   // ceil(100 / (2 · 16))
    });
  });
});
