// The CLI as a user runs it (spawned `bun cli/main.ts`): results on stdout, one-line errors on stderr, exit codes.
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTensorFile } from '../../../src/load/safetensors.ts';
import { sharedModel } from '../../helpers/fixtures.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';

const ROOT = join(import.meta.dir, '../../..');
const kjv = sharedModel('kjv-rwkv7');
const DEVICE = HAS_GPU ? 'gpu' : 'cpu';

function fla(...args: string[]) {
  const p = Bun.spawnSync([process.execPath, join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, env: { ...process.env, FLA_LOG: 'info' } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

describe('fla run', () => {
  test.skipIf(!kjv)('default model, greedy: the same text as the reference generation gen.0', () => {
    const want = JSON.parse(readFileSync(join(kjv!, 'reference.json'), 'utf8')).generations[0].text as string;
    const r = fla('run', 'In the beginning', '--temperature', '0', '--max-tokens', '64', '--device', DEVICE);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toBe(want);
  });

  test('--json gives one object with ids, text and timings; --ids and --seed reproduce', () => {
    const a = fla('run', '--ids', '5,6,7', '-n', '8', '--seed', '42', '--json', '--device', DEVICE);
    expect(a.code).toBe(0);
    const j = JSON.parse(a.out);
    expect(j.prompt_ids).toEqual([5, 6, 7]);
    expect(j.generated_ids.length).toBeLessThanOrEqual(8);
    expect(typeof j.text).toBe('string');
    expect(j.timings.prompt_tokens).toBe(3);
    const b = JSON.parse(fla('run', '--ids', '5,6,7', '-n', '8', '--seed', '42', '--json', '--device', DEVICE).out);
    expect(b.generated_ids).toEqual(j.generated_ids);
  });

  test('a stop string ends generation and is not printed', () => {
    const r = fla('run', 'And God said', '-t', '0', '-n', '40', '--stop', ',', '--json', '--device', DEVICE);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.text).not.toContain(',');
    expect(j.finish_reason).toBe('stop');
  });

  test('--device cpu runs the CPU backend', () => {
    const r = fla('run', '--ids', '1,2', '-n', '2', '-t', '0', '--device', 'cpu', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).device).toBe('cpu');
  });

  const bad: [string[], RegExp][] = [
    [['run', 'x', '--max-tokens=-2'], /--max-tokens must be an integer ≥ 0, or -1 for "until EOS or the context", got "-2"/],
    [['run', 'x', '--top-p', '2'], /--top-p must be in \(0, 1\]/],
    [['run', 'x', '--temperature', 'hot'], /--temperature must be a number/],
    [['run', 'x', '--min-p', '1.5'], /--min-p/],
    [['run', 'x', '--top-k', '2.5'], /--top-k/],
    [['run', 'x', '--seed=-3'], /--seed/],
    [['run', 'x', '--device', 'tpu'], /--device must be gpu, gpu:N or cpu/],
    [['run', 'x', '--ids', '1,a'], /--ids must be comma-separated/],
    [['run', 'x', '--bogus'], /^error: unknown option --bogus for fla run; see fla run --help$/m],
    [['run', ''], /the prompt is empty/],
    [['run'], /missing prompt/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['run', './no/such/dir', 'hi'], /no such model folder/],
    [['ppl', '--window', '0', '--ids', 'x.json'], /--window must be an integer/],
    [['ppl'], /exactly one of --text FILE or --ids FILE/],
  ];
  for (const [args, re] of bad) {
    test(`usage error: fla ${args.join(' ')}`, () => {
      const r = fla(...args);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(re);
    });
  }

  test('a folder with a broken config.json: one line, exit 1', () => {
    const d = mkdtempSync(join(tmpdir(), 'fla-bad-'));
    writeFileSync(join(d, 'config.json'), '{"model_type": "rwkv7", ');
    const r = fla('run', d, 'hi');
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/config.json: invalid JSON/);
    writeFileSync(join(d, 'config.json'), '{"model_type": "mamba9"}');
    const u = fla('run', d, 'hi');
    expect(u.code).toBe(1);
    expect(u.err).toMatch(/model_type "mamba9" is not supported \(supported: .*rwkv7/);
  });
});

describe('fla devices / --help / --version', () => {
  test('devices lists the adapter and the cpu backend', () => {
    const r = fla('devices', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.cpu).toBe(true);
    if (HAS_GPU) expect(j.adapters[0].backend).toBe('vulkan');
  });
  test('--help and --version', () => {
    expect(fla('--help').out).toContain('run [model] [...prompt]');
    expect(fla('run', '--help').out).toContain('--repetition-penalty');
    expect(fla('--version').out).toMatch(/^fla \d+\.\d+\.\d+ \(commit /);
  });
});

describe.skipIf(!kjv)('fla ppl', () => {
  // The first windows of val.ids against the reference's partial loss (the whole corpus: scripts/acceptance.sh).
  const partial = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/kjv-ppl-windows.json'), 'utf8')).models as
    Record<string, { windows: number; window: number; mean_nll: number; tolerance: number }>;
  for (const [name, want] of Object.entries(partial)) {
    const dir = sharedModel(name);
    test.skipIf(!dir)(`${DEVICE}: the first ${want.windows} windows of val.ids of ${name} within ${want.tolerance} of the reference loss`, () => {
      const ids = readTensorFile(join(dir!, 'reference.safetensors')).get('val.ids')!.data as Int32Array;
      const f = join(mkdtempSync(join(tmpdir(), 'fla-ppl-')), 'val.json');
      writeFileSync(f, JSON.stringify(Array.from(ids.subarray(0, want.windows * want.window + 1))));
      // the embedded copy of kjv-rwkv7 is the default model; kjv-llama is read from shared/
      const args = ['--ids', f, '--window', String(want.window), '--json', '--device', DEVICE];
      const r = name === 'kjv-rwkv7' ? fla('ppl', ...args) : fla('ppl', dir!, ...args);
      expect(r.code).toBe(0);
      const j = JSON.parse(r.out);
      expect(j.windows).toBe(want.windows);
      expect(Math.abs(j.mean_nll - want.mean_nll) / want.mean_nll).toBeLessThan(want.tolerance);
    });
  }

  test('--text tokenizes a text file', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'fla-ppl-')), 'a.txt');
    writeFileSync(f, readFileSync(join(kjv!, '..', '..', 'data', 'kjv.txt'), 'utf8').slice(0, 3000));
    const r = fla('ppl', '--text', f, '--window', '64', '--json', '--device', DEVICE);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.windows).toBeGreaterThan(3);
    expect(j.ppl).toBeGreaterThan(1);
    expect(j.ppl).toBeLessThan(1000);
  });
});
