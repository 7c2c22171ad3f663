// fla bench smoke tests on whatever adapter there is (lavapipe in CI): the per-kernel profile (a decode step at each
// batch size, the prefill) and the run without it on the tiny rwkv7 fixture; synthetic rwkv7-0.1b weights made on
// the device (their size and values), and the synthetic bench end to end on the CPU backend. No speed assertion.
// The synthetic bench on the GPU compiles the decode kernels at hidden size 768 (minutes on lavapipe with a cold
// shader cache): it is in test/acceptance/bench.accept.ts (scripts/acceptance.sh).
import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { GpuBackend } from '../../../src/backend/gpu.ts';
import { syntheticModel } from '../../../src/bench/synthetic.ts';
import { bf16ToF32 } from '../../../src/util/dtype.ts';
import { fixture } from '../../helpers/fixtures.ts';
import { gpu, HAS_GPU } from '../../helpers/gpu.ts';

const ROOT = join(import.meta.dir, '../../..');
const T = 600_000;   // spawned runs compiling shaders on a loaded 2-core machine (npm test's own limit)
const fla = (...args: string[]) => {
  const p = Bun.spawnSync([process.execPath, join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
};

test('fla bench --synthetic rwkv7-0.1b on the CPU backend (smoke)', () => {
  const r = fla('bench', '--synthetic', 'rwkv7-0.1b', '-p', '4', '-n', '2', '-r', '1', '-b', '1', '--json', '--device', 'cpu');
  expect(r.code, r.err).toBe(0);
  const j = JSON.parse(r.out);
  expect(j.model).toBe('synthetic rwkv7-0.1b');
  expect(j.weight_bytes).toBeGreaterThan(300e6);
  expect(j.results.map((x: { test: string }) => x.test)).toEqual(['pp4', 'ttft (pp4)', 'tg2']);
  for (const x of j.results) expect(x.mean).toBeGreaterThan(0);
  expect(j.ceilings).toBeNull();
  expect(j.kernels).toEqual({});
}, T);

test.skipIf(!HAS_GPU)('synthetic weights on the device: rwkv7-0.1b has its size; bf16 matrices and f32 vectors are uniform in ±scale, one seed each', async () => {
  const o = new GpuBackend(gpu!);
  syntheticModel('rwkv7-0.1b', o);
  await o.settle();
  expect(o.uploadedBytes).toBeGreaterThan(300e6);
  const fill = async (seed: number, scale: number, matrix: boolean) => {
    const n = 64 * 1000;
    const w = o.weight(`w${seed}`, { shape: matrix ? [64, 1000] : [n], dtype: matrix ? 'bf16' : 'f32', synthetic: { seed, scale } }, matrix) as unknown as { view: { buffer: GPUBuffer; size: number }; dtype: string };
    await o.settle();
    expect(w.dtype).toBe(matrix ? (o.f16Weights ? 'f16' : 'bf16') : 'f32');
    const raw = await gpu!.read(w.view.buffer, 0, w.view.size);
    return matrix && w.dtype === 'bf16' ? bf16ToF32(new Uint16Array(raw, 0, n)) : matrix ? null : new Float32Array(raw, 0, n);
  };
  for (const matrix of [true, false]) {
    const a = await fill(11, 0.5, matrix), b = await fill(12, 0.5, matrix);
    if (!a || !b) continue;   // f16 weights (adapters with f16 subgroup matrices): the conversion has its own test
    let max = 0, sum = 0, sumAbs = 0, same = 0;
    for (let i = 0; i < a.length; i++) { max = Math.max(max, Math.abs(a[i]!)); sum += a[i]!; sumAbs += Math.abs(a[i]!); if (a[i] === b[i]) same++; }
    expect(max).toBeLessThanOrEqual(0.5);
    expect(max).toBeGreaterThan(0.49);
    expect(Math.abs(sum / a.length)).toBeLessThan(0.01);
    expect(Math.abs(sumAbs / a.length - 0.25)).toBeLessThan(0.01);   // E|U(−s, s)| = s/2
    expect(same).toBeLessThan(a.length / 100);                         // another seed, other values
  }
}, T);

const tiny = fixture('rwkv7-tiny');
test.skipIf(!HAS_GPU || !tiny)('fla bench on rwkv7-tiny: per-kernel tables of a decode step at every batch size and of the prefill', () => {
  const r = fla('bench', tiny!, '-p', '16', '-n', '4', '-r', '1', '-b', '1,2', '--json', '--device', 'gpu');
  expect(r.code).toBe(0);
  const j = JSON.parse(r.out);
  expect(j.results.map((x: { test: string }) => x.test)).toEqual(['pp16', 'ttft (pp16)', 'tg4', 'tg b=2']);
  for (const x of j.results) expect(x.mean).toBeGreaterThan(0);
  expect(j.ceilings.copy_gbs).toBeGreaterThan(0);
  expect(Object.keys(j.kernels)).toEqual(['decode step (batch 1)', 'decode step (batch 2)', 'prefill (16 tokens)']);
  for (const rows of Object.values(j.kernels) as { kernel: string; ms: number }[][]) {
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.reduce((t, k) => t + k.ms, 0)).toBeGreaterThan(0);
  }
}, T);

test.skipIf(!HAS_GPU || !tiny)('fla bench on rwkv7-tiny --no-profile: the figures and ceilings, no kernel tables', () => {
  const r = fla('bench', tiny!, '-p', '16', '-n', '4', '-r', '1', '-b', '1', '--json', '--no-profile', '--device', 'gpu');
  expect(r.code, r.err).toBe(0);
  const j = JSON.parse(r.out);
  expect(j.results.map((x: { test: string }) => x.test)).toEqual(['pp16', 'ttft (pp16)', 'tg4']);
  for (const x of j.results) expect(x.mean).toBeGreaterThan(0);
  expect(j.ceilings.copy_gbs).toBeGreaterThan(0);
  expect(j.kernels).toEqual({});
}, T);

test('unknown synthetic shape: one-line usage error', () => {
  const r = fla('bench', '--synthetic', 'gpt-9', '--device', 'cpu');
  expect(r.code).toBe(2);
  expect(r.err).toMatch(/--synthetic gpt-9: unknown shape \(known: rwkv7-0.1b/);
}, T);
