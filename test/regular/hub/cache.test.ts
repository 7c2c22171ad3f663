// A cache laid out by hand exactly as Python huggingface_hub writes it is used as is; fla ls / rm over the cache.
import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lsRows } from '../../../cli/hub.ts';
import { listCached, parseRepoId, repoFromFolder, RepoCache } from '../../../src/load/cache.ts';
import { inspectModel } from '../../../src/runtime/model.ts';
import { opts, pull, repoDir, tempDir, TINY, TINY_ID, tinyRepo } from './helpers.ts';
import { fakeSha, gitSha1Of, MockHub, sha256Of } from './mock_hub.ts';

const PY_ID = 'test-org/py-model';
const PY_SHA = fakeSha('python');
const hub = TINY ? new MockHub([tinyRepo({ id: PY_ID, sha: PY_SHA })]) : null;
afterAll(() => hub?.stop());
beforeEach(() => hub?.clear());

/** What `snapshot_download` leaves behind (huggingface_hub 1.x): blobs by sha256 (LFS) / git sha1, relative links, refs/main, .locks, CACHEDIR.TAG, .no_exist. */
function pythonCache(): string {
  const cache = tempDir('py');
  const repo = repoDir(cache, PY_ID);
  for (const d of ['blobs', 'refs', `snapshots/${PY_SHA}`, `.no_exist/${PY_SHA}`]) mkdirSync(join(repo, d), { recursive: true });
  mkdirSync(join(cache, '.locks', 'models--test-org--py-model'), { recursive: true });
  writeFileSync(join(cache, 'CACHEDIR.TAG'), 'Signature: 8a477f597d28d172789f06886806bc55\n');
  writeFileSync(join(repo, 'refs', 'main'), PY_SHA);
  writeFileSync(join(repo, '.no_exist', PY_SHA, 'tokenizer.json'), '');
  for (const f of ['config.json', 'generation_config.json', 'model.safetensors']) {
    const data = readFileSync(join(TINY!, f));
    const blob = f.endsWith('.safetensors') ? sha256Of(data) : gitSha1Of(data);
    writeFileSync(join(repo, 'blobs', blob), data);
    writeFileSync(join(cache, '.locks', 'models--test-org--py-model', `${blob}.lock`), '');
    symlinkSync(`../../blobs/${blob}`, join(repo, 'snapshots', PY_SHA, f));
  }
  return cache;
}

describe.skipIf(!TINY)('a cache written by Python huggingface_hub', () => {
  test('read without any request (commit or offline), one metadata request for a branch, nothing downloaded', async () => {
    const cache = pythonCache();
    const bySha = await pull(`${PY_ID}@${PY_SHA}`, opts(hub!, cache));
    const offline = await pull(PY_ID, opts(hub!, cache, { offline: true }));
    expect(hub!.requests).toEqual([]);
    const online = await pull(PY_ID, opts(hub!, cache));
    expect(hub!.requests.map(r => r.path)).toEqual([`/api/models/${PY_ID}/revision/main`]);
    expect(online.downloaded).toEqual([]);
    expect(new Set([bySha.dir, offline.dir, online.dir])).toEqual(new Set([join(repoDir(cache, PY_ID), 'snapshots', PY_SHA)]));
    expect(inspectModel(online.dir).arch.modelTypes).toContain('rwkv7');
  });

  test('fla ls reports it; fla rm removes it with its .locks folder', () => {
    const cache = pythonCache();
    const rows = lsRows(cache);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ repo: PY_ID, revisions: [{ revision: 'main', commit: PY_SHA }], model_type: 'rwkv7', supported: true, complete: true });
    expect(rows[0]!.size_bytes).toBeGreaterThan(1_600_000);
    new RepoCache(cache, PY_ID).remove();
    expect(existsSync(repoDir(cache, PY_ID))).toBe(false);
    expect(existsSync(join(cache, '.locks', 'models--test-org--py-model'))).toBe(false);
    expect(lsRows(cache)).toEqual([]);
  });

  test('a snapshot whose blob is missing is incomplete: offline refuses it, online repairs it', async () => {
    const cache = pythonCache();
    const blob = join(repoDir(cache, PY_ID), 'blobs', sha256Of(readFileSync(join(TINY!, 'model.safetensors'))));
    Bun.spawnSync(['rm', blob]);
    expect(lsRows(cache)[0]!.complete).toBe(false);
    await expect(pull(PY_ID, opts(hub!, cache, { offline: true }))).rejects.toThrow(/not in the Hugging Face cache/);
    const r = await pull(PY_ID, opts(hub!, cache));
    expect(r.downloaded).toEqual(['model.safetensors']);
    expect(existsSync(blob)).toBe(true);
  });
});

describe('cache names', () => {
  test('repo ids and folder names', () => {
    expect(parseRepoId('org/name')).toEqual({ repo: 'org/name', revision: undefined });
    expect(parseRepoId('org/name@v1.0')).toEqual({ repo: 'org/name', revision: 'v1.0' });
    expect(parseRepoId('Qwen/Qwen3-0.6B@refs/pr/1')).toEqual({ repo: 'Qwen/Qwen3-0.6B', revision: 'refs/pr/1' });
    for (const bad of ['org', 'a/b/c', 'org/na--me', 'org/-name', 'org/name.', 'or g/name']) expect(() => parseRepoId(bad)).toThrow(/not a Hugging Face model id/);
    expect(repoFromFolder('models--fla-hub--rwkv7-191M-world')).toBe('fla-hub/rwkv7-191M-world');
    expect(repoFromFolder('datasets--x--y')).toBeNull();
  });

  test('listCached skips datasets and stray files, reads nested refs (refs/pr/1)', () => {
    const cache = tempDir('list');
    mkdirSync(join(cache, 'datasets--a--b', 'blobs'), { recursive: true });
    writeFileSync(join(cache, 'version.txt'), '1');
    const rc = new RepoCache(cache, 'a/b');
    mkdirSync(rc.snapshot(fakeSha('x')), { recursive: true });
    rc.writeRef('refs/pr/1', fakeSha('x'));
    expect(listCached(cache)).toEqual([{ repo: 'a/b', dir: rc.dir, refs: { 'refs/pr/1': fakeSha('x') }, snapshots: [fakeSha('x')], sizeBytes: 0 }]);
    expect(readFileSync(join(rc.dir, 'refs', 'refs', 'pr', '1'), 'utf8')).toBe(fakeSha('x'));
  });
});

describe.skipIf(!TINY)('ours is laid out for Python', () => {
  test('refs/main without newline, relative links resolve inside the repo folder', async () => {
    const h = new MockHub([tinyRepo()]);
    try {
      const cache = tempDir('ours');
      const r = await pull(TINY_ID, opts(h, cache));
      expect(readFileSync(join(repoDir(cache, TINY_ID), 'refs', 'main'), 'utf8')).toMatch(/^[0-9a-f]{40}$/);
      for (const f of ['config.json', 'model.safetensors']) expect(readFileSync(join(r.dir, f)).equals(readFileSync(join(TINY!, f)))).toBe(true);
    } finally { h.stop(); }
  });
});
