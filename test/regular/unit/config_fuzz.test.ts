// Fuzz of the config readers: thousands of mutated config.json objects for every architecture either parse or
// fail with our own error (FormatError / UnsupportedModelError), quickly, never with a crash or another error.
import { expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspectModelConfig } from '../../../src/runtime/model.ts';
import { FlaError } from '../../../src/util/errors.ts';
import { FIXTURES } from '../../helpers/fixtures.ts';
import { prng } from '../../helpers/allclose.ts';

const WEIRD: unknown[] = [null, 0, -1, 1.5, 1e300, -1e300, NaN, '', 'x', '64', true, false, [], [1, 2], {}, { a: 1 }, 2 ** 53, -0];

function configs(): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  try {
    for (const d of readdirSync(FIXTURES)) out.push(JSON.parse(readFileSync(join(FIXTURES, d, 'config.json'), 'utf8')));
  } catch { /* no fixtures: the defaults below still run */ }
  out.push({ model_type: 'rwkv7', hidden_size: 128, num_hidden_layers: 2, head_dim: 64, vocab_size: 100 });
  return out;
}

test('5000 mutated configs: parse or FlaError, within 10 s', () => {
  const p = prng('config fuzz');
  const rng = () => p.next();
  const base = configs();
  const t0 = performance.now();
  let ok = 0, refused = 0;
  for (let i = 0; i < 5000; i++) {
    const cfg: Record<string, unknown> = structuredClone(base[Math.floor(rng() * base.length)]!);
    const keys = Object.keys(cfg);
    const edits = 1 + Math.floor(rng() * 3);
    for (let e = 0; e < edits; e++) {
      const k = keys[Math.floor(rng() * keys.length)]!;
      const r = rng();
      if (r < 0.6) cfg[k] = WEIRD[Math.floor(rng() * WEIRD.length)];
      else if (r < 0.8) delete cfg[k];
      else if (typeof cfg[k] === 'number') cfg[k] = (cfg[k] as number) * Math.floor(rng() * 5 - 1);
      else cfg[`extra_${e}`] = WEIRD[Math.floor(rng() * WEIRD.length)];
    }
    try {
      const info = inspectModelConfig('fuzz', cfg);
      const d = info.arch.dims(info.cfg);
      expect(Number.isFinite(d.hidden) && Number.isFinite(d.vocab)).toBe(true);
      ok++;
    } catch (e) {
      if (!(e instanceof FlaError)) throw new Error(`config ${JSON.stringify(cfg)} threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
      expect((e as Error).message).not.toContain('\n');
      refused++;
    }
  }
  expect(performance.now() - t0).toBeLessThan(10_000);
  expect(ok).toBeGreaterThan(100);
  expect(refused).toBeGreaterThan(100);
});
