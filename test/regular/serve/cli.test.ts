// `fla serve` and `fla run --prompts` as a user runs them (spawned `bun cli/main.ts`): the listening line on
// stdout, a clean SIGTERM shutdown that completes the in-flight request, JSONL results in input order.
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedModel } from '../../helpers/fixtures.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { stream, streamText } from './client.ts';

const ROOT = join(import.meta.dir, '../../..');
const kjv = sharedModel('kjv-rwkv7');
const DEVICE = HAS_GPU ? 'gpu' : 'cpu';
const env = { ...process.env, FLA_LOG: 'info' };

function fla(...args: string[]) {
  const p = Bun.spawnSync([process.execPath, join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, env });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

/** What a reader gives until done(text so far) or the end of the stream, within ms. */
async function readUntil(reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> }, done: (s: string) => boolean, ms: number): Promise<string> {
  const dec = new TextDecoder(), end = Date.now() + ms;
  let buf = '';
  while (!done(buf) && Date.now() < end) {
    const r = await Promise.race([reader.read(), Bun.sleep(end - Date.now()).then(() => null)]);
    if (!r || r.done) break;
    buf += dec.decode(r.value, { stream: true });
  }
  return buf;
}

describe.skipIf(!kjv)('fla serve process', () => {
  test('prints only the address; SIGTERM lets the in-flight stream finish and exits 0', async () => {
    const p = Bun.spawn([process.execPath, join(ROOT, 'cli/main.ts'), 'serve', '--port', '0', '--device', DEVICE], { cwd: ROOT, env, stdout: 'pipe', stderr: 'pipe' });
    try {
      const stdout = p.stdout.getReader();
      const line = await readUntil(stdout, b => b.includes('\n'), 60_000);
      const m = line.match(/^listening on (http:\/\/127\.0\.0\.1:\d+)\n$/);
      expect(m, `stdout: ${JSON.stringify(line)}`).not.toBeNull();
      const url = m![1]!;
      expect((await fetch(`${url}/health`)).status).toBe(200);
      let signalled = false;
      const r = await stream(`${url}/v1/completions`, { prompt: 'In the beginning', max_tokens: 20, temperature: 0 }, {
        onFrame: n => { if (n === 2 && !signalled) { signalled = true; p.kill('SIGTERM'); } },
      });
      expect(signalled).toBe(true);
      const { finish, text } = streamText(r.frames);
      expect(finish).toBe('length');
      expect(text.length).toBeGreaterThan(0);
      const code = await Promise.race([p.exited, Bun.sleep(60_000).then(() => 'timeout')]);
      expect(code).toBe(0);
      expect(await readUntil(stdout, () => false, 5000)).toBe('');
      const err = await new Response(p.stderr).text();
      expect(err).toMatch(/POST \/v1\/completions 200 .*completion=20 finish=length/);
      expect(err).toMatch(/SIGTERM/);
      expect(err).not.toMatch(/error/i);
    } finally {
      if (p.exitCode === null) p.kill('SIGKILL');
    }
  });

  test('usage errors are one line with exit code 2', () => {
    for (const [args, re] of [[['--port', '70000'], /--port must be an integer in \[0, 65535\]/], [['--max-batch', '0'], /--max-batch/],
      [['--bogus'], /bogus/],
      [['-n', '300', '--max-tokens-limit', '200'], /--max-tokens 300 is over --max-tokens-limit 200/],
      [['--max-prompt-tokens', '0'], /--max-prompt-tokens must be an integer/]] as const) {
      const r = fla('serve', ...args);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toMatch(re);
    }
  });
});

describe.skipIf(!kjv)('fla run --prompts', () => {
  test('runs the prompts together and prints one JSON line each, in input order, like single runs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fla-prompts-'));
    const file = join(dir, 'p.jsonl');
    writeFileSync(file, [
      JSON.stringify('And God said, Let there be light: and there was light. And God saw the light'),
      JSON.stringify({ prompt: 'In the beginning', max_tokens: 3 }),
      '',
      JSON.stringify({ prompt: 'The LORD is my shepherd;', stop: [','], max_tokens: 30 }),
      JSON.stringify({ prompt: 'Jesus wept.', temperature: 0.7, seed: 5 }),
    ].join('\n') + '\n');
    const r = fla('run', '--prompts', file, '-t', '0', '-n', '9', '--device', DEVICE);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const rows = r.out.trim().split('\n').map(l => JSON.parse(l));
    expect(rows.map(x => x.index)).toEqual([0, 1, 2, 3]);
    expect(rows.map(x => x.prompt)[1]).toBe('In the beginning');
    expect(rows[0].generated_ids.length).toBeLessThanOrEqual(9);
    expect(rows[1].generated_ids.length).toBe(3);
    for (const i of [0, 1]) {
      const single = fla('run', rows[i].prompt, '--json', '-t', '0', '-n', String(i === 0 ? 9 : 3), '--device', DEVICE);
      expect(single.err).toBe('');
      const one = JSON.parse(single.out);
      expect(rows[i]).toMatchObject({ text: one.text, generated_ids: one.generated_ids, finish_reason: one.finish_reason });
      expect(rows[i].usage).toMatchObject({ prompt_tokens: one.prompt_ids.length, completion_tokens: one.generated_ids.length, total_tokens: one.prompt_ids.length + one.generated_ids.length });
    }
    expect(rows[2].text).not.toContain(',');
    expect(rows[2].finish_reason).toBe('stop');
  });

  test('a malformed line is a one-line error naming its line number', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fla-prompts-'));
    const cases: [string, RegExp][] = [
      ['"ok"\n{"prompt": "x",\n', /p\.jsonl:2: not valid JSON/],
      ['"ok"\n\n{"prompt": "x", "top_p": 7}\n', /p\.jsonl:3: 'top_p' must be a number in \(0, 1\]/],
      ['{"prompt": "x", "colour": 1}\n', /p\.jsonl:1: unknown field "colour"/],
      ['{"max_tokens": 3}\n', /p\.jsonl:1: "prompt" must be a non-empty string/],
      ['\n', /holds no prompts/],
    ];
    for (const [text, re] of cases) {
      const file = join(dir, 'p.jsonl');
      writeFileSync(file, text);
      const r = fla('run', '--prompts', file, '--device', 'cpu');
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(re);
    }
  });
});
