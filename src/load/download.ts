// One blob into the cache: lock, stream to <blob>.incomplete with Range resume, verify sha256 / git sha1, rename into place.
import { dlopen, FFIType } from 'bun:ffi';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, truncateSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname } from 'node:path';
import { FlaError } from '../util/errors.ts';
import { log } from '../util/log.ts';
import { type HubClient, NetworkError, RetryLaterError } from './hub_api.ts';
import type { Progress } from './progress.ts';

export interface BlobSpec {
  url: string;
  blobPath: string;
  label: string;              // what the user sees: org/name/file
  size: number | null;
  sha256: string | null;      // LFS files
  gitSha1: string | null;     // regular files: the git blob id
  /** Python huggingface_hub's lock for this blob (<cache>/.locks/models--org--name/<blob>.lock), taken with flock. */
  lockPath?: string;
}

const RETRIES = 5;            // network interruptions resumed per verification attempt
const STALE_MS = 30_000;      // a lock not refreshed for this long belongs to a dead process
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

/**
 * Download `spec` into blobs/ unless it is already there; true when this call downloaded it.
 * Only a complete, verified file is ever renamed into place.
 */
export async function downloadBlob(spec: BlobSpec, client: HubClient, progress: Progress): Promise<boolean> {
  if (existsSync(spec.blobPath)) return false;
  try { mkdirSync(dirname(spec.blobPath), { recursive: true }); } catch (e) { throw diskError(e, dirname(spec.blobPath)); }
  return withLock(spec, async () => {
    if (existsSync(spec.blobPath)) return false;   // another process finished it while we waited
    const tmp = `${spec.blobPath}.incomplete`;
    try {
      for (let attempt = 0; ; attempt++) {
        await fetchResumable(spec, tmp, client, progress);
        const bad = await verify(spec, tmp);
        if (!bad) break;
        unlinkSync(tmp);
        if (attempt === 1) throw new FlaError(`${spec.label}: the download does not match the hub's ${bad} twice; the file was deleted, not used`);
        log.warn(`${spec.label}: ${bad} mismatch, downloading again`);
      }
    } catch (e) {
      // Keep a partial file only where a later run can resume it (an interruption with bytes already in).
      const size = existsSync(tmp) ? statSync(tmp).size : 0;
      const resumable = e instanceof NetworkError || e instanceof RetryLaterError;
      if (existsSync(tmp) && (!resumable || size === 0)) try { unlinkSync(tmp); } catch { /* gone */ }
      throw e;
    }
    renameSync(tmp, spec.blobPath);
    return true;
  });
}

async function fetchResumable(spec: BlobSpec, tmp: string, client: HubClient, progress: Progress): Promise<void> {
  let failures = 0;
  for (;;) {
    const from = existsSync(tmp) ? statSync(tmp).size : 0;
    if (spec.size !== null && from === spec.size) return;
    if (spec.size !== null && from > spec.size) truncateSync(tmp, 0);
    try {
      await fetchOnce(spec, tmp, spec.size !== null && from > spec.size ? 0 : from, client, progress);
      const got = statSync(tmp).size;
      if (spec.size === null || got >= spec.size) return;
      throw new NetworkError(`${spec.label}: the connection closed after ${got} of ${spec.size} bytes; run again to resume`);
    } catch (e) {
      progress.fail();
      if (!(e instanceof NetworkError) || ++failures > RETRIES) throw e;
      log.debug(`${spec.label}: ${e.message}; resuming (retry ${failures}/${RETRIES})`);
      await sleep(Math.min(200 * 2 ** failures, 5000));
    }
  }
}

async function fetchOnce(spec: BlobSpec, tmp: string, from: number, client: HubClient, progress: Progress): Promise<void> {
  const ctl = new AbortController();
  let timer = setTimeout(() => ctl.abort(), client.s.timeoutMs);
  const poke = () => { clearTimeout(timer); timer = setTimeout(() => ctl.abort(), client.s.timeoutMs); };
  let fh: FileHandle | null = null;
  try {
    const res = await client.request(spec.url, { headers: from > 0 ? { range: `bytes=${from}-` } : {}, signal: ctl.signal }, basename(spec.label));
    let at = from;
    // The file is opened only once the hub answered: a refused or redirected request leaves nothing behind.
    fh = await open(tmp, from > 0 ? 'a' : 'w').catch(e => { throw diskError(e, tmp); });
    if (res.status === 416) {                              // our partial file is not a prefix the server knows
      if (spec.size === null) return;
      await fh.truncate(0);
      throw new NetworkError('range not satisfiable; starting over');
    }
    if (from > 0 && res.status !== 206) { await fh.truncate(0); at = 0; }   // the server ignored Range
    progress.start(spec.label, spec.size, at);
    const reader = res.body!.getReader();
    for (;;) {
      let r: Awaited<ReturnType<typeof reader.read>>;
      try { r = await reader.read(); } catch (e) { throw client.networkError(ctl.signal.aborted ? Object.assign(new Error(), { name: 'TimeoutError' }) : e); }
      if (r.done) break;
      poke();
      await fh.write(r.value).catch(e => { throw diskError(e, tmp); });
      at += r.value.length;
      progress.update(at);
    }
    if (spec.size === null || at >= spec.size) progress.done();
  } finally {
    clearTimeout(timer);
    await fh?.close();
  }
}

function diskError(e: unknown, path: string): Error {
  const code = (e as { code?: string }).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new FlaError(`disk full while writing ${path}; free some space or point HF_HUB_CACHE at another disk`);
  if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') return new FlaError(`cannot write ${path} (${code}); set HF_HUB_CACHE to a writable folder`);
  return e as Error;
}

/** null when the file matches what the hub announced, else the name of what did not match. */
async function verify(spec: BlobSpec, path: string): Promise<string | null> {
  const size = statSync(path).size;
  if (spec.size !== null && size !== spec.size) return 'size';
  // Hash the file as it is on disk, not the bytes this process saw: a resumed file has a prefix written by another run.
  if (spec.sha256) {
    const h = new Bun.CryptoHasher('sha256');
    for await (const chunk of Bun.file(path).stream()) h.update(chunk);
    return h.digest('hex') === spec.sha256 ? null : 'sha256';
  }
  if (spec.gitSha1) {
    const h = new Bun.CryptoHasher('sha1');
    h.update(`blob ${size}\0`);
    h.update(readFileSync(path));
    return h.digest('hex') === spec.gitSha1 ? null : 'git sha1';
  }
  return null;
}

const LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
let flockFn: ((fd: number, op: number) => number) | null | undefined;

/** libc flock(2), the lock Python's filelock takes; null where it cannot be loaded. */
function flock(): ((fd: number, op: number) => number) | null {
  if (flockFn !== undefined) return flockFn;
  try {
    const lib = dlopen(process.platform === 'darwin' ? 'libc.dylib' : 'libc.so.6', { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
    flockFn = (fd, op) => lib.symbols.flock(fd, op) as number;
  } catch { flockFn = null; }
  return flockFn;
}

/**
 * Hold the blob's lock while `fn` runs. With spec.lockPath and flock(2): an exclusive flock on the file Python
 * huggingface_hub locks (the kernel drops it when a process dies; the file stays, as Python leaves it), so fla and
 * Python pulling the same blob wait for each other. Otherwise an O_EXCL lock file next to the blob.
 */
async function withLock<T>(spec: BlobSpec, fn: () => Promise<T>): Promise<T> {
  const lockFn = spec.lockPath ? flock() : null;
  if (!spec.lockPath || !lockFn) return withLockFile(`${spec.blobPath}.lock`, spec.label, fn);
  const path = spec.lockPath;
  let fd: number;
  try {
    mkdirSync(dirname(path), { recursive: true });
    fd = openSync(path, 'a');
  } catch (e) { throw diskError(e, path); }
  try {
    let waited = false;
    while (lockFn(fd, LOCK_EX | LOCK_NB) !== 0) {
      if (!waited) { log.info(`${spec.label}: waiting for another process downloading it`); waited = true; }
      await sleep(150);
    }
    try { return await fn(); } finally { lockFn(fd, LOCK_UN); }
  } finally {
    closeSync(fd);
  }
}

/** An O_EXCL lock file holding {pid, host}; refreshed while held, broken when its process is gone or it went stale. */
async function withLockFile<T>(path: string, label: string, fn: () => Promise<T>): Promise<T> {
  const me = JSON.stringify({ pid: process.pid, host: hostname() });
  let waited = false;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, me);
      closeSync(fd);
      break;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== 'EEXIST') throw diskError(e, path);
    }
    const holder = readLock(path);
    if (holder !== null && isStale(path, holder)) {
      // Unlink only the lock we judged stale, not one a third process took meanwhile.
      if (readLock(path) === holder) try { unlinkSync(path); } catch { /* gone already */ }
      continue;
    }
    if (!waited) { log.info(`${label}: waiting for another process downloading it`); waited = true; }
    await sleep(150);
  }
  const beat = setInterval(() => { try { const t = new Date(); utimesSync(path, t, t); } catch { /* removed */ } }, 5000);
  try {
    return await fn();
  } finally {
    clearInterval(beat);
    try { if (readLock(path) === me) unlinkSync(path); } catch { /* gone */ }
  }
}


function readLock(path: string): string | null {
  try { return readFileSync(path, 'utf8'); } catch { return null; }
}

function isStale(path: string, content: string): boolean {
  let age: number;
  try { age = Date.now() - statSync(path).mtimeMs; } catch { return false; }
  try {
    const { pid, host } = JSON.parse(content) as { pid: number; host: string };
    if (host === hostname() && pid !== process.pid) {
      try { process.kill(pid, 0); } catch (e) { if ((e as { code?: string }).code === 'ESRCH') return true; }
    }
  } catch {
    return age > 2000;          // empty or torn: give its writer a moment
  }
  return age > STALE_MS;
}
