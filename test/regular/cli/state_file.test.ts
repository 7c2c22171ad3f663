// fla run --save-state / --load-state as a user runs them: a saved prompt state resumed later gives the tokens of
// the whole prompt run at once; a foreign, truncated or other-model file, or a bad flag, is one line and exit ≠ 0.
import { describe, expect, test } from 'bun:test';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, sharedModel } from '../../helpers/fixtures.ts';

const ROOT = join(import.meta.dir, '../../..');
const kjv = sharedModel('kjv-rwkv7');
const tiny = fixture('rwkv7-tiny');
const gla = fixture('gla-tiny');
const llama = fixture('llama-tiny');
// the CPU backend: these test the file and the flags (the GPU's snapshots are covered in test/varlen/prefix_cache*)
const DEVICE = 'cpu';

function fla(...args: string[]) {
  const p = Bun.spawnSync([process.execPath, join(ROOT, 'cli/main.ts'), ...args, '--device', DEVICE], { cwd: ROOT });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

function expectOneLine(r: { code: number | null; out: string; err: string }, re: RegExp) {
  const lines = r.err.trim().split('\n').filter(l => !/loader_|^Warning:/.test(l));
  expect(lines, r.err).toHaveLength(1);
  expect(r.err).toMatch(re);
  expect(r.out).toBe('');
  expect(r.code).not.toBe(0);
}

describe.skipIf(!tiny || !llama)(`fla run --save-state / --load-state (${DEVICE})`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'fla-state-cli-'));
  const A = '5,17,230,41,9,77,3,120,64', B = '11,12,13,200';

  for (const [name, model] of [['rwkv7-tiny', tiny], ['llama-tiny', llama]] as const) {
    test(`${name}: save after a prompt, load and continue = the whole prompt at once`, () => {
      const file = join(dir, `${name}.state`);
      const save = fla('run', model!, '--ids', A, '-n', '0', '--save-state', file);
      expect(save.err).toBe('');
      expect(save.code).toBe(0);
      const resumed = fla('run', model!, '--ids', B, '--load-state', file, '-t', '0', '-n', '8', '--json');
      expect(resumed.err).toBe('');
      const whole = fla('run', model!, '--ids', `${A},${B}`, '-t', '0', '-n', '8', '--json');
      expect(JSON.parse(resumed.out).generated_ids).toEqual(JSON.parse(whole.out).generated_ids);
      expect(JSON.parse(resumed.out).generated_ids).toHaveLength(8);
    });
  }

  test('a foreign, truncated or other-model state file is a one-line error', () => {
    const file = join(dir, 'rwkv7-tiny.state');
    fla('run', tiny!, '--ids', A, '-n', '0', '--save-state', file);
    const good = readFileSync(file);
    const foreign = join(dir, 'foreign.state');
    writeFileSync(foreign, 'not a state file at all, just text\n');
    expectOneLine(fla('run', tiny!, '--ids', B, '--load-state', foreign), /foreign\.state: not an fla state file/);
    const cut = join(dir, 'cut.state');
    writeFileSync(cut, good.subarray(0, good.length - 100));
    expectOneLine(fla('run', tiny!, '--ids', B, '--load-state', cut), /cut\.state: truncated state file/);
    writeFileSync(cut, good.subarray(0, 30));
    expectOneLine(fla('run', tiny!, '--ids', B, '--load-state', cut), /cut\.state: truncated state file/);
    expectOneLine(fla('run', gla!, '--ids', B, '--load-state', file), /saved for a rwkv7 model, not this gla model/);
    // same architecture, one weight changed (the last bytes of model.safetensors)
    const other = mkdtempSync(join(tmpdir(), 'fla-state-other-'));
    cpSync(tiny!, other, { recursive: true });
    const w = readFileSync(join(other, 'model.safetensors'));
    w[w.length - 1] ^= 0x55;
    writeFileSync(join(other, 'model.safetensors'), w);
    expectOneLine(fla('run', other, '--ids', B, '--load-state', file), /saved for a model with other weights/);
    copyFileSync(join(tiny!, 'model.safetensors'), join(other, 'model.safetensors'));
    const cfg = JSON.parse(readFileSync(join(other, 'config.json'), 'utf8'));
    writeFileSync(join(other, 'config.json'), JSON.stringify({ ...cfg, norm_eps: (cfg.norm_eps ?? 1e-5) * 2 }));
    expectOneLine(fla('run', other, '--ids', B, '--load-state', file), /saved for a model with another config\.json/);
    expectOneLine(fla('run', tiny!, '--ids', B, '--load-state', join(dir, 'missing.state')), /missing\.state: no such state file/);
  });

  test('bad flags are one-line usage errors', () => {
    expectOneLine(fla('run', tiny!, '--ids', A, '--state-cache-mb', '5'), /--state-cache-mb applies to --prompts/);
    expectOneLine(fla('run', tiny!, '--ids', A, '--save-state'), /--save-state/);
    const p = join(dir, 'p.jsonl');
    writeFileSync(p, '"In the beginning"\n');
    expectOneLine(fla('run', tiny!, '--prompts', p, '--state-cache-mb', 'lots'), /--state-cache-mb must be an integer/);
    expectOneLine(fla('run', tiny!, '--prompts', p, '--state-interval', '0'), /--state-interval must be an integer/);
  });
});

describe.skipIf(!kjv)(`fla run --prompts with the state cache (${DEVICE})`, () => {
  test('prompts sharing a prefix: the same results as with --state-cache-mb 0, cached tokens counted', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fla-state-prompts-'));
    const p = join(dir, 'p.jsonl');
    const base = 'And God said, Let there be light: and there was light. And God saw the light, that it was good:';
    writeFileSync(p, [base, `${base} and God divided`, `${base} and the evening`].map(s => JSON.stringify(s)).join('\n') + '\n');
    const on = fla('run', kjv!, '--prompts', p, '-t', '0', '-n', '6', '--max-batch', '1', '--state-interval', '8');
    const off = fla('run', kjv!, '--prompts', p, '-t', '0', '-n', '6', '--max-batch', '1', '--state-cache-mb', '0');
    expect(on.code).toBe(0);
    const a = on.out.trim().split('\n').map(l => JSON.parse(l)), b = off.out.trim().split('\n').map(l => JSON.parse(l));
    expect(a.map(r => r.generated_ids)).toEqual(b.map(r => r.generated_ids));
    expect(a.map(r => r.usage.prompt_tokens)).toEqual(b.map(r => r.usage.prompt_tokens));
    expect(b.map(r => r.usage.prompt_tokens_details.cached_tokens)).toEqual([0, 0, 0]);
    expect(a[0].usage.prompt_tokens_details.cached_tokens).toBe(0);
    for (const r of a.slice(1)) expect(r.usage.prompt_tokens_details.cached_tokens).toBeGreaterThanOrEqual(Math.floor((a[0].usage.prompt_tokens - 2) / 8) * 8);
  });
});
