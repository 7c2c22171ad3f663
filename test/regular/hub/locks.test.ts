// Download locks: fla takes Python huggingface_hub's lock (an flock on .locks/models--org--name/<blob>.lock), so a
// Python process holding it makes fla wait and the other way round; the O_EXCL lock-file fallback breaks dead locks.
import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { downloadBlob } from '../../../src/load/download.ts';
import { HubClient, hubSettings } from '../../../src/load/hub_api.ts';
import { opts, pull, repoDir, same, silent, tempDir, TINY, TINY_ID, TINY_SHA, tinyRepo } from './helpers.ts';
import { MockHub, sha256Of } from './mock_hub.ts';

const hub = TINY ? new MockHub([tinyRepo()]) : null;
afterAll(() => hub?.stop());
beforeEach(() => { if (hub) { hub.clear(); hub.faults = {}; } });

const weights = TINY ? readFileSync(join(TINY, 'model.safetensors')) : Buffer.alloc(0);
const WEIGHTS_SHA = sha256Of(weights);
const HAS_PYTHON = Bun.spawnSync(['python3', '-c', 'import fcntl']).exitCode === 0;
const pyLock = (cache: string) => join(cache, '.locks', 'models--test-org--rwkv7-tiny', `${WEIGHTS_SHA}.lock`);

/** A Python process taking the lock exactly as filelock's UnixFileLock does (fcntl.flock LOCK_EX|LOCK_NB), for `secs`. */
function pythonHolding(path: string, secs: number) {
  const code = `import fcntl, os, sys, time
os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    print("busy", flush=True); sys.exit(3)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
fcntl.flock(fd, fcntl.LOCK_UN); os.close(fd)
print("released %.3f" % time.time(), flush=True)`;
  return Bun.spawn(['python3', '-c', code, path, String(secs)], { stdout: 'pipe', stderr: 'inherit' });
}

/** Reads a child's stdout line by line. */
function lines(p: ReturnType<typeof pythonHolding>): () => Promise<string> {
  const reader = p.stdout.getReader();
  const dec = new TextDecoder();
  let buf = '';
  return async () => {
    while (!buf.includes('\n')) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
    }
    const k = buf.indexOf('\n');
    const line = k < 0 ? buf : buf.slice(0, k);
    buf = k < 0 ? '' : buf.slice(k + 1);
    return line;
  };
}
const firstLine = (p: ReturnType<typeof pythonHolding>) => lines(p)();

describe.skipIf(!TINY || !HAS_PYTHON)('locks shared with Python huggingface_hub', () => {
  test('Python holds the blob lock: fla waits for it, then downloads once; the lock file is where Python keeps it', async () => {
    const cache = tempDir('pylock');
    const py = pythonHolding(pyLock(cache), 1.2);
    const line = lines(py);
    expect(await line()).toBe('locked');
    const t0 = Date.now();
    const r = await pull(TINY_ID, opts(hub!, cache));
    const waited = Date.now() - t0;
    const out = await line();
    expect(await py.exited).toBe(0);
    expect(out).toMatch(/^released /);
    expect(waited).toBeGreaterThan(900);
    expect(hub!.count(q => q.server === 'cdn')).toBe(1);
    expect(same(join(r.dir, 'model.safetensors'), join(TINY!, 'model.safetensors'))).toBe(true);
    expect(existsSync(join(repoDir(cache, TINY_ID), 'blobs', `${WEIGHTS_SHA}.lock`))).toBe(false);
  });

  test('fla holds the blob lock while downloading: Python cannot take it', async () => {
    hub!.faults = { slowMs: 60 };
    const cache = tempDir('flalock');
    const pulling = pull(TINY_ID, opts(hub!, cache));
    for (let i = 0; i < 200 && hub!.count(q => q.server === 'cdn') === 0; i++) await Bun.sleep(10);
    const py = pythonHolding(pyLock(cache), 0);
    expect(await firstLine(py)).toBe('busy');
    expect(await py.exited).toBe(3);
    await pulling;
    const after = pythonHolding(pyLock(cache), 0);
    expect(await firstLine(after)).toBe('locked');
    await after.exited;
  });
});

describe.skipIf(!TINY)('the lock-file fallback (no flock)', () => {
  const spec = (cache: string) => {
    const client = new HubClient(hubSettings({ endpoint: hub!.url, cacheDir: cache, env: {} }), TINY_ID);
    const blobPath = join(repoDir(cache, TINY_ID), 'blobs', WEIGHTS_SHA);
    mkdirSync(join(repoDir(cache, TINY_ID), 'blobs'), { recursive: true });
    return { client, blobPath, spec: { url: client.fileUrl(TINY_SHA, 'model.safetensors'), blobPath, label: 'tiny', size: weights.length, sha256: WEIGHTS_SHA, gitSha1: null } };
  };

  test('a lock left by a dead process is broken', async () => {
    const cache = tempDir('stale');
    const { client, blobPath, spec: s } = spec(cache);
    writeFileSync(`${blobPath}.lock`, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname() }));
    expect(await downloadBlob(s, client, silent)).toBe(true);
    expect(same(blobPath, join(TINY!, 'model.safetensors'))).toBe(true);
    expect(existsSync(`${blobPath}.lock`)).toBe(false);
  });

  test('a lock of a live process that stopped refreshing it is broken once stale', async () => {
    const cache = tempDir('stale2');
    const { client, blobPath, spec: s } = spec(cache);
    writeFileSync(`${blobPath}.lock`, JSON.stringify({ pid: process.ppid, host: 'another-host' }));
    const old = new Date(Date.now() - 120_000);
    utimesSync(`${blobPath}.lock`, old, old);
    expect(await downloadBlob(s, client, silent)).toBe(true);
    expect(same(blobPath, join(TINY!, 'model.safetensors'))).toBe(true);
  });

  test('a fresh lock of a live process is waited for', async () => {
    const cache = tempDir('live');
    const { client, blobPath, spec: s } = spec(cache);
    writeFileSync(`${blobPath}.lock`, JSON.stringify({ pid: process.ppid, host: 'another-host' }));
    let done = false;
    const p = downloadBlob(s, client, silent).then(v => { done = true; return v; });
    await Bun.sleep(500);
    expect(done).toBe(false);
    writeFileSync(blobPath, weights);                  // the other process finished
    Bun.spawnSync(['rm', `${blobPath}.lock`]);
    expect(await p).toBe(false);
  });
});
