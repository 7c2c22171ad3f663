// A hostile mirror and hostile input: revisions that climb out of the cache, redirects to file:// and data:,
// and every path RepoCache builds checked to stay inside the repo folder.
import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkRevision, parseRepoId, RepoCache, revisionProblem } from '../../../src/load/cache.ts';
import { blobs, opts, pull, repoDir, TINY, TINY_ID, TINY_SHA, tempDir, tinyRepo } from './helpers.ts';
import { MockHub, sha256Of } from './mock_hub.ts';

const hub = TINY ? new MockHub([tinyRepo()]) : null;
afterAll(() => hub?.stop());
beforeEach(() => { if (hub) { hub.clear(); hub.faults = {}; } });

/** Every path under `root`, recursively. */
function tree(root: string, at = root): string[] {
  if (!existsSync(at)) return [];
  return readdirSync(at, { withFileTypes: true }).flatMap(e => {
    const p = join(at, e.name);
    return [p.slice(root.length + 1), ...(e.isDirectory() ? tree(root, p) : [])];
  });
}

/** A sandbox with the cache two levels down, so "../../x" from the repo folder lands in the sandbox, not in /tmp. */
function sandbox(tag: string) {
  const root = tempDir(tag);
  const cache = join(root, 'a', 'cache');
  mkdirSync(cache, { recursive: true });
  return { root, cache };
}

describe.skipIf(!TINY)('a hostile hub', () => {
  test('a revision with ../ is refused before any request, and nothing is written anywhere', async () => {
    hub!.faults = { anyRevision: true };              // a mirror that answers any revision name with a commit
    const { root, cache } = sandbox('rev');
    const bad = ['../../../x', '../../x', 'refs/../../../x', 'main/../../../../x', '/etc/x', 'a\\..\\b', 'x/./y', '.hidden', 'a.lock', 'a//b', 'a b', 'v1:2', 'a@{1}', ''];
    for (const revision of bad) {
      await expect(pull(TINY_ID, opts(hub!, cache, { revision })), revision).rejects.toThrow(/--revision .* is not a branch, tag or 40-hex commit/);
    }
    for (const arg of [`${TINY_ID}@../../x`, `${TINY_ID}@refs/../../../x`, `${TINY_ID}@/abs`])
      await expect(pull(arg, opts(hub!, cache)), arg).rejects.toThrow(/revision .* is not a branch, tag or 40-hex commit/);
    expect(hub!.requests).toEqual([]);
    expect(tree(root)).toEqual(['a', 'a/cache']);
  });

  test('valid revision names still work: branches, tags with dots, refs/pr/N, commits', async () => {
    for (const ok of ['main', 'v1.0', 'refs/pr/1', 'release/2024-01', 'my_branch-2', TINY_SHA, 'a.b.c']) expect(revisionProblem(ok), ok).toBeNull();
    expect(parseRepoId('org/name@refs/pr/1').revision).toBe('refs/pr/1');
    expect(() => parseRepoId('org/name@../../x')).toThrow(/is not a branch, tag or 40-hex commit: it contains "\.\."/);
    expect(() => checkRevision('a\\b')).toThrow(/backslash/);
    hub!.faults = { anyRevision: true };
    const { cache } = sandbox('revok');
    const r = await pull(TINY_ID, opts(hub!, cache, { revision: 'refs/pr/1' }));
    expect(r.commit).toBe(TINY_SHA);
    expect(existsSync(join(repoDir(cache, TINY_ID), 'refs', 'refs', 'pr', '1'))).toBe(true);
  });

  test('every path the cache builds stays inside the repo folder', () => {
    const { root, cache } = sandbox('paths');
    const rc = new RepoCache(cache, TINY_ID);
    expect(() => rc.writeRef('../../../x', TINY_SHA)).toThrow(/not a branch, tag or 40-hex commit/);
    expect(() => rc.writeRef('main', '../../x')).toThrow(/not a 40-hex commit/);
    expect(rc.readRef('main')).toBeNull();
    expect(() => rc.readRef('../../../../etc/passwd')).toThrow(/not a branch/);
    expect(() => rc.snapshot('../../x')).toThrow(/not a 40-hex commit/);
    expect(() => rc.blob('../../x')).toThrow(/not a blob name/);
    expect(() => rc.lock('../x')).toThrow(/not a blob name/);
    mkdirSync(join(rc.dir, 'blobs'), { recursive: true });
    writeFileSync(rc.blob('a'.repeat(64)), 'x');
    for (const path of ['../../../x', '../x', '/etc/x', 'a/../../x', '.']) expect(() => rc.link(TINY_SHA, path, 'a'.repeat(64)), path).toThrow(/refusing a cache path outside/);
    expect(() => new RepoCache(cache, '../../x')).toThrow(/not a Hugging Face model id/);
    expect(tree(root).filter(p => !p.startsWith('a/cache'))).toEqual(['a']);
    expect(rc.link(TINY_SHA, 'sub/ok.txt', 'a'.repeat(64))).toBe(join(rc.snapshot(TINY_SHA), 'sub', 'ok.txt'));
  });

  for (const [kind, to] of [['file://', 'file:///etc/passwd'], ['data:', 'data:text/plain,root:x:0:0'], ['ftp://', 'ftp://127.0.0.1/x']] as const) {
    test(`a redirect to ${kind} is refused; nothing is left in the cache`, async () => {
      hub!.faults = { redirect: { 'model.safetensors': to } };
      const cache = tempDir('redir');
      await expect(pull(TINY_ID, opts(hub!, cache))).rejects.toThrow(new RegExp(`model.safetensors: the hub redirected to a ${kind.replace(/\/+$/, '')}.* URL; only http\\(s\\) redirects are followed`));
      const left = blobs(cache, TINY_ID);
      expect(left.filter(b => b.endsWith('.incomplete') || b.endsWith('.lock'))).toEqual([]);
      expect(left).toHaveLength(2);                       // config.json and generation_config.json, both verified
    });
  }

  test('a redirect to file:// during a resume deletes the partial file instead of keeping it', async () => {
    const cache = tempDir('redir2');
    const weights = readFileSync(join(TINY!, 'model.safetensors'));
    const partial = join(repoDir(cache, TINY_ID), 'blobs', `${sha256Of(weights)}.incomplete`);
    mkdirSync(dirname(partial), { recursive: true });
    writeFileSync(partial, weights.subarray(0, 100_000));   // as a killed pull leaves it
    hub!.faults = { redirect: { 'model.safetensors': 'file:///etc/passwd' } };
    await expect(pull(TINY_ID, opts(hub!, cache))).rejects.toThrow(/only http\(s\) redirects/);
    expect(blobs(cache, TINY_ID).filter(b => b.endsWith('.incomplete'))).toEqual([]);
  });
});

test('RepoCache takes the ids Python caches (models--gpt2) and refuses ones that leave the cache', () => {
  const { cache } = sandbox('ids');
  expect(new RepoCache(cache, 'gpt2').dir).toBe(join(cache, 'models--gpt2'));
  expect(new RepoCache(cache, 'org/name').dir).toBe(join(cache, 'models--org--name'));
  for (const bad of ['a/b/c', '..', '../x', 'a/..', '.', 'a\\b', '']) expect(() => new RepoCache(cache, bad), bad).toThrow(/not a Hugging Face model id/);
});
