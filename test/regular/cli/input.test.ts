// Options and prompts as people type them: values stay strings (cac made "\n", " ", "007" numbers), -n -1, prompts from
// words, -p, -f, stdin; errors that help (as typed, did you mean, fla help); stdout to /dev/full or a closed pipe.
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cac } from 'cac';
import { parseArgv } from '../../../cli/argv.ts';
import { sharedModel } from '../../helpers/fixtures.ts';

const ROOT = join(import.meta.dir, '../../..');
const kjv = sharedModel('kjv-rwkv7');
const llama = sharedModel('kjv-llama');

function fla(args: string[], stdin?: string) {
  const p = Bun.spawnSync([process.execPath, join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, stdin: stdin === undefined ? 'ignore' : Buffer.from(stdin) });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}
const sh = (script: string) => {
  const p = Bun.spawnSync(['bash', '-c', script], { cwd: ROOT, env: { ...process.env, FLA: `${process.execPath} ${join(ROOT, 'cli/main.ts')}` } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
};
const oneLine = (r: { code: number | null; out: string; err: string }, code: number, re: RegExp) => {
  expect({ code: r.code, out: r.out }).toEqual({ code, out: '' });
  expect(r.err).toMatch(re);
  expect(r.err.trim().split('\n')).toHaveLength(1);
};

describe('option values stay the strings typed', () => {
  const cli = cac('fla');
  cli.command('run [model] [...prompt]').option('--stop <s>', '', { type: [String] }).option('--system <text>', '').option('-n, --max-tokens <n>', '')
    .option('--json', '').option('--no-echo', '');
  test('newlines, spaces, leading zeros, negative numbers', () => {
    const p = parseArgv(cli, ['run', '--stop', '\n', '--stop', '\n\n', '--stop', ' ', '--system', '007', '-n', '-1', '--no-echo', 'm', 'a', 'b']);
    expect(p.options.stop).toEqual(['\n', '\n\n', ' ']);
    expect(p.options.system).toBe('007');
    expect(p.options.maxTokens).toBe('-1');
    expect(p.options.echo).toBe(false);
    expect(p.args).toEqual(['m', 'a', 'b']);
    expect(parseArgv(cli, ['run', '--system=0x10', '--stop=1e3']).options).toMatchObject({ system: '0x10', stop: '1e3' });
  });
  test('cac itself would have made them numbers (why fla parses argv itself)', () => {
    const c = cac('x');
    c.command('run').option('--stop <s>', '', { type: [String] }).option('--system <text>', '');
    const r = c.parse(['bun', 'x', 'run', '--stop', '\n', '--system', '007'], { run: false });
    expect([r.options.stop, r.options.system]).not.toEqual([['\n'], '007']);
  });
});

describe.skipIf(!kjv)('fla run: prompts and options', () => {
  const base = ['-t', '0', '-n', '4', '--device', 'cpu', '--json'];
  test('words, -p, -f, stdin and a quoted argument give the same prompt ids; --temp is --temperature', () => {
    const want = JSON.parse(fla(['run', 'In the beginning', ...base]).out).prompt_ids as number[];
    expect(want.length).toBeGreaterThan(1);
    const file = join(mkdtempSync(join(tmpdir(), 'fla-input-')), 'p.txt');
    writeFileSync(file, 'In the beginning\n');
    for (const r of [fla(['run', 'In', 'the', 'beginning', ...base]), fla(['run', '-p', 'In the beginning', ...base]), fla(['run', '--file', file, ...base]),
      fla(['run', ...base], 'In the beginning\n'), fla(['run', '-f', '-', ...base], 'In the beginning'), fla(['run', kjv!, 'In', 'the', 'beginning', '--temp', '0', '-n', '4', '--device', 'cpu', '--json'])]) {
      expect(r.err).toBe('');
      expect(JSON.parse(r.out).prompt_ids).toEqual(want);
    }
  });

  test('--json reports the seed used; the same seed gives the same ids', () => {
    const a = JSON.parse(fla(['run', '--ids', '1,2', '-n', '6', '--device', 'cpu', '--json']).out);
    expect(Number.isSafeInteger(a.seed)).toBe(true);
    const b = JSON.parse(fla(['run', '--ids', '1,2', '-n', '6', '--device', 'cpu', '--json', '--seed', String(a.seed)]).out);
    expect(b.generated_ids).toEqual(a.generated_ids);
  });

  test('--stop "\\n" and " " stop at a newline / space (not at "0")', () => {
    const r = JSON.parse(fla(['run', 'And God said', '-t', '0', '-n', '40', '--device', 'cpu', '--json', '--stop', '\n']).out);
    const free = JSON.parse(fla(['run', 'And God said', '-t', '0', '-n', '40', '--device', 'cpu', '--json']).out);
    expect(free.text).toContain('\n');
    expect(r.finish_reason).toBe('stop');
    expect(r.text).toBe(free.text.slice(0, free.text.indexOf('\n')));
    const typed = JSON.parse(fla(['run', 'And God said', '-t', '0', '-n', '40', '--device', 'cpu', '--json', '--stop', '\\n']).out);
    expect(typed.text).toBe(r.text);                      // --stop "\n" as typed in a shell: the escape is read
    const s = JSON.parse(fla(['run', 'And God said', '-t', '0', '-n', '40', '--device', 'cpu', '--json', '--stop', ' ']).out);
    expect(s.text).toBe(free.text.slice(0, free.text.indexOf(' ')));
  });

  test('bad input: one line, exit 2', () => {
    oneLine(fla(['run', 'x', '--stop']), 2, /^error: --stop needs a value; see fla run --help$/m);
    oneLine(fla(['run', 'x', '--stop', '--json']), 2, /--stop needs a value/);
    oneLine(fla(['run', 'x', '--seed', '-1']), 2, /--seed must be an integer in \[0, \d+\] \(leave it out for a random seed\), got "-1"/);
    oneLine(fla(['run', 'x', '-n', '-5']), 2, /--max-tokens must be an integer ≥ 0, or -1 for "until EOS or the context", got "-5"/);
    oneLine(fla(['run', 'x', '--typical-p', '0.9']), 2, /^error: unknown option --typical-p for fla run; see fla run --help$/m);
    oneLine(fla(['run', 'x', '--max-token', '3']), 2, /unknown option --max-token for fla run \(did you mean --max-tokens\?\)/);
    oneLine(fla(['rnu', 'x']), 2, /unknown command 'rnu' \(did you mean run\?\)/);
    oneLine(fla(['run', '-p', 'a', 'b']), 2, /give the prompt one way, got prompt words and --prompt/);
    oneLine(fla(['run', '-f', '/nonexistent/p.txt']), 2, /--file \/nonexistent\/p\.txt: no such file/);
    oneLine(fla(['run'], ''), 2, /missing prompt/);
    oneLine(fla(['help', 'nope']), 2, /unknown command 'nope'/);
  });

  test('fla run --chat and fla chat fail the same way on a model without a chat template', () => {
    const a = fla(['run', 'hi', '--chat', '--device', 'cpu']), c = fla(['chat', '--device', 'cpu'], 'hi\n');
    oneLine(a, 1, /the model has no chat template \(tokenizer_config\.json chat_template or chat_template\.jinja\), so it cannot chat/);
    expect(c.code).toBe(a.code);
    expect(c.err).toBe(a.err);
  });

  test('fla, fla help, fla help run, fla run --help: help on stdout, exit 0; negated flags do not read "default: true"', () => {
    for (const args of [[], ['help'], ['--help']]) {
      const r = fla(args);
      expect(r.code).toBe(0);
      expect(r.out).toContain('run [model] [...prompt]');
    }
    const h = fla(['help', 'run']);
    expect(h.code).toBe(0);
    expect(h.out).toContain('--no-echo');
    expect(h.out).toContain('--temp, --temperature');
    expect(h.out).not.toContain('default: true');
    expect(fla(['run', '--help']).out).toBe(h.out);
    expect(fla(['help', 'bench']).out).not.toContain('default: true');
    for (const c of ['run', 'chat', 'ppl', 'bench', 'serve']) expect(fla(['help', c]).out).toContain('--offline');
  });

  test('stdout to /dev/full: one-line error, exit 1 (streamed and --json); a closed pipe ends quietly', () => {
    for (const extra of ['', '--json']) {
      const r = sh(`$FLA run --ids 1,2 -n 3 --device cpu ${extra} > /dev/full`);
      expect(r.code).toBe(1);
      expect(r.err).toBe('error: cannot write to stdout: no space left on device\n');
    }
    const p = sh(`$FLA run In the beginning -n 2000 -t 0 --device cpu | head -c 20; echo " rc=\${PIPESTATUS[0]}"`);
    expect(p.out).toMatch(/^In the beginning.* rc=0\n$/s);
    expect(p.err).toBe('');
  }, 120_000);
});

describe.skipIf(!llama)('fla run -n -1 on an attention model', () => {
  test('runs until EOS or the end of --ctx', () => {
    const r = fla(['run', llama!, '--ids', '1,2,3', '-n', '-1', '-c', '24', '-t', '1', '--seed', '3', '--device', 'cpu', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.generated_ids.length).toBeLessThanOrEqual(21);
    if (j.finish_reason === 'length') expect(j.generated_ids.length).toBe(21);
  }, 60_000);
});
