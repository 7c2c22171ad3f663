// First run and device choice (a long kernel compile is announced; a software-only adapter loses to the CPU backend),
// and fla bench's figures: rooflines never above 100 % and numbers in JSON, no "± 0" with one repetition, CPU weights
// counted, hub ids as in fla run.
import { describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { formatRoofline, formatStat, roofline } from '../../../cli/bench.ts';
import { announceCompiles } from '../../../src/runtime/open.ts';
import { sharedModel } from '../../helpers/fixtures.ts';
import { gpu } from '../../helpers/gpu.ts';

const ROOT = join(import.meta.dir, '../../..');
const kjv = sharedModel('kjv-rwkv7');
function fla(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawnSync([process.execPath, join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

describe('first-run kernel compilation', () => {
  test('said once, after more than a second of compiling in all', () => {
    const said: string[] = [];
    const g = { onCompiled: null as ((l: string, ms: number) => void) | null };
    announceCompiles(g, m => said.push(m));
    g.onCompiled!('a', 400); g.onCompiled!('b', 500);
    expect(said).toEqual([]);
    g.onCompiled!('c', 200); g.onCompiled!('d', 5000);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/^compiling GPU kernels … /);
  });
  test.skipIf(!gpu)('the device calls the hook for each compile', async () => {
    const said: string[] = [];
    announceCompiles(gpu!, m => said.push(m), -1);
    await gpu!.pipeline({ label: 'announce_probe', source: '@compute @workgroup_size(1) fn announce_probe() {}' });
    gpu!.onCompiled = null;
    expect(said).toHaveLength(1);
  });
});

describe.skipIf(!kjv)('device choice', () => {
  test('auto: a software-only adapter runs on the CPU backend, and says so; a hardware one runs on the GPU', () => {
    const r = fla(['run', '--ids', '1,2', '-n', '1', '--json'], { FLA_LOG: 'info' });
    expect(r.code).toBe(0);
    const device = JSON.parse(r.out).device as string;
    if (gpu && gpu.summary.type === 'cpu') {
      expect(device).toBe('cpu');
      expect(r.err).toMatch(/the only GPU adapter is a software one \(.*\): running on the CPU backend, which is faster here/);
    } else if (gpu) expect(device).not.toBe('cpu');
  }, 60_000);
});

describe('fla bench figures', () => {
  test('roofline: a result above the estimate is capped at 100 % and says the estimate is low', () => {
    const r = roofline(8.9, 5.97, 'bandwidth')!;
    expect(r).toEqual({ fraction: 1, bound: 5.97, kind: 'bandwidth', capped: true });
    expect(formatRoofline(r)).not.toMatch(/\d{3,}\.\d%/);
    expect(formatRoofline(r)).toContain('at or above the estimated 5.97 t/s');
    expect(formatRoofline(roofline(3, 6, 'bandwidth'))).toBe('50.0% of 6.00 t/s (bandwidth)');
    expect(roofline(3, null, 'x')).toBeNull();
  });
  test('one repetition: the mean alone; several: mean ± std', () => {
    expect(formatStat({ mean: 12.345, std: 0, n: 1 })).toBe('12.3');
    expect(formatStat({ mean: 12.345, std: 0.5, n: 3 })).toBe('12.3 ± 0.50');
  });
  test.skipIf(!kjv)('on the CPU: weights counted in the header, numbers in JSON, std null for one repetition', () => {
    const j = JSON.parse(fla(['bench', kjv!, '--device', 'cpu', '-p', '8', '-n', '2', '-r', '1', '--json']).out);
    expect(j.weight_bytes).toBeGreaterThan(7e6 * 4 * 0.9);   // 7.3 M parameters held as f32
    for (const x of j.results) {
      expect(typeof x.mean).toBe('number');
      expect(x.std).toBeNull();
      expect(x.roofline === null || typeof x.roofline.fraction === 'number').toBe(true);
    }
    const t = fla(['bench', kjv!, '--device', 'cpu', '-p', '8', '-n', '2', '-r', '1']);
    expect(t.out).not.toContain('±');
    expect(t.out).toMatch(/\(rwkv7, [1-9]\d*\.\d MiB of weights\)/);
  }, 120_000);
  test('a hub id goes through the hub as in fla run', () => {
    const r = fla(['bench', 'test-org/not-cached', '--offline', '--device', 'cpu'], { HF_HUB_CACHE: '/nonexistent-fla-cache' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: test-org\/not-cached is not in the Hugging Face cache/);
  });
});
