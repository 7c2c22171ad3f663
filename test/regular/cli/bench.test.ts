// fla bench smoke test on whatever adapter there is (lavapipe in CI): synthetic rwkv7-0.1b weights made on the
// device, every figure present and positive, per-kernel rows with GPU times. No speed assertion.
import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { HAS_GPU } from '../../helpers/gpu.ts';

const ROOT = join(import.meta.dir, '../../..');
const fla = (...args: string[]) => {
  const p = Bun.spawnSync([process.execPath, join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
};

test.skipIf(!HAS_GPU)('fla bench --synthetic rwkv7-0.1b (smoke)', () => {
  const r = fla('bench', '--synthetic', 'rwkv7-0.1b', '-p', '16', '-n', '4', '-r', '1', '-b', '1,2', '--json', '--device', 'gpu');
  expect(r.code).toBe(0);
  const j = JSON.parse(r.out);
  expect(j.model).toBe('synthetic rwkv7-0.1b');
  expect(j.weight_bytes).toBeGreaterThan(300e6);
  expect(j.results.map((x: { test: string }) => x.test)).toEqual(['pp16', 'ttft (pp16)', 'tg4', 'tg b=2']);
  for (const x of j.results) expect(x.mean).toBeGreaterThan(0);
  expect(j.ceilings.copy_gbs).toBeGreaterThan(0);
  const decode = j.kernels['decode step (batch 1)'];
  expect(decode.filter((k: { kernel: string }) => k.kernel.startsWith('matmul_gemv')).reduce((t: number, k: { ms: number }) => t + k.ms, 0)).toBeGreaterThan(0);
});

test('unknown synthetic shape: one-line usage error', () => {
  const r = fla('bench', '--synthetic', 'gpt-9', '--device', 'cpu');
  expect(r.code).toBe(2);
  expect(r.err).toMatch(/--synthetic gpt-9: unknown shape \(known: rwkv7-0.1b/);
});
