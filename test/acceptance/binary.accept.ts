// Acceptance (scripts/acceptance.sh; not part of npm test): the standalone binary (npm run build → dist/fla) copied
// alone to an empty folder with no node_modules above it: --version, devices, and a greedy run of the embedded default
// model equal to the reference text.
import { beforeAll, describe, expect, test } from 'bun:test';
import { copyFileSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedModel } from '../helpers/fixtures.ts';
import { HAS_GPU } from '../helpers/gpu.ts';

const ROOT = join(import.meta.dir, '../..');
const kjv = sharedModel('kjv-rwkv7');

describe('standalone binary', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fla-bin-'));   // /tmp has no node_modules above it
  const bin = join(dir, 'fla');
  const env = { PATH: '/usr/bin:/bin', HOME: dir, XDG_CACHE_HOME: join(dir, 'cache'), TMPDIR: dir };
  const run = (...args: string[]) => runEnv({}, ...args);
  const runEnv = (extra: Record<string, string>, ...args: string[]) => {
    const p = Bun.spawnSync([bin, ...args], { cwd: dir, env: { ...env, ...extra } });
    return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
  };

  beforeAll(() => {
    const b = Bun.spawnSync(['bash', join(ROOT, 'scripts/build.sh')], { cwd: ROOT });
    if (b.exitCode !== 0) throw new Error(`build failed: ${b.stderr.toString()}`);
    copyFileSync(join(ROOT, 'dist/fla'), bin);
    Bun.spawnSync(['chmod', '+x', bin]);
    console.log(`dist/fla: ${(statSync(bin).size / 2 ** 20).toFixed(1)} MiB`);
  });

  test('--version names the version and the commit', () => {
    const r = run('--version');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^fla \d+\.\d+\.\d+ \(commit [0-9a-f]{7,}(-dirty)?,/);
  });

  test('devices', () => {
    const r = run('devices', '--json');
    expect(r.code).toBe(0);
    if (HAS_GPU) expect(JSON.parse(r.out).adapters.length).toBeGreaterThan(0);
  });

  test('both WebGPU bindings are embedded: bun-webgpu and dawn.node each open the adapter', () => {
    for (const b of ['bun-webgpu', 'dawn']) {
      const r = runEnv({ FLA_WEBGPU: b }, 'devices', '--json');
      expect(r.code).toBe(0);
      if (HAS_GPU) expect(JSON.parse(r.out).adapters.map((a: any) => a.binding)).toContain(b);
    }
    expect(runEnv({ FLA_WEBGPU: 'nope' }, 'devices').err).toContain('FLA_WEBGPU=nope: expected one of auto, bun-webgpu, dawn');
  });

  test.skipIf(!kjv)('greedy run of the embedded default model equals the reference text (twice: extract, then reuse)', () => {
    const want = JSON.parse(readFileSync(join(kjv!, 'reference.json'), 'utf8')).generations[0].text as string;
    for (let i = 0; i < 2; i++) {
      const r = run('run', 'In the beginning', '-t', '0', '-n', '64', '--device', HAS_GPU ? 'gpu' : 'cpu');
      expect(r.err).toBe('');
      expect(r.out).toBe(want);
    }
  });
});
