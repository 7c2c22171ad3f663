// Acceptance (scripts/acceptance.sh; not part of npm test): fla bench --synthetic rwkv7-0.1b on the GPU adapter,
// weights made on the device, every figure present and positive, no kernel tables with --no-profile. On lavapipe
// with a cold shader cache its decode kernels at hidden size 768 take minutes to compile, so npm test checks the
// synthetic weights on the device and this bench on the CPU backend instead (test/regular/cli/bench.test.ts).
import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { HAS_GPU } from '../helpers/gpu.ts';

const ROOT = join(import.meta.dir, '../..');

test.skipIf(!HAS_GPU)('fla bench --synthetic rwkv7-0.1b on the GPU (smoke)', () => {
  const p = Bun.spawnSync([process.execPath, join(ROOT, 'cli/main.ts'), 'bench', '--synthetic', 'rwkv7-0.1b', '-p', '8', '-n', '2', '-r', '1', '-b', '1', '--json', '--no-profile', '--device', 'gpu'], { cwd: ROOT });
  expect(p.exitCode, p.stderr.toString()).toBe(0);
  const j = JSON.parse(p.stdout.toString());
  expect(j.model).toBe('synthetic rwkv7-0.1b');
  expect(j.weight_bytes).toBeGreaterThan(300e6);
  expect(j.results.map((x: { test: string }) => x.test)).toEqual(['pp8', 'ttft (pp8)', 'tg2']);
  for (const x of j.results) expect(x.mean).toBeGreaterThan(0);
  expect(j.ceilings.copy_gbs).toBeGreaterThan(0);
  expect(j.kernels).toEqual({});
});
