// dawn.node crashes once the GPU instance create() returned is garbage-collected while its device is in use
// (src/gpu/binding.ts keeps every instance): a device used through GCs and timer turns must survive.
import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { bunWebgpuBuilt } from '../../../src/gpu/binding.ts';

test.skipIf(!bunWebgpuBuilt())('a dawn.node device outlives every reference but the binding layer\'s own (300 error scopes, GCs, timers)', () => {
  const p = Bun.spawnSync([process.execPath, join(import.meta.dir, '../../helpers/dawn_lifetime.ts')], { stderr: 'pipe' });
  expect({ code: p.exitCode, signal: p.signalCode ?? null, out: p.stdout.toString().trim().split('\n').at(-1) }).toEqual({ code: 0, signal: null, out: 'done' });
}, 120000);
