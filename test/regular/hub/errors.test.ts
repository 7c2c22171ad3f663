// Hub failures users hit: unknown repo, private and gated repos, tokens, 5xx, no network, disk full: one clear line each.
import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findToken, hubSettings } from '../../../src/load/hub_api.ts';
import { opts, pull, repoDir, tempDir, TINY, TINY_ID, tinyRepo } from './helpers.ts';
import { MockHub, sha256Of } from './mock_hub.ts';

const hub = TINY ? new MockHub([
  tinyRepo(),
  tinyRepo({ id: 'test-org/private', token: 'hf_owner' }),
  tinyRepo({ id: 'test-org/gated', token: 'hf_approved', gated: true }),
]) : null;
afterAll(() => hub?.stop());
beforeEach(() => { if (hub) { hub.clear(); hub.faults = {}; } });

const oneLine = async (p: Promise<unknown>): Promise<string> => {
  try { await p; } catch (e) { expect((e as Error).message).not.toContain('\n'); return (e as Error).message; }
  throw new Error('expected a rejection');
};

describe.skipIf(!TINY)('hub errors', () => {
  test('unknown repo (404 / 401 RepositoryNotFound): names the repo and how to pass a token', async () => {
    const m = await oneLine(pull('test-org/missing', opts(hub!, tempDir('404'))));
    expect(m).toMatch(/^test-org\/missing: repository not found on http:\/\/127\.0\.0\.1:\d+ \(if it is private, pass a token with HF_TOKEN=hf_… or --token hf_…\)$/);
    const withToken = await oneLine(pull('test-org/missing', opts(hub!, tempDir('404t'), { token: 'hf_x' })));
    expect(withToken).toMatch(/^test-org\/missing: repository not found on /);
  });

  test('private repo: not found without the token, downloads with it (flag, HF_TOKEN or $HF_HOME/token)', async () => {
    expect(await oneLine(pull('test-org/private', opts(hub!, tempDir('priv'))))).toMatch(/repository not found.*--token/);
    expect((await pull('test-org/private', opts(hub!, tempDir('priv1'), { token: 'hf_owner' }))).downloaded).toHaveLength(3);
    const home = tempDir('home');
    writeFileSync(join(home, 'token'), 'hf_owner\n');
    const viaFile = await pull('test-org/private', { ...opts(hub!, tempDir('priv2')), env: { HF_HOME: home } });
    expect(viaFile.downloaded).toHaveLength(3);
    const viaEnv = await pull('test-org/private', { ...opts(hub!, tempDir('priv3')), env: { HF_TOKEN: 'hf_owner', HF_HOME: tempDir('empty') } });
    expect(viaEnv.downloaded).toHaveLength(3);
  });

  test('gated repo: 401 without a token, 403 with a token lacking access', async () => {
    expect(await oneLine(pull('test-org/gated', opts(hub!, tempDir('g1')))))
      .toMatch(/^test-org\/gated is a gated repo: request access at http:\/\/127\.0\.0\.1:\d+\/test-org\/gated, then pass a token with HF_TOKEN=hf_… or --token hf_…$/);
    expect(await oneLine(pull('test-org/gated', opts(hub!, tempDir('g2'), { token: 'hf_other' })))).toMatch(/gated repo.*check that your token/);
  });

  test('a plain 401 / 403 says how to pass a token', async () => {
    hub!.faults = { status: [{ match: /\/revision\//, status: 401 }] };
    expect(await oneLine(pull(TINY_ID, opts(hub!, tempDir('401'))))).toMatch(/access denied \(HTTP 401\): private or gated repo; pass a token with HF_TOKEN=hf_… or --token hf_…/);
    hub!.faults = { status: [{ match: /\/resolve\//, status: 403 }] };
    expect(await oneLine(pull(TINY_ID, opts(hub!, tempDir('403'), { token: 'hf_bad' })))).toMatch(/the hub refused the token \(HTTP 403\)/);
  });

  test('500: retried, then a one-line error; a transient 500 is survived', async () => {
    hub!.faults = { status: [{ match: /\/revision\//, status: 500 }] };
    expect(await oneLine(pull(TINY_ID, opts(hub!, tempDir('500'))))).toMatch(/^test-org\/rwkv7-tiny: model info: the hub answered HTTP 500; try again later$/);
    expect(hub!.count()).toBe(3);
    hub!.clear();
    hub!.faults = { status: [{ match: /^\/lfs\//, status: 503, times: 1 }] };
    const r = await pull(TINY_ID, opts(hub!, tempDir('503')));
    expect(existsSync(join(r.dir, 'model.safetensors'))).toBe(true);
  });

  test('no network: says --offline uses the cache; with the model cached, a warning and the cached copy', async () => {
    const cache = tempDir('net');
    const down = { ...opts(hub!, cache), endpoint: 'http://127.0.0.1:9' };
    expect(await oneLine(pull(TINY_ID, down))).toMatch(/^cannot reach http:\/\/127\.0\.0\.1:9 \(.+\); check the network or HF_ENDPOINT, or use the cache with --offline \(HF_HUB_OFFLINE=1\)$/);
    const first = await pull(TINY_ID, opts(hub!, cache));
    expect((await pull(TINY_ID, down)).dir).toBe(first.dir);
  });

  test('disk full (ENOSPC while writing): one line that says so', async () => {
    if (!existsSync('/dev/full')) return;
    const cache = tempDir('full');
    const blobs = join(repoDir(cache, TINY_ID), 'blobs');
    mkdirSync(blobs, { recursive: true });
    const weights = await Bun.file(join(TINY!, 'model.safetensors')).bytes();
    symlinkSync('/dev/full', join(blobs, `${sha256Of(weights)}.incomplete`));
    expect(await oneLine(pull(TINY_ID, opts(hub!, cache)))).toMatch(/^disk full while writing .*\.incomplete; free some space or point HF_HUB_CACHE at another disk$/);
  });

  test('settings: HF_ENDPOINT, HF_HUB_OFFLINE, cache dir precedence, token precedence', () => {
    const home = tempDir('set');
    expect(hubSettings({ env: { HF_ENDPOINT: 'http://mirror.test/', HF_HOME: home } }).endpoint).toBe('http://mirror.test');
    expect(hubSettings({ env: { HF_HOME: home } }).endpoint).toBe('https://huggingface.co');
    expect(() => hubSettings({ env: { HF_ENDPOINT: 'mirror.test', HF_HOME: home } })).toThrow(/HF_ENDPOINT must be an http\(s\) URL/);
    for (const v of ['1', 'true', 'YES', 'on']) expect(hubSettings({ env: { HF_HUB_OFFLINE: v, HF_HOME: home } }).offline).toBe(true);
    expect(hubSettings({ env: { HF_HUB_OFFLINE: '0', HF_HOME: home } }).offline).toBe(false);
    expect(hubSettings({ env: { HF_HUB_CACHE: '/a', HF_HOME: '/b' } }).cacheDir).toBe('/a');
    expect(hubSettings({ env: { HF_HOME: '/b', XDG_CACHE_HOME: '/c' } }).cacheDir).toBe('/b/hub');
    expect(hubSettings({ env: { XDG_CACHE_HOME: '/c' } }).cacheDir).toBe('/c/huggingface/hub');
    writeFileSync(join(home, 'token'), 'hf_file\n');
    expect(findToken({ HF_HOME: home })).toBe('hf_file');
    expect(findToken({ HF_HOME: home, HF_TOKEN: 'hf_env' })).toBe('hf_env');
    expect(hubSettings({ token: 'hf_flag', env: { HF_HOME: home, HF_TOKEN: 'hf_env' } }).token).toBe('hf_flag');
    expect(findToken({ HF_HOME: tempDir('none') })).toBeNull();
  });
});
