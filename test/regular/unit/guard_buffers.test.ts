// FLA_GUARD_BUFFERS=1 (src/gpu/guard.ts) must catch an out-of-bounds write and turn an out-of-bounds read into the
// canary pattern, on each binding and with robustness on or off: test/helpers/guard_probe.ts plants both in one
// kernel, in a child process per configuration (the instance takes its toggles once per process).
import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { bunWebgpuBuilt } from '../../../src/gpu/binding.ts';
import { CANARY_WORD } from '../../../src/gpu/guard.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';

interface Probe { binding: string; guarded: boolean; robust: boolean; type: string; read: number | null; past64: number | null; wg: number | null; error: string | null }

function probe(env: Record<string, string>, guard = '1'): Probe {
  const p = Bun.spawnSync([process.execPath, join(import.meta.dir, '../../helpers/guard_probe.ts')], { env: { ...process.env, FLA_GUARD_BUFFERS: guard, ...env }, stderr: 'pipe' });
  if (p.exitCode !== 0) throw new Error(`guard_probe exited ${p.exitCode}: ${p.stderr.toString().trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(p.stdout.toString().trim().split('\n').at(-1)!);
}

const bindings = bunWebgpuBuilt() ? ['dawn', 'bun-webgpu'] : ['dawn'];
for (const binding of bindings) for (const robustness of ['0', '1']) {
  const env = { FLA_WEBGPU: binding, FLA_DAWN_ROBUSTNESS: robustness };
  test.skipIf(!HAS_GPU)(`${binding}, FLA_DAWN_ROBUSTNESS=${robustness}: a write one word past a buffer fails the readback, naming the buffer`, () => {
    const r = probe({ ...env, GUARD_PROBE_PAST: '1' });
    expect(r.binding).toBe(binding);
    expect(r.guarded).toBe(true);
    expect(r.error, JSON.stringify(r)).toContain("FLA_GUARD_BUFFERS: out-of-bounds write: 'probe dst' (64 bytes): written past its end at +0..+4 bytes (first word 0x0000600d)");
  }, 60000);
  test.skipIf(!HAS_GPU)(`${binding}, FLA_DAWN_ROBUSTNESS=${robustness}: in bounds passes; reads past the end see the canary`, () => {
    const r = probe({ ...env, GUARD_PROBE_PAST: '0' });
    expect(r, JSON.stringify(r)).toMatchObject({ binding, guarded: true, read: 115, past64: CANARY_WORD, error: null });
  }, 60000);
}

// What FLA_DAWN_ROBUSTNESS does where these tests run: a workgroup array read one past its end is clamped to its last
// element (4) with robustness, and reads what lies past it without (lavapipe: the next array's first word, 11).
// Robustness is the default (binding.ts dawnRobust); bun-webgpu always keeps it (it takes no such toggle).
test.skipIf(!HAS_GPU)('dawn.node: FLA_DAWN_ROBUSTNESS=0 removes the index clamping; =1 and the default keep it', () => {
  const off = probe({ FLA_WEBGPU: 'dawn', FLA_DAWN_ROBUSTNESS: '0', GUARD_PROBE_PAST: '1' }, '0');
  const on = probe({ FLA_WEBGPU: 'dawn', FLA_DAWN_ROBUSTNESS: '1', GUARD_PROBE_PAST: '1' }, '0');
  const dflt = probe({ FLA_WEBGPU: 'dawn', FLA_DAWN_ROBUSTNESS: '', GUARD_PROBE_PAST: '1' }, '0');
  expect(off, JSON.stringify(off)).toMatchObject({ binding: 'dawn', robust: false, error: null });
  expect(off.wg).not.toBe(4);
  expect(on, JSON.stringify(on)).toMatchObject({ binding: 'dawn', robust: true, wg: 4, error: null });
  expect(dflt, JSON.stringify(dflt)).toMatchObject({ binding: 'dawn', robust: true, wg: 4, error: null });
}, 60000);
