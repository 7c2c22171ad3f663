// A damaged blob already in the cache: `--verify` re-hashes against the sha256 / git sha1 the blob is named by and
// downloads again what does not match; every cached run checks the weights' sizes against their headers.
import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import { appendFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { blobs, opts, pull, repoDir, ROOT, same, tempDir, TINY, TINY_ID, TINY_SHA, tinyRepo } from './helpers.ts';
import { gitSha1Of, MockHub, sha256Of } from './mock_hub.ts';

const hub = TINY ? new MockHub([tinyRepo()]) : null;
afterAll(() => hub?.stop());
beforeEach(() => { if (hub) { hub.clear(); hub.faults = {}; } });

const weights = TINY ? readFileSync(join(TINY, 'model.safetensors')) : Buffer.alloc(0);
const WEIGHTS_BLOB = sha256Of(weights);
const CONFIG_BLOB = TINY ? gitSha1Of(readFileSync(join(TINY, 'config.json'))) : '';
const blobPath = (cache: string, name: string) => join(repoDir(cache, TINY_ID), 'blobs', name);

/** Flip 16 bytes in the middle of a file, keeping its size (what the sweep did to the weights). */
function flip(path: string) {
  const b = readFileSync(path);
  for (let i = 0; i < 16; i++) b[(b.length >> 1) + i]! ^= 0x5a;
  writeFileSync(path, b);
}

describe.skipIf(!TINY)('pull --verify', () => {
  test('flipped bytes in the weights: a plain pull trusts the cache, --verify re-hashes and downloads them again', async () => {
    const cache = tempDir('verify');
    await pull(TINY_ID, opts(hub!, cache));
    flip(blobPath(cache, WEIGHTS_BLOB));
    const plain = await pull(TINY_ID, opts(hub!, cache));
    expect(plain.downloaded).toEqual([]);
    expect(plain.verified).toBeUndefined();
    hub!.clear();
    const r = await pull(TINY_ID, opts(hub!, cache, { verify: true }));
    expect(r.verified).toEqual({ checked: 3, damaged: ['model.safetensors'] });
    expect(r.downloaded).toEqual(['model.safetensors']);
    expect(same(join(r.dir, 'model.safetensors'), join(TINY!, 'model.safetensors'))).toBe(true);
    expect(hub!.count(q => q.server === 'cdn')).toBe(1);
    const again = await pull(TINY_ID, opts(hub!, cache, { verify: true }));
    expect(again.verified).toEqual({ checked: 3, damaged: [] });
    expect(again.downloaded).toEqual([]);
  });

  test('a damaged regular file fails its git sha1 and is downloaded again (pulled by commit)', async () => {
    const cache = tempDir('verifycfg');
    await pull(TINY_ID, opts(hub!, cache));
    writeFileSync(blobPath(cache, CONFIG_BLOB), readFileSync(blobPath(cache, CONFIG_BLOB), 'utf8').replace('rwkv7', 'rwkv6'));
    const r = await pull(`${TINY_ID}@${TINY_SHA}`, opts(hub!, cache, { verify: true }));
    expect(r.verified!.damaged).toEqual(['config.json']);
    expect(r.downloaded).toEqual(['config.json']);
    expect(same(join(r.dir, 'config.json'), join(TINY!, 'config.json'))).toBe(true);
  });

  test('offline: the damaged file is deleted and the error says to pull with network access', async () => {
    const cache = tempDir('verifyoff');
    await pull(TINY_ID, opts(hub!, cache));
    flip(blobPath(cache, WEIGHTS_BLOB));
    hub!.clear();
    await expect(pull(TINY_ID, opts(hub!, cache, { verify: true, offline: true }))).rejects.toThrow(/model.safetensors in the cache was damaged and deleted; offline mode is on/);
    expect(hub!.requests).toEqual([]);
    expect(blobs(cache, TINY_ID)).not.toContain(WEIGHTS_BLOB);
  });
});

describe.skipIf(!TINY)('sizes checked on every cached run', () => {
  for (const [what, damage] of [['truncated', (p: string) => truncateSync(p, weights.length - 1000)], ['padded', (p: string) => appendFileSync(p, Buffer.alloc(64))]] as const) {
    test(`${what} weights: a one-line error pointing at --verify, offline and online`, async () => {
      const cache = tempDir(`size${what}`);
      await pull(TINY_ID, opts(hub!, cache));
      damage(blobPath(cache, WEIGHTS_BLOB));
      const re = new RegExp(`test-org/rwkv7-tiny: the cached model.safetensors is ${what === 'truncated' ? weights.length - 1000 : weights.length + 64} bytes but its header needs ${weights.length}: the file is damaged; run fla pull --verify test-org/rwkv7-tiny`);
      await expect(pull(TINY_ID, opts(hub!, cache, { offline: true }))).rejects.toThrow(re);
      await expect(pull(TINY_ID, opts(hub!, cache))).rejects.toThrow(re);
      const fixed = await pull(TINY_ID, opts(hub!, cache, { verify: true }));
      expect(fixed.downloaded).toEqual(['model.safetensors']);
    });
  }
});

describe.skipIf(!TINY)('fla pull --verify / fla ls --verify', () => {
  const env = (cache: string) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HF_') && !k.startsWith('HUGGING')));
    return { ...clean, HF_ENDPOINT: hub!.url, HF_HUB_CACHE: cache, HF_HOME: join(cache, 'home'), FLA_LOG: 'info' } as Record<string, string>;
  };
  const fla = async (e: Record<string, string>, ...args: string[]) => {
    const p = Bun.spawn([process.execPath, join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, env: e, stdout: 'pipe', stderr: 'pipe' });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code, out, err };
  };

  test('ls --verify finds the damaged blob, deletes it and downloads it again; pull --verify reports what it checked', async () => {
    const cache = tempDir('lsverify');
    await pull(TINY_ID, opts(hub!, cache));
    flip(blobPath(cache, WEIGHTS_BLOB));
    const ls = await fla(env(cache), 'ls', '--verify');
    expect(ls.code).toBe(0);
    expect(ls.out).toMatch(/VERIFIED\n.*1 damaged, downloaded again\n$/);
    expect(ls.err).toMatch(/test-org\/rwkv7-tiny: 1 damaged blob deleted/);
    expect(same(blobPath(cache, WEIGHTS_BLOB), join(TINY!, 'model.safetensors'))).toBe(true);
    const json = JSON.parse((await fla(env(cache), 'ls', '--verify', '--json')).out);
    expect(json[0].verified).toEqual({ checked: 3, damaged: [], downloaded: [] });
    flip(blobPath(cache, WEIGHTS_BLOB));
    const p = await fla(env(cache), 'pull', TINY_ID, '--verify');
    expect(p.code).toBe(0);
    expect(p.err).toMatch(/model.safetensors does not match its sha256/);
    expect(p.err).toMatch(/1 files downloaded; 3 cached files re-hashed, 1 damaged and downloaded again/);
    expect(same(blobPath(cache, WEIGHTS_BLOB), join(TINY!, 'model.safetensors'))).toBe(true);
  });

  test('ls --verify with the hub unreachable: the damage is reported and the exit code is 1', async () => {
    const cache = tempDir('lsverifyoff');
    await pull(TINY_ID, opts(hub!, cache));
    flip(blobPath(cache, WEIGHTS_BLOB));
    const r = await fla({ ...env(cache), HF_HUB_OFFLINE: '1' }, 'ls', '--verify');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/1 damaged, not repaired/);
    expect(r.err).toMatch(/not downloaded again .*run fla pull test-org\/rwkv7-tiny@/);
  });
});
