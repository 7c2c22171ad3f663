// Pulling from a loopback hub: cache layout, cached and offline runs, sharded weights, resume, corruption, concurrency.
import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspectModel } from '../../../src/runtime/model.ts';
import { Checkpoint } from '../../../src/load/safetensors.ts';
import { blobs, link, opts, pull, repoDir, same, tempDir, TINY, TINY_ID, TINY_SHA, tinyRepo } from './helpers.ts';
import { gitSha1Of, MockHub, sha256Of } from './mock_hub.ts';

const hub = TINY ? new MockHub([tinyRepo()]) : null;
afterAll(() => hub?.stop());
beforeEach(() => { if (hub) { hub.clear(); hub.faults = {}; } });

const weights = TINY ? readFileSync(join(TINY, 'model.safetensors')) : Buffer.alloc(0);
const WEIGHTS_SHA = sha256Of(weights);
const CONFIG_SHA1 = TINY ? gitSha1Of(readFileSync(join(TINY, 'config.json'))) : '';
/** Body downloads of a file: LFS files come from the CDN (the hub only redirects), the others from resolve/. */
const getsOf = (file: string) => hub!.count(r => r.method === 'GET'
  && (file.endsWith('.safetensors') ? r.server === 'cdn' : r.path.endsWith(`/resolve/${TINY_SHA}/${file}`)));

describe.skipIf(!TINY)('pull', () => {
  test('first download: Python-compatible layout, only the needed files, token kept off the CDN', async () => {
    const cache = tempDir('first');
    const r = await pull(TINY_ID, opts(hub!, cache, { token: 'hf_test' }));
    const repo = repoDir(cache, TINY_ID);
    expect(r.commit).toBe(TINY_SHA);
    expect(r.dir).toBe(join(repo, 'snapshots', TINY_SHA));
    expect(readFileSync(join(repo, 'refs', 'main'), 'utf8')).toBe(TINY_SHA);
    expect(readdirSync(r.dir).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
    expect(blobs(cache, TINY_ID)).toContain(WEIGHTS_SHA);
    expect(blobs(cache, TINY_ID)).toHaveLength(3);            // no .incomplete or .lock left
    expect(link(cache, TINY_ID, TINY_SHA, 'model.safetensors')).toBe(`../../blobs/${WEIGHTS_SHA}`);
    expect(link(cache, TINY_ID, TINY_SHA, 'config.json')).toBe(`../../blobs/${CONFIG_SHA1}`);
    for (const f of readdirSync(r.dir)) expect(same(join(r.dir, f), join(TINY!, f))).toBe(true);
    expect(inspectModel(r.dir).arch.modelTypes).toContain('rwkv7');
    expect(hub!.count(q => /README|pytorch_model|onnx/.test(q.path))).toBe(0);
    // config.json is fetched and checked before any weight request
    const firstWeight = hub!.requests.findIndex(q => q.server === 'cdn' || q.path.endsWith('.safetensors'));
    const config = hub!.requests.findIndex(q => q.path.endsWith('/config.json'));
    expect(config).toBeGreaterThan(-1);
    expect(config).toBeLessThan(firstWeight);
    expect(hub!.requests.filter(q => q.server === 'hub').every(q => q.auth === 'Bearer hf_test')).toBe(true);
    expect(hub!.requests.filter(q => q.server === 'cdn').map(q => q.auth)).toEqual([null]);
    expect(r.downloaded.sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
  });

  test('second run: one metadata request for a branch, none for a commit or offline', async () => {
    const cache = tempDir('second');
    await pull(TINY_ID, opts(hub!, cache));
    hub!.clear();
    const again = await pull(TINY_ID, opts(hub!, cache));
    expect(again.downloaded).toEqual([]);
    expect(hub!.requests.map(q => q.path)).toEqual([`/api/models/${TINY_ID}/revision/main`]);
    hub!.clear();
    const bySha = await pull(`${TINY_ID}@${TINY_SHA}`, opts(hub!, cache));
    const offline = await pull(TINY_ID, opts(hub!, cache, { offline: true }));
    const offlineEnv = await pull(TINY_ID, { ...opts(hub!, cache), env: { HF_HUB_OFFLINE: '1', HF_HOME: cache } });
    expect(hub!.requests).toEqual([]);
    expect(new Set([bySha.dir, offline.dir, offlineEnv.dir, again.dir]).size).toBe(1);
  });

  test('offline with nothing cached: one clear error naming the repo, no request', async () => {
    const cache = tempDir('offline');
    await expect(pull(TINY_ID, opts(hub!, cache, { offline: true }))).rejects.toThrow(/test-org\/rwkv7-tiny is not in the Hugging Face cache .*offline/);
    await expect(pull(`${TINY_ID}@v9`, opts(hub!, cache, { offline: true }))).rejects.toThrow(/rwkv7-tiny@v9 is not in the Hugging Face cache/);
    expect(hub!.requests).toEqual([]);
  });

  test('a tag writes refs/<tag>; the same commit is not downloaded twice', async () => {
    hub!.add(tinyRepo({ id: 'test-org/tagged', tags: { 'v1.0': TINY_SHA } }));
    const cache = tempDir('tag');
    const a = await pull('test-org/tagged', opts(hub!, cache, { revision: 'v1.0' }));
    expect(readFileSync(join(repoDir(cache, 'test-org/tagged'), 'refs', 'v1.0'), 'utf8')).toBe(TINY_SHA);
    hub!.clear();
    const b = await pull('test-org/tagged@main', opts(hub!, cache));
    expect(b.dir).toBe(a.dir);
    expect(b.downloaded).toEqual([]);
    await expect(pull('test-org/tagged@nope', opts(hub!, cache))).rejects.toThrow(/revision not found/);
  });

  test('sharded weights: the index and the shards it names, not other .safetensors files', async () => {
    const header = JSON.parse(weights.subarray(8, 8 + Number(weights.readBigUInt64LE(0))).toString()) as Record<string, unknown>;
    const names = Object.keys(header).filter(k => k !== '__metadata__');
    const shard = 'model-00001-of-00001.safetensors';
    const index = JSON.stringify({ metadata: {}, weight_map: Object.fromEntries(names.map(n => [n, shard])) });
    hub!.add({ id: 'test-org/sharded', dir: TINY!, include: ['config.json'], files: { 'model.safetensors.index.json': index, [shard]: weights, 'consolidated.safetensors': 'decoy' } });
    const cache = tempDir('sharded');
    const r = await pull('test-org/sharded', opts(hub!, cache));
    expect(readdirSync(r.dir).sort()).toEqual(['config.json', 'model-00001-of-00001.safetensors', 'model.safetensors.index.json']);
    expect(Checkpoint.open(r.dir).tensors.size).toBe(names.length);
    expect(hub!.count(q => q.path.includes('consolidated'))).toBe(0);
  });

  test('an unsupported model_type is refused before any weight request', async () => {
    hub!.add({ id: 'test-org/bert', files: { 'config.json': JSON.stringify({ model_type: 'bert' }), 'model.safetensors': weights } });
    const cache = tempDir('bert');
    await expect(pull('test-org/bert', opts(hub!, cache))).rejects.toThrow(/test-org\/bert\/config.json: model_type "bert" is not supported \(supported: .*rwkv7/);
    expect(hub!.count(q => q.server === 'cdn' || q.path.endsWith('.safetensors'))).toBe(0);
  });

  test('no safetensors in the repo: a clear error before downloading anything large', async () => {
    hub!.add({ id: 'test-org/bin-only', dir: TINY!, include: ['config.json'], files: { 'pytorch_model.bin': 'x' } });
    await expect(pull('test-org/bin-only', opts(hub!, tempDir('bin')))).rejects.toThrow(/no .safetensors weights \(found pytorch_model.bin; fla reads only safetensors\)/);
  });
});

describe.skipIf(!TINY)('interrupted and corrupt downloads', () => {
  for (const reset of [false, true]) {
    test(`the connection drops mid-file (${reset ? 'reset' : 'short body'}): resumed with a Range request`, async () => {
      hub!.faults = { drop: { 'model.safetensors': { bytes: 500_000, times: 1, reset } } };
      const cache = tempDir('drop');
      const r = await pull(TINY_ID, opts(hub!, cache));
      expect(same(join(r.dir, 'model.safetensors'), join(TINY!, 'model.safetensors'))).toBe(true);
      const ranges = hub!.requests.filter(q => q.server === 'cdn').map(q => q.range);
      expect(ranges).toHaveLength(2);
      expect(ranges[0]).toBeNull();
      // a reset may lose bytes still in flight; what arrived is kept and the rest asked for
      const resumedAt = Number(ranges[1]?.match(/^bytes=(\d+)-$/)?.[1]);
      if (reset) expect(resumedAt).toBeGreaterThan(0); else expect(resumedAt).toBe(500_000);
      expect(blobs(cache, TINY_ID).filter(b => b.includes('.'))).toEqual([]);
    });
  }

  test('a partial file left by a killed process is resumed, not restarted', async () => {
    const cache = tempDir('partial');
    mkdirSync(join(repoDir(cache, TINY_ID), 'blobs'), { recursive: true });
    writeFileSync(join(repoDir(cache, TINY_ID), 'blobs', `${WEIGHTS_SHA}.incomplete`), weights.subarray(0, 700_000));
    const r = await pull(TINY_ID, opts(hub!, cache));
    expect(hub!.requests.filter(q => q.server === 'cdn').map(q => q.range)).toEqual(['bytes=700000-']);
    expect(same(join(r.dir, 'model.safetensors'), join(TINY!, 'model.safetensors'))).toBe(true);
  });

  test('a partial file that is not a prefix of the blob fails verification once and is downloaded again', async () => {
    const cache = tempDir('badpartial');
    mkdirSync(join(repoDir(cache, TINY_ID), 'blobs'), { recursive: true });
    writeFileSync(join(repoDir(cache, TINY_ID), 'blobs', `${WEIGHTS_SHA}.incomplete`), Buffer.alloc(700_000, 1));
    const r = await pull(TINY_ID, opts(hub!, cache));
    expect(same(join(r.dir, 'model.safetensors'), join(TINY!, 'model.safetensors'))).toBe(true);
    expect(hub!.requests.filter(q => q.server === 'cdn').map(q => q.range)).toEqual(['bytes=700000-', null]);
  });

  test('one corrupt answer: sha256 mismatch, downloaded again, the good file is used', async () => {
    hub!.faults = { corrupt: { 'model.safetensors': 1 } };
    const cache = tempDir('corrupt1');
    const r = await pull(TINY_ID, opts(hub!, cache));
    expect(getsOf('model.safetensors')).toBe(2);
    expect(same(join(r.dir, 'model.safetensors'), join(TINY!, 'model.safetensors'))).toBe(true);
  });

  test('always corrupt: a clear error, and no corrupt file anywhere in the cache', async () => {
    hub!.faults = { corrupt: { 'model.safetensors': Infinity } };
    const cache = tempDir('corrupt');
    await expect(pull(TINY_ID, opts(hub!, cache))).rejects.toThrow(/model.safetensors: the download does not match the hub's sha256 twice; the file was deleted, not used/);
    expect(blobs(cache, TINY_ID).some(b => b.startsWith(WEIGHTS_SHA))).toBe(false);
    expect(readdirSync(join(repoDir(cache, TINY_ID), 'snapshots', TINY_SHA))).not.toContain('model.safetensors');
    hub!.faults = {};
    const r = await pull(TINY_ID, opts(hub!, cache));                 // and a later run repairs it
    expect(same(join(r.dir, 'model.safetensors'), join(TINY!, 'model.safetensors'))).toBe(true);
  });

  test('a corrupt regular file fails its git sha1 check', async () => {
    hub!.faults = { corrupt: { 'config.json': Infinity } };
    await expect(pull(TINY_ID, opts(hub!, tempDir('corruptcfg')))).rejects.toThrow(/config.json: the download does not match the hub's git sha1/);
  });
});

describe.skipIf(!TINY)('locks and concurrency', () => {
  test('two concurrent pulls of the same repo: one download, a correct cache', async () => {
    hub!.faults = { slowMs: 15 };
    const cache = tempDir('concurrent');
    const [a, b] = await Promise.all([pull(TINY_ID, opts(hub!, cache)), pull(TINY_ID, opts(hub!, cache))]);
    expect(a.dir).toBe(b.dir);
    expect(getsOf('model.safetensors')).toBe(1);
    expect(same(join(a.dir, 'model.safetensors'), join(TINY!, 'model.safetensors'))).toBe(true);
    expect(blobs(cache, TINY_ID)).toHaveLength(3);
  });
});
