// Kernel-test inputs are replayable: FLA_TEST_SEED=<seed> gives every test the same inputs again (each test's
// stream depends only on the base seed and its tag), the seed is printed, and a bad seed is an error.
import { expect, test } from 'bun:test';
import { join } from 'node:path';

const helper = join(import.meta.dir, '../../helpers/allclose.ts');
const script = `import { prng, BASE_SEED } from ${JSON.stringify(helper)}; const r = prng('tag'); console.log(BASE_SEED, r.next(), r.normal());`;

function run(seed?: string): { out: string; err: string; code: number } {
  const env = { ...process.env };
  if (seed === undefined) delete env.FLA_TEST_SEED; else env.FLA_TEST_SEED = seed;
  const p = Bun.spawnSync([process.execPath, '-e', script], { env });
  return { out: p.stdout.toString().trim(), err: p.stderr.toString(), code: p.exitCode ?? -1 };
}

test('FLA_TEST_SEED replays the same inputs; the seed is printed; other seeds differ', () => {
  const a = run('12345'), b = run('12345'), c = run('12346');
  expect(a.code).toBe(0);
  expect(a.out).toBe(b.out);
  expect(a.out.startsWith('12345 ')).toBe(true);
  expect(a.err).toContain('replay with FLA_TEST_SEED=12345');
  expect(c.out.split(' ').slice(1)).not.toEqual(a.out.split(' ').slice(1));
  const clock = run();
  expect(clock.err).toMatch(/replay with FLA_TEST_SEED=\d+/);
});

test('a bad FLA_TEST_SEED is an error naming it', () => {
  const r = run('abc');
  expect(r.code).not.toBe(0);
  expect(r.err).toContain('FLA_TEST_SEED=abc');
});
