// fla bench smoke tests on whatever adapter there is (lavapipe in CI): synthetic rwkv7-0.1b weights made on the
// device with every figure present and positive; the per-kernel profile (a decode step at each batch size, the
// prefill) on the tiny rwkv7 fixture, which is far cheaper to profile on a CPU adapter. No speed assertion.
import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { fixture } from '../../helpers/fixtures.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';

const ROOT = join(import.meta.dir, '../../..');
const fla = (...args: string[]) => {
  const p = Bun.spawnSync([process.execPath, join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
};

test.skipIf(!HAS_GPU)('fla bench --synthetic rwkv7-0.1b (smoke)', () => {
  const r = fla('bench', '--synthetic', 'rwkv7-0.1b', '-p', '8', '-n', '2', '-r', '1', '-b', '1', '--json', '--no-profile', '--device', 'gpu');
  expect(r.code).toBe(0);
  const j = JSON.parse(r.out);
  expect(j.model).toBe('synthetic rwkv7-0.1b');
  expect(j.weight_bytes).toBeGreaterThan(300e6);
  expect(j.results.map((x: { test: string }) => x.test)).toEqual(['pp8', 'ttft (pp8)', 'tg2']);
  for (const x of j.results) expect(x.mean).toBeGreaterThan(0);
  expect(j.ceilings.copy_gbs).toBeGreaterThan(0);
  expect(j.kernels).toEqual({});
});

const tiny = fixture('rwkv7-tiny');
test.skipIf(!HAS_GPU || !tiny)('fla bench on rwkv7-tiny: per-kernel tables of a decode step at every batch size and of the prefill', () => {
  const r = fla('bench', tiny!, '-p', '16', '-n', '4', '-r', '1', '-b', '1,2', '--json', '--device', 'gpu');
  expect(r.code).toBe(0);
  const j = JSON.parse(r.out);
  expect(j.results.map((x: { test: string }) => x.test)).toEqual(['pp16', 'ttft (pp16)', 'tg4', 'tg b=2']);
  for (const x of j.results) expect(x.mean).toBeGreaterThan(0);
  expect(Object.keys(j.kernels)).toEqual(['decode step (batch 1)', 'decode step (batch 2)', 'prefill (16 tokens)']);
  for (const rows of Object.values(j.kernels) as { kernel: string; ms: number }[][]) {
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.reduce((t, k) => t + k.ms, 0)).toBeGreaterThan(0);
  }
});

test('unknown synthetic shape: one-line usage error', () => {
  const r = fla('bench', '--synthetic', 'gpt-9', '--device', 'cpu');
  expect(r.code).toBe(2);
  expect(r.err).toMatch(/--synthetic gpt-9: unknown shape \(known: rwkv7-0.1b/);
});
