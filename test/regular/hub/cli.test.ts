// fla pull / ls / rm / run / ppl with a hub id, spawned as a user runs them against the loopback hub (HF_ENDPOINT).
import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { blobs, repoDir, ROOT, tempDir, TINY, TINY_ID, TINY_SHA, tinyRepo } from './helpers.ts';
import { MockHub } from './mock_hub.ts';

const KJV = join(ROOT, 'models/kjv-rwkv7');
const hub = TINY ? new MockHub([tinyRepo(), { id: 'test-org/kjv', dir: KJV }]) : null;
afterAll(() => hub?.stop());
beforeEach(() => { if (hub) { hub.clear(); hub.faults = {}; } });

/** The environment of a user with an empty cache and no token, pointed at the mock. */
function env(cache: string, extra: Record<string, string> = {}): Record<string, string> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HF_') && !k.startsWith('HUGGING')));
  return { ...clean, HF_ENDPOINT: hub!.url, HF_HUB_CACHE: cache, HF_HOME: join(cache, 'home'), FLA_LOG: 'info', ...extra } as Record<string, string>;
}

// Async spawn: the mock hub lives in this process and must keep answering.
async function fla(e: Record<string, string>, ...args: string[]) {
  const p = Bun.spawn([process.execPath, join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, env: e, stdout: 'pipe', stderr: 'pipe' });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

describe.skipIf(!TINY)('fla pull / ls / rm', () => {
  test('pull: snapshot path on stdout, one plain progress line per file on stderr, then cached', async () => {
    const cache = tempDir('cli');
    const r = await fla(env(cache), 'pull', TINY_ID);
    expect(r.code).toBe(0);
    expect(r.out).toBe(join(repoDir(cache, TINY_ID), 'snapshots', TINY_SHA) + '\n');
    const lines = r.err.trim().split('\n');
    for (const f of ['config.json', 'generation_config.json', 'model.safetensors'])
      expect(lines.filter(l => l.startsWith(`downloaded ${TINY_ID}/${f} (`))).toHaveLength(1);
    expect(lines.at(-1)).toBe(`${TINY_ID}@main (${TINY_SHA.slice(0, 7)}): 3 files downloaded`);
    expect(r.err).not.toContain('\r');

    hub!.clear();
    const again = await fla(env(cache), 'pull', `${TINY_ID}@${TINY_SHA}`);
    expect(again.code).toBe(0);
    expect(again.out).toBe(r.out);
    expect(again.err).toContain('already in the cache');
    expect(hub!.requests).toEqual([]);
  });

  test('errors: one line on stderr, nothing on stdout, exit 1 (runtime) or 2 (usage)', async () => {
    const cache = tempDir('clierr');
    const cases: [string[], Record<string, string>, number, RegExp][] = [
      [['pull', 'test-org/missing'], {}, 1, /^error: test-org\/missing: repository not found on .*--token hf_…\)\n$/],
      [['pull', TINY_ID, '--offline'], {}, 1, /^error: test-org\/rwkv7-tiny is not in the Hugging Face cache .*offline mode is on/],
      [['pull', TINY_ID], { HF_HUB_OFFLINE: '1' }, 1, /^error: test-org\/rwkv7-tiny is not in the Hugging Face cache/],
      [['pull', TINY_ID], { HF_ENDPOINT: 'http://127.0.0.1:9' }, 1, /^error: cannot reach http:\/\/127\.0\.0\.1:9 .*--offline/],
      [['pull', 'not a repo'], {}, 2, /^error: "not a repo" is not a Hugging Face model id/],
      [['pull'], {}, 2, /^error: missing model: fla pull ORG\/NAME/],
      [['pull', TINY_ID, '--revision'], {}, 2, /^error: --revision needs a value; see fla pull --help/],
      [['rm', 'test-org/absent'], {}, 1, /^error: test-org\/absent is not in the cache/],
      [['ls', '--bogus'], {}, 2, /^error: unknown option --bogus for fla ls; see fla ls --help/],
    ];
    for (const [args, extra, code, err] of cases) {
      const r = await fla(env(cache, extra), ...args);
      expect({ args, code: r.code, out: r.out }).toEqual({ args, code, out: '' });
      expect(r.err).toMatch(err);
      expect(r.err.trim().split('\n')).toHaveLength(1);
    }
    expect(hub!.count(q => q.path.includes('rwkv7-tiny'))).toBe(0);
  });

  test('ls (table and --json) and rm', async () => {
    const cache = tempDir('clils');
    expect((await fla(env(cache), 'ls')).out).toBe('');
    expect((await fla(env(cache), 'pull', TINY_ID)).code).toBe(0);
    const table = await fla(env(cache), 'ls');
    expect(table.code).toBe(0);
    const [head, row] = table.out.trim().split('\n');
    expect(head).toMatch(/^REPO\s+REVISION\s+SIZE\s+MODEL_TYPE\s+SUPPORTED$/);
    expect(row).toMatch(new RegExp(`^test-org/rwkv7-tiny\\s+main \\(${TINY_SHA.slice(0, 7)}\\)\\s+1\\.6\\d MB\\s+rwkv7\\s+yes \\(no tokenizer: --ids only\\)$`));
    const json = JSON.parse((await fla(env(cache), 'ls', '--json')).out);
    expect(json).toEqual([expect.objectContaining({ repo: TINY_ID, model_type: 'rwkv7', supported: true, complete: true })]);
    const rm = await fla(env(cache), 'rm', TINY_ID);
    expect(rm.code).toBe(0);
    expect(rm.err).toMatch(/^removed test-org\/rwkv7-tiny \(1\.6\d MB\)/);
    expect(existsSync(repoDir(cache, TINY_ID))).toBe(false);
    expect(JSON.parse((await fla(env(cache), 'ls', '--json')).out)).toEqual([]);
  });

  test('two fla processes pulling the same repo at once: one download, a correct cache', async () => {
    hub!.faults = { slowMs: 20 };
    const cache = tempDir('cliconc');
    const [a, b] = await Promise.all([fla(env(cache), 'pull', TINY_ID), fla(env(cache), 'pull', TINY_ID)]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(a.out).toBe(b.out);
    expect(hub!.count(q => q.server === 'cdn')).toBe(1);
    expect(blobs(cache, TINY_ID)).toHaveLength(3);
    const snap = a.out.trim();
    expect(readdirSync(snap).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
    expect(readFileSync(join(snap, 'model.safetensors')).equals(readFileSync(join(TINY!, 'model.safetensors')))).toBe(true);
  });
});

describe.skipIf(!TINY)('a killed pull', () => {
  test('SIGKILL mid-file: the next pull breaks the dead lock and resumes with a Range request', async () => {
    hub!.faults = { slowMs: 40 };
    const cache = tempDir('clikill');
    const weights = readFileSync(join(TINY!, 'model.safetensors'));
    const partial = join(repoDir(cache, TINY_ID), 'blobs', `${new Bun.CryptoHasher('sha256').update(weights).digest('hex')}.incomplete`);
    const p = Bun.spawn([process.execPath, join(ROOT, 'cli/main.ts'), 'pull', TINY_ID], { cwd: ROOT, env: env(cache), stdout: 'ignore', stderr: 'ignore' });
    for (let i = 0; i < 200 && !(existsSync(partial) && Bun.file(partial).size > 200_000); i++) await Bun.sleep(20);
    p.kill('SIGKILL');
    await p.exited;
    const cut = Bun.file(partial).size;
    expect(cut).toBeGreaterThan(0);
    expect(cut).toBeLessThan(weights.length);
    // the lock is Python's (.locks/models--…/<blob>.lock, an flock the kernel dropped with the process); none in blobs/
    expect(existsSync(join(cache, '.locks', 'models--test-org--rwkv7-tiny', `${new Bun.CryptoHasher('sha256').update(weights).digest('hex')}.lock`))).toBe(true);
    expect(existsSync(partial.replace('.incomplete', '.lock'))).toBe(false);
    hub!.clear();
    hub!.faults = {};
    const r = await fla(env(cache), 'pull', TINY_ID);
    expect(r.code).toBe(0);
    expect(hub!.requests.filter(q => q.server === 'cdn').map(q => q.range)).toEqual([`bytes=${cut}-`]);
    expect(readFileSync(join(r.out.trim(), 'model.safetensors')).equals(weights)).toBe(true);
    expect(blobs(cache, TINY_ID)).toHaveLength(3);
  });
});

describe.skipIf(!TINY)('fla run / ppl with a hub id', () => {
  test('run downloads on first use, then runs offline from the cache; same text as the local folder', async () => {
    const cache = tempDir('clirun');
    const args = ['In the beginning', '-t', '0', '-n', '8', '--device', 'cpu'];
    const local = await fla(env(cache), 'run', KJV, ...args);
    expect(local.code).toBe(0);
    const first = await fla(env(cache), 'run', 'test-org/kjv', ...args);
    expect(first.err).toContain('downloaded test-org/kjv/tokenizer.json');
    expect(first.code).toBe(0);
    expect(first.out).toBe(local.out);
    hub!.clear();
    const offline = await fla(env(cache), 'run', 'test-org/kjv', ...args, '--offline');
    expect(offline.code).toBe(0);
    expect(offline.out).toBe(local.out);
    expect(hub!.requests).toEqual([]);
    const text = join(cache, 'text.txt');
    writeFileSync(text, 'In the beginning God created the heaven and the earth. And the earth was without form, and void.');
    const ppl = await fla(env(cache, { HF_HUB_OFFLINE: '1' }), 'ppl', 'test-org/kjv', '--text', text, '--window', '8', '--device', 'cpu', '--json');
    expect(ppl.code).toBe(0);
    expect(JSON.parse(ppl.out).ppl).toBeGreaterThan(1);
  });

  test('run with an unknown hub id: one line, exit 1', async () => {
    const r = await fla(env(tempDir('clirun2')), 'run', 'test-org/nothing', 'hello', '--device', 'cpu');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: test-org\/nothing: repository not found/);
  });
});
