// delta_rule (kernels/delta/: the recurrent kernel and the chunked prefill, each forced with FLA_KERNEL_DELTA_RULE)
// against delta_rule.ref.ts (the token-by-token recurrence of spec §1.8): d_k, d_v ∈ {64, 128} including
// d_k ≠ d_v, GVA ratios 1 and 2, gated (GDN: A_log/dt_bias/softplus) and ungated (DeltaNet) with β, zero and
// random initial state, sequences of lengths 1, 63, 64, 65 packed on different slots (one slot untouched) and a
// longer one alone (FLA_TEST_DELTA_LONG, default 1000). Compares the output and the whole state afterwards; and
// the chunked kernel directly against the recurrent one on the GPU (same inputs, 1e-4). Then the models' packed
// layout with the output norm (q|k|v in one tensor, a|b|z parts of the projection row, or z a tensor of its own):
// the fused variant (norm in its epilogue), recurrent + rms_norm and chunk + rms_norm, each against the reference
// (the unfused composition) and the fused one against the two unfused ones on the GPU.
import { describe, expect, test } from 'bun:test';
import { prng, randn, randu } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, gpuBackend, hostWeight, packedStep, runOn, selectCtx, type Packed } from './harness.ts';
import { expectClose } from '../../helpers/allclose.ts';
import { deltaRule, deltaRuleOp, fusedRowLanes, fusedSgGeometry, type DeltaDims, type DeltaKernel, type DeltaOp } from '../../../kernels/delta/delta_rule.ts';
import type { GpuBackend } from '../../../src/backend/gpu.ts';
import type { Tensor } from '../../../src/backend/backend.ts';

const SLOTS = 5;
const LONG = Number(process.env.FLA_TEST_DELTA_LONG ?? 1000);

interface Case { DK: number; DV: number; H: number; r: number; gated: boolean; init: boolean; negEig?: boolean; qkNorm?: DeltaDims['qkNorm']; qkAct?: DeltaDims['qkAct']; vSilu?: boolean }

/** Chunked vs recurrent on the GPU directly (not through the reference): both orders of arithmetic must agree. */
async function chunkVsRecurrent(c: Case, seqs: { slot: number; len: number }[]): Promise<void> {
  const runs: Record<string, Record<string, Packed>> = {};
  for (const kernel of ['recurrent', 'chunk'] as DeltaKernel[]) runs[kernel] = await runCase(kernel, c, seqs, 1e-4, true);
  for (const name of ['y', 'state'])
    expectClose(runs.chunk![name]!.data, runs.recurrent![name]!.data, { rtol: 1e-4, what: `chunk vs recurrent ${name}`, shape: runs.chunk![name]!.shape });
}

async function runCase(kernel: DeltaKernel, c: Case, seqs: { slot: number; len: number }[], rtol = 1e-4, gpuOnly = false): Promise<Record<string, Packed>> {
  const d: DeltaDims = { H: c.H, HV: c.H * c.r, DK: c.DK, DV: c.DV, qkNorm: c.qkNorm ?? 'l2', qkAct: c.qkAct ?? 'none', vSilu: c.vSilu ?? false, negEig: c.negEig ?? false };
  const what = `delta_rule ${kernel} DK=${c.DK} DV=${c.DV} H=${c.H} HV=${d.HV} ${c.gated ? 'gated' : 'ungated'}${c.init ? ' init' : ''} ${d.qkNorm}/${d.qkAct}${d.vSilu ? '/vsilu' : ''}${d.negEig ? ' negEig' : ''} seqs ${seqs.map(s => `${s.len}@${s.slot}`).join(',')}`;
  const rng = prng(what.replace(`delta_rule ${kernel}`, 'delta_rule'));   // the same inputs for both kernels
  const step = packedStep(seqs);
  const N = step.ids.length, KD = d.H * d.DK, VD = d.HV * d.DV, SC = VD * d.DK;
  const q = randn(N * KD, rng), k = randn(N * KD, rng), v = randn(N * VD, rng);
  // sum norm divides by Σx: keep it away from zero with positive features
  if (d.qkNorm === 'sum') for (const x of [q, k]) for (let i = 0; i < x.length; i++) x[i] = Math.abs(x[i]!) + 0.1;
  const a = randn(N * d.HV, rng), b = randn(N * d.HV, rng, 1.5);
  const gp = new Float32Array(2 * d.HV);
  gp.set(randu(d.HV, rng, -1, 1.5), 0);            // A_log: A ∈ (0.37, 4.5)
  gp.set(randu(d.HV, rng, -5, -1), d.HV);          // dt_bias
  const state = c.init ? randn(SLOTS * SC, rng, 0.3) : new Float32Array(SLOTS * SC);
  const prev = process.env.FLA_KERNEL_DELTA_RULE;
  process.env.FLA_KERNEL_DELTA_RULE = kernel;
  try {
    const setup = { states: [{ key: 'S', cols: SC }], slots: SLOTS, init: { S: state } };
    const body = async (io: Parameters<Parameters<typeof checkBoth>[2]>[0]) => {
      const qt = io.o.act('q', KD), kt = io.o.act('k', KD), vt = io.o.act('v', VD), at = io.o.act('a', d.HV), bt = io.o.act('b', d.HV), y = io.o.act('y', VD);
      io.put(qt, q); io.put(kt, k); io.put(vt, v); io.put(at, a); io.put(bt, b); io.put(y);
      const st = io.o.state('S');
      await deltaRule(io.o, {
        q: qt, k: kt, v: vt, a: c.gated ? at : null, gp: c.gated ? io.weight('gp', hostWeight(gp, [2, d.HV]), false) : null,
        b: bt, state: st, out: y, d,
      });
      return { y, state: st };
    };
    if (gpuOnly) return await runOn(gpuBackend(), 'gpu', step, setup, body);
    return await checkBoth(step, setup, body, { seed: rng, what, rtol });
  } finally {
    if (prev === undefined) delete process.env.FLA_KERNEL_DELTA_RULE; else process.env.FLA_KERNEL_DELTA_RULE = prev;
  }
}

const PACKED = [{ slot: 2, len: 63 }, { slot: 0, len: 1 }, { slot: 4, len: 64 }, { slot: 3, len: 65 }];

/** fn with the FLA_* settings of env, the previous values restored after. */
async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const prev = Object.fromEntries(Object.keys(env).map(k => [k, process.env[k]]));
  Object.assign(process.env, env);
  try { return await fn(); }
  finally { for (const [k, v] of Object.entries(prev)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; } }
}

describe.skipIf(!HAS_GPU)('delta_rule', () => {
  test('select: chunk when a sequence is longer than one chunk, on GPU adapters (not per step: 65 one-token sequences decode recurrent); FLA_KERNEL_DELTA_RULE forces', () => {
    const prev = process.env.FLA_KERNEL_DELTA_RULE;
    delete process.env.FLA_KERNEL_DELTA_RULE;
    try {
      const o = gpuBackend(), gpuAdapter = { ...o.adapter, type: 'discrete' }, cpuAdapter = { ...o.adapter, type: 'cpu' };
      const a = { d: { DK: 64, DV: 64 } } as DeltaOp, pick = (lens: number[], adapter = gpuAdapter) => o.variant(deltaRuleOp, a, selectCtx(adapter, lens));
      expect(pick([64])).toBe('recurrent');
      expect(pick([65])).toBe('chunk');
      expect(pick([1, 65, 3])).toBe('chunk');
      expect(pick(new Array(65).fill(1))).toBe('recurrent');
      expect(pick([40, 40])).toBe('recurrent');
      expect(pick([500], cpuAdapter)).toBe('recurrent');
      process.env.FLA_KERNEL_DELTA_RULE = 'chunk';
      expect(pick([1], cpuAdapter)).toBe('chunk');
      process.env.FLA_KERNEL_DELTA_RULE = 'recurrent';
      expect(pick([500])).toBe('recurrent');
    } finally {
      if (prev === undefined) delete process.env.FLA_KERNEL_DELTA_RULE; else process.env.FLA_KERNEL_DELTA_RULE = prev;
    }
  });
  for (const kernel of ['recurrent', 'chunk'] as DeltaKernel[]) {
    for (const [DK, DV] of [[64, 64], [128, 128], [64, 128], [128, 64]] as const) {
      for (const r of [1, 2]) {
        for (const gated of [true, false]) {
          const init = (DK + DV + r + (gated ? 1 : 0)) % 2 === 0;   // half the cases start from a random state
          test(`${kernel} DK=${DK} DV=${DV} GVA ${r} ${gated ? 'gated' : 'ungated'}${init ? ' init' : ''}: lengths 1, 63, 64, 65 packed`, async () => {
            await runCase(kernel, { DK, DV, H: 2, r, gated, init }, PACKED);
          });
        }
      }
    }
    for (const init of [false, true]) {
      test(`${kernel} DK=128 DV=64 GVA 2 gated${init ? ' init' : ''}: one sequence of ${LONG}`, async () => {
        await runCase(kernel, { DK: 128, DV: 64, H: 1, r: 2, gated: true, init }, [{ slot: 1, len: LONG }]);
      });
    }
    test(`${kernel} DeltaNet options: sum norm, elu+1, v silu, negative eigenvalues`, async () => {
      await runCase(kernel, { DK: 64, DV: 64, H: 2, r: 1, gated: false, init: true, qkNorm: 'sum', qkAct: 'elu', vSilu: true, negEig: true }, PACKED);
    });
    test(`${kernel} relu + l2, gated`, async () => {
      await runCase(kernel, { DK: 64, DV: 128, H: 1, r: 2, gated: true, init: true, qkAct: 'relu' }, PACKED);
    });
    test(`${kernel} decode: one token in each of four slots`, async () => {
      await runCase(kernel, { DK: 128, DV: 128, H: 2, r: 2, gated: true, init: true }, [{ slot: 3, len: 1 }, { slot: 1, len: 1 }, { slot: 0, len: 1 }, { slot: 2, len: 1 }]);
    });
  }
  // delta_chunk_state's geometry: BV columns × G row groups (default 16 × 32), QPT = 64 / G chunk rows a thread, CPT columns a thread (FLA_DELTA_CHUNK_CPT, delta_chunk_state_rb); its
  // token block as f32 (FLA_DELTA_CHUNK_VX=0); the next chunk's lines touched ahead (FLA_DELTA_CHUNK_PF=1); the kernels of before (FLA_DELTA_CHUNK_STATE=v1: two token blocks, 8 × 32; FLA_DELTA_CHUNK_SOLVE=subst: the row-by-row solve)
  for (const env of [{ FLA_DELTA_CHUNK_BV: '4' }, { FLA_DELTA_CHUNK_BV: '16', FLA_DELTA_CHUNK_G: '8' }, { FLA_DELTA_CHUNK_VX: '0' }, { FLA_DELTA_CHUNK_PF: '1', FLA_DELTA_CHUNK_BV: '8' }, { FLA_DELTA_CHUNK_CPT: '2' }, { FLA_DELTA_CHUNK_CPT: '4', FLA_DELTA_CHUNK_BV: '32', FLA_DELTA_CHUNK_G: '16' }, { FLA_DELTA_CHUNK_STATE: 'v1', FLA_DELTA_CHUNK_SOLVE: 'subst' }] as Record<string, string>[]) {
    test(`chunk with ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}, DK=128 DV=128 GVA 2 gated init: lengths 1, 63, 64, 65 and 200`, async () => {
      await withEnv(env, () => runCase('chunk', { DK: 128, DV: 128, H: 1, r: 2, gated: true, init: true }, [...PACKED, { slot: 1, len: 200 }]));
    });
  }
  test('chunk (blocked solve, wide state pass) equals the kernels of before on the GPU (1e-5), and two columns a thread (rb) one (1e-6), DK=128 DV=256 and DK=64 DV=64 GVA 2: lengths 1, 63, 64, 65 and 300', async () => {
    for (const c of [{ DK: 128, DV: 256, H: 1, r: 1, gated: true, init: true }, { DK: 64, DV: 64, H: 1, r: 2, gated: true, init: false }]) {
      const seqs = [...PACKED, { slot: 1, len: 300 }];
      const now = await runCase('chunk', c, seqs, 1e-4, true);
      const old = await withEnv({ FLA_DELTA_CHUNK_STATE: 'v1', FLA_DELTA_CHUNK_SOLVE: 'subst' }, () => runCase('chunk', c, seqs, 1e-4, true));
      const rb = await withEnv({ FLA_DELTA_CHUNK_CPT: '2' }, () => runCase('chunk', c, seqs, 1e-4, true));   // delta_chunk_state_rb
      for (const name of ['y', 'state']) {
        expectClose(now[name]!.data, old[name]!.data, { rtol: 1e-5, what: `chunk now vs before DK=${c.DK} DV=${c.DV} ${name}`, shape: now[name]!.shape });
        expectClose(rb[name]!.data, now[name]!.data, { rtol: 1e-6, what: `chunk CPT 2 vs 1 DK=${c.DK} DV=${c.DV} ${name}`, shape: now[name]!.shape });
      }
    }
  });
  for (const init of [false, true]) {
    test(`chunk equals recurrent on the GPU (1e-4), DK=64 DV=128 GVA 2 gated${init ? ' init' : ''}: lengths 1, 63, 64, 65 and ${LONG}`, async () => {
      await chunkVsRecurrent({ DK: 64, DV: 128, H: 1, r: 2, gated: true, init }, [...PACKED, { slot: 1, len: LONG }]);
    });
  }
});

// ---- the mixer's packed layout with the output norm (delta_common.ts): q|k|v one tensor, z|a|b in the projection row ----

interface PackedCase {
  DK: number; DV: number; H: number; r: number; gated: boolean; gate: boolean; beta?: boolean; init: boolean; qkAct?: DeltaDims['qkAct']; vSilu?: boolean; zSep?: boolean;
  /** q|k|v made by the op's short conv (kernel size W) from a raw projection row (its channels from column 5) */
  conv?: { W: number; act: 'silu' | 'none'; vSiluOnly?: boolean };
}

/**
 * One step of the delta rule with o_norm over packed inputs: qkv [N, 7 + 2·KD + VD] (q, k, v from column 7 on, as
 * after the short conv of a wider row), proj [N, …] holding z, a, b at odd offsets (with zSep z in a tensor of its own,
 * as Qwen3-Next's in_proj_qkvz and in_proj_ba give them); out = RMSNorm(o)·w (⊙ silu(z)).
 */
async function runPacked(kernel: DeltaKernel, c: PackedCase, seqs: { slot: number; len: number }[], gpuOnly = false): Promise<Record<string, Packed>> {
  const beta = c.beta ?? true;
  const d: DeltaDims = { H: c.H, HV: c.H * c.r, DK: c.DK, DV: c.DV, qkNorm: 'l2', qkAct: c.qkAct ?? 'none', vSilu: c.vSilu ?? false, negEig: false };
  const what = `delta_rule packed+norm ${kernel} DK=${c.DK} DV=${c.DV} H=${c.H} HV=${d.HV} ${c.gated ? 'gated' : 'ungated'}${c.gate ? (c.zSep ? ' z apart' : ' z') : ''}${beta ? '' : ' no-beta'}${c.init ? ' init' : ''}${c.conv ? ` conv${c.conv.W} ${c.conv.act}` : ''} seqs ${seqs.map(s => `${s.len}@${s.slot}`).join(',')}`;
  const rng = prng(what.replace(` ${kernel}`, ''));
  const step = packedStep(seqs);
  const N = step.ids.length, KD = d.H * d.DK, VD = d.HV * d.DV, SC = VD * d.DK;
  // with the conv its inputs follow z, a, b in the projection row (as the models pack them, a kernel may read all from there)
  const cv = c.conv, QO = cv ? 0 : 7, QC = QO + 2 * KD + VD;
  const ZO = 3, AO = ZO + VD + 5, BO = AO + d.HV + 2, XO = BO + d.HV + 1, PC = XO + (cv ? QC + 3 : 0);
  const qkv = randn(N * QC, rng), proj = randn(N * PC, rng), zs = randn(N * (VD + 1), rng);
  const cw = cv ? randn(QC * cv.W, rng, 0.5) : null, cst = cv ? randn(SLOTS * (cv.W - 1) * QC, rng) : null;
  const gp = new Float32Array(2 * d.HV);
  gp.set(randu(d.HV, rng, -1, 1.5), 0);
  gp.set(randu(d.HV, rng, -5, -1), d.HV);
  const wn = randu(d.DV, rng, 0.5, 1.5);
  const state = c.init ? randn(SLOTS * SC, rng, 0.3) : new Float32Array(SLOTS * SC);
  const prev = process.env.FLA_KERNEL_DELTA_RULE;
  process.env.FLA_KERNEL_DELTA_RULE = kernel;
  try {
    const init: Record<string, Float32Array> = cv ? { S: state, CS: cst! } : { S: state };
    const setup = { states: cv ? [{ key: 'S', cols: SC }, { key: 'CS', cols: (cv.W - 1) * QC }] : [{ key: 'S', cols: SC }], slots: SLOTS, init };
    const body = async (io: Parameters<Parameters<typeof checkBoth>[2]>[0]) => {
      const qt = io.o.act('qkv', QC), pt = io.o.act('proj', PC), zt = io.o.act('z', VD + 1), y = io.o.act('y', VD);
      if (cv) io.put(qt); else io.put(qt, qkv);
      io.put(pt, proj); io.put(zt, zs); io.put(y);
      const st = io.o.state('S'), cs = cv ? io.o.state('CS') : null;
      const x: DeltaOp = {
        q: qt, k: qt, v: qt, a: c.gated ? pt : null, gp: c.gated ? io.weight('gp', hostWeight(gp, [2, d.HV]), false) : null, b: beta ? pt : null, state: st, out: y, d,
        off: { q: QO, k: QO + KD, v: QO + 2 * KD, a: AO, b: BO }, norm: { w: io.weight('wn', hostWeight(wn, [d.DV]), false), gate: c.gate ? (c.zSep ? zt : pt) : null, gateOff: c.zSep ? 1 : ZO, eps: 1e-6 },
        conv: cv ? { x: pt, w: io.weight('cw', hostWeight(cw!, [QC, 1, cv.W]), false), state: cs!, act: cv.act, xOff: XO, siluFrom: cv.vSiluOnly ? 2 * KD : undefined } : null,
      };
      if (io.kind === 'gpu') expect((io.o as GpuBackend).variant(deltaRuleOp, x, selectCtx(io.o.adapter, seqs.map(s => s.len)))).toBe(kernel);   // the forced variant runs
      await deltaRule(io.o, x);
      const out: Record<string, Tensor> = { y, state: st };
      if (cs) out.conv = cs;
      return out;
    };
    if (gpuOnly) return await runOn(gpuBackend(), 'gpu', step, setup, body);
    return await checkBoth(step, setup, body, { seed: rng, what });
  } finally {
    if (prev === undefined) delete process.env.FLA_KERNEL_DELTA_RULE; else process.env.FLA_KERNEL_DELTA_RULE = prev;
  }
}

const DECODE4 = [{ slot: 3, len: 1 }, { slot: 1, len: 1 }, { slot: 0, len: 1 }, { slot: 2, len: 1 }];

describe.skipIf(!HAS_GPU)('delta_rule packed with the output norm', () => {
  test('select: fused for decode of packed inputs with a norm; recurrent unpacked or without the norm; chunk for long sequences', () => {
    const prev = process.env.FLA_KERNEL_DELTA_RULE;
    delete process.env.FLA_KERNEL_DELTA_RULE;
    try {
      const o = gpuBackend(), gpuAdapter = { ...o.adapter, type: 'discrete' };
      const P = { cols: 900 } as any, Q = { cols: 500 } as any, n = { w: {} as any, gate: P, eps: 1e-6 };
      const base = { d: { H: 2, HV: 2, DK: 64, DV: 128 }, q: Q, k: Q, v: Q, a: P, b: P, norm: n } as unknown as DeltaOp;
      const pick = (a: DeltaOp, lens: number[]) => o.variant(deltaRuleOp, a, selectCtx(gpuAdapter, lens));
      const fusedDefault = o.adapter.subgroups ? 'fused_sg' : 'fused';
      expect(pick(base, [1, 1, 1])).toBe(fusedDefault);
      expect(pick(base, [64])).toBe(fusedDefault);
      expect(o.variant(deltaRuleOp, base, selectCtx({ ...gpuAdapter, subgroups: false }, [1]))).toBe('fused');
      process.env.FLA_DELTA_FUSED_SG = '0';
      expect(pick(base, [1])).toBe('fused');
      delete process.env.FLA_DELTA_FUSED_SG;
      expect(pick(base, [65])).toBe('chunk');
      expect(pick({ ...base, norm: null }, [1])).toBe('recurrent');
      expect(pick({ ...base, k: { cols: 500 } as any }, [1])).toBe('recurrent');
      expect(pick({ ...base, b: { cols: 900 } as any }, [1])).toBe('recurrent');
      expect(pick({ ...base, norm: { ...n, gate: { cols: 256 } as any } }, [1])).toBe(fusedDefault);   // the gate may be a tensor of its own
      expect(pick({ ...base, d: { ...base.d, DV: 2 * o.adapter.maxInvocations } } as DeltaOp, [1])).toBe('recurrent');
    } finally {
      if (prev === undefined) delete process.env.FLA_KERNEL_DELTA_RULE; else process.env.FLA_KERNEL_DELTA_RULE = prev;
    }
  });
  for (const kernel of ['fused_sg', 'fused', 'recurrent', 'chunk'] as DeltaKernel[]) {
    for (const [DK, DV] of [[64, 64], [128, 128], [64, 128], [128, 64]] as const) {
      for (const r of [1, 2]) {
        const gated = (DK + r) % 3 !== 0, gate = (DV + r) % 2 === 1 || DK === DV, init = (DK + DV + r) % 2 === 0;
        test(`${kernel} DK=${DK} DV=${DV} GVA ${r} ${gated ? 'gated' : 'ungated'}${gate ? ' z' : ''}: lengths 1, 63, 64, 65 packed, then decode`, async () => {
          await runPacked(kernel, { DK, DV, H: 2, r, gated, gate, init }, PACKED);
          await runPacked(kernel, { DK, DV, H: 2, r, gated, gate, init: true }, DECODE4);
        });
      }
    }
    test(`${kernel} DeltaNet shape: no gate, no β, elu+1, v silu; DV = 80 (not a power of two)`, async () => {
      await runPacked(kernel, { DK: 64, DV: 64, H: 2, r: 1, gated: false, gate: false, beta: false, init: true, qkAct: 'elu', vSilu: true }, PACKED);
      await runPacked(kernel, { DK: 64, DV: 80, H: 1, r: 2, gated: true, gate: true, init: true }, PACKED);
    });
    test(`${kernel} a long prefill (${Math.min(LONG, 300)} tokens) beside a decode, DK=64 DV=128 GVA 2`, async () => {
      await runPacked(kernel, { DK: 64, DV: 128, H: 1, r: 2, gated: true, gate: true, init: true }, [{ slot: 1, len: Math.min(LONG, 300) }, { slot: 4, len: 1 }]);
    });
    test(`${kernel} Qwen3-Next layout: the z gate in a tensor of its own, GVA 2, DK = DV = 128`, async () => {
      await runPacked(kernel, { DK: 128, DV: 128, H: 2, r: 2, gated: true, gate: true, init: true, zSep: true }, PACKED);
      await runPacked(kernel, { DK: 128, DV: 128, H: 2, r: 2, gated: true, gate: true, init: true, zSep: true }, DECODE4);
    });
  }
  for (const rl of ['1', '2', '4', '8']) {
    test(`fused with FLA_DELTA_FUSED_RL=${rl} (row lanes a column): DK=128 DV=128 decode, DK=64 DV=80 packed, DK=128 DV=256 decode`, async () => {
      const prev = process.env.FLA_DELTA_FUSED_RL;
      process.env.FLA_DELTA_FUSED_RL = rl;
      try {
        await runPacked('fused', { DK: 128, DV: 128, H: 2, r: 2, gated: true, gate: true, init: true, zSep: true }, DECODE4);
        await runPacked('fused', { DK: 64, DV: 80, H: 1, r: 2, gated: true, gate: true, init: true }, PACKED);
        await runPacked('fused', { DK: 128, DV: 256, H: 2, r: 1, gated: true, gate: true, init: true }, DECODE4);
      } finally { if (prev === undefined) delete process.env.FLA_DELTA_FUSED_RL; else process.env.FLA_DELTA_FUSED_RL = prev; }
    });
  }
  // the short conv run by the op: in fused_sg's prologue (one value head a q/k head), else its own launch first
  for (const kernel of ['fused_sg', 'fused', 'recurrent', 'chunk'] as DeltaKernel[]) {
    test(`${kernel} with the short conv: W 4 silu, DK=64 DV=64 packed then decode; W 2 (v silu only) DK=128 DV=256 decode; GVA 2 W 3`, async () => {
      await runPacked(kernel, { DK: 64, DV: 64, H: 2, r: 1, gated: true, gate: true, init: true, conv: { W: 4, act: 'silu' } }, PACKED);
      await runPacked(kernel, { DK: 64, DV: 64, H: 2, r: 1, gated: true, gate: true, init: true, conv: { W: 4, act: 'silu' } }, DECODE4);
      await runPacked(kernel, { DK: 128, DV: 256, H: 2, r: 1, gated: true, gate: true, init: true, conv: { W: 2, act: 'none', vSiluOnly: true } }, DECODE4);
      await runPacked(kernel, { DK: 64, DV: 128, H: 1, r: 2, gated: true, gate: false, init: true, conv: { W: 3, act: 'silu' } }, PACKED);
    });
  }
  test('fused_sg with the short conv as its own launch (FLA_DELTA_CONV=0): DK=64 DV=64 packed', async () => {
    process.env.FLA_DELTA_CONV = '0';
    try { await runPacked('fused_sg', { DK: 64, DV: 64, H: 2, r: 1, gated: true, gate: true, init: true, conv: { W: 4, act: 'silu' } }, PACKED); }
    finally { delete process.env.FLA_DELTA_CONV; }
  });
  for (const rl of ['2', '4', '8', '16']) {   // 1 is raised to 32 rows a lane (4 here), as 4
    test(`fused_sg with FLA_DELTA_SG_RL=${rl} (row lanes a column quad): DK=128 DV=128 decode, DK=64 DV=80 packed, DK=128 DV=256 decode`, async () => {
      const prev = process.env.FLA_DELTA_SG_RL;
      process.env.FLA_DELTA_SG_RL = rl;
      try {
        await runPacked('fused_sg', { DK: 128, DV: 128, H: 2, r: 2, gated: true, gate: true, init: true, zSep: true }, DECODE4);
        await runPacked('fused_sg', { DK: 64, DV: 80, H: 1, r: 2, gated: true, gate: true, init: true }, PACKED);
        await runPacked('fused_sg', { DK: 128, DV: 256, H: 2, r: 1, gated: true, gate: true, init: true }, DECODE4);
      } finally { if (prev === undefined) delete process.env.FLA_DELTA_SG_RL; else process.env.FLA_DELTA_SG_RL = prev; }
    });
  }
  test('fusedSgGeometry: RL ≤ 8 within the smallest subgroup and 512 threads by default, ≤ 32 rows a lane, W·RL lanes a group; null without subgroups', () => {
    const prev = process.env.FLA_DELTA_SG_RL;
    delete process.env.FLA_DELTA_SG_RL;
    try {
      const ad = (subgroupSize: number, maxInvocations = 1024, subgroups = true) => ({ subgroups, subgroupSize, maxInvocations });
      expect(fusedSgGeometry(128, 256, ad(32))).toEqual({ RL: 8, W: 4, NT: 512 });
      expect(fusedSgGeometry(128, 128, ad(32))).toEqual({ RL: 8, W: 4, NT: 256 });
      expect(fusedSgGeometry(128, 256, ad(8))).toEqual({ RL: 8, W: 1, NT: 512 });
      expect(fusedSgGeometry(128, 256, ad(32, 256))).toEqual({ RL: 4, W: 4, NT: 256 });
      expect(fusedSgGeometry(64, 80, ad(4))).toEqual({ RL: 4, W: 1, NT: 80 });
      expect(fusedSgGeometry(128, 256, ad(32, 1024, false))).toBeNull();
      expect(fusedSgGeometry(128, 256, ad(24))).toBeNull();
      expect(fusedSgGeometry(512, 256, ad(8))).toBeNull();           // 64 rows a lane: more than the kernel unrolls
      expect(fusedSgGeometry(512, 256, ad(32, 1024))).toEqual({ RL: 16, W: 2, NT: 1024 });
      process.env.FLA_DELTA_SG_RL = '1';
      expect(fusedSgGeometry(128, 256, ad(32))).toEqual({ RL: 4, W: 4, NT: 256 });   // raised to 32 rows a lane
      process.env.FLA_DELTA_SG_RL = '16';
      expect(fusedSgGeometry(128, 256, ad(32))).toEqual({ RL: 16, W: 2, NT: 1024 });
      expect(fusedSgGeometry(128, 256, ad(32, 512))).toEqual({ RL: 8, W: 4, NT: 512 });
    } finally { if (prev === undefined) delete process.env.FLA_DELTA_SG_RL; else process.env.FLA_DELTA_SG_RL = prev; }
  });
  test('fusedRowLanes: the most that fit 512 threads by default, a forced count lowered to what divides DK and fits the adapter', () => {
    const prev = process.env.FLA_DELTA_FUSED_RL;
    delete process.env.FLA_DELTA_FUSED_RL;
    try {
      expect([fusedRowLanes(128, 256, 1024), fusedRowLanes(128, 128, 1024), fusedRowLanes(64, 80, 1024), fusedRowLanes(128, 128, 256), fusedRowLanes(6, 64, 1024)]).toEqual([2, 4, 4, 2, 2]);
      process.env.FLA_DELTA_FUSED_RL = '8';
      expect([fusedRowLanes(128, 256, 1024), fusedRowLanes(128, 128, 1024), fusedRowLanes(128, 128, 256), fusedRowLanes(4, 64, 1024)]).toEqual([4, 8, 2, 4]);
    } finally { if (prev === undefined) delete process.env.FLA_DELTA_FUSED_RL; else process.env.FLA_DELTA_FUSED_RL = prev; }
  });
  test('fused and fused_sg equal the unfused recurrent + rms_norm and the chunked + rms_norm on the GPU (1e-4)', async () => {
    for (const c of [{ DK: 128, DV: 128, H: 2, r: 2, gated: true, gate: true, init: true }, { DK: 64, DV: 128, H: 2, r: 1, gated: true, gate: true, init: true, zSep: true }] as PackedCase[]) for (const seqs of [PACKED, DECODE4]) for (const fk of ['fused', 'fused_sg'] as DeltaKernel[]) {
      const f = await runPacked(fk, c, seqs, true);
      for (const other of ['recurrent', 'chunk'] as DeltaKernel[]) {
        const u = await runPacked(other, c, seqs, true);
        for (const name of ['y', 'state']) expectClose(f[name]!.data, u[name]!.data, { rtol: 1e-4, what: `${fk} vs ${other} ${name}`, shape: f[name]!.shape });
      }
    }
  });
});
