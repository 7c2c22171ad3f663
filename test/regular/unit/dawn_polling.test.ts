// dawn.node's polling loop on a CPU adapter (src/gpu/binding.ts throttleDawnPolling): while the GPU works it polls
// every 1 ms after 0.5 ms of spinning, instead of ~60 setImmediate turns a millisecond on the cores lavapipe runs on.
import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { HAS_GPU } from '../../helpers/gpu.ts';

test.skipIf(!HAS_GPU)('dawn.node on a CPU adapter: at most a few polls per millisecond of waiting', () => {
  const p = Bun.spawnSync([process.execPath, join(import.meta.dir, '../../helpers/dawn_polling.ts')], { stderr: 'pipe' });
  expect(p.exitCode, p.stderr.toString()).toBe(0);
  const [type, calls, ms] = p.stdout.toString().trim().split('\n').at(-1)!.split(' ');
  if (type !== 'cpu') return;   // GPUs keep dawn.node's own loop
  expect(Number(ms)).toBeGreaterThanOrEqual(300);
  expect(Number(calls)).toBeLessThan(5 * Number(ms));
}, 120000);
