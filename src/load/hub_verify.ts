// Checking what is already in the cache: blobs re-hashed against their names (the LFS sha256 or the git blob sha1,
// as huggingface_hub names them) for --verify, and the cheap size check of safetensors weights on every run.
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { FlaError } from '../util/errors.ts';
import { isBlobName, type RepoCache } from './cache.ts';

/** True when the file's content hashes to `name`: sha256 for 64 hex digits, git's "blob <size>\0" sha1 for 40. */
export async function blobMatches(path: string, name: string): Promise<boolean> {
  const sha256 = name.length === 64;
  const h = new Bun.CryptoHasher(sha256 ? 'sha256' : 'sha1');
  if (!sha256) h.update(`blob ${statSync(path).size}\0`);
  for await (const chunk of Bun.file(path).stream()) h.update(chunk);
  return h.digest('hex') === name;
}

/** Files of a snapshot (relative paths) with the blob each links to; copies (no symlink) have blob null. */
export function snapshotFiles(snap: string, cache: RepoCache): { path: string; blob: string | null }[] {
  if (!existsSync(snap)) return [];
  const out: { path: string; blob: string | null }[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name), rel = prefix + e.name;
      if (e.isDirectory()) { walk(p, `${rel}/`); continue; }
      if (!lstatSync(p).isSymbolicLink()) { out.push({ path: rel, blob: null }); continue; }
      const target = resolve(dirname(p), readlinkSync(p));
      const name = basename(target);
      out.push({ path: rel, blob: dirname(target) === join(cache.dir, 'blobs') && isBlobName(name) ? name : null });
    }
  };
  walk(snap, '');
  return out;
}

/**
 * Re-hash the blobs a snapshot links to; a damaged blob is deleted (its links then dangle, so the next pull
 * downloads it again). Returns the snapshot paths whose blob was damaged or missing.
 */
export async function verifySnapshot(cache: RepoCache, commit: string): Promise<{ checked: number; damaged: string[] }> {
  let checked = 0;
  const damaged: string[] = [];
  for (const f of snapshotFiles(cache.snapshot(commit), cache)) {
    if (!f.blob) continue;
    const blob = cache.blob(f.blob);
    checked++;
    if (existsSync(blob) && await blobMatches(blob, f.blob)) continue;
    rmSync(blob, { force: true });
    damaged.push(f.path);
  }
  return { checked, damaged };
}

/** Re-hash every blob of a repo; damaged ones are deleted. Returns their names. */
export async function verifyBlobs(cache: RepoCache): Promise<{ checked: number; damaged: string[] }> {
  const dir = join(cache.dir, 'blobs');
  if (!existsSync(dir)) return { checked: 0, damaged: [] };
  let checked = 0;
  const damaged: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!isBlobName(name)) continue;          // .incomplete parts are checked when their download ends
    checked++;
    const p = cache.blob(name);
    if (await blobMatches(p, name)) continue;
    rmSync(p, { force: true });
    damaged.push(name);
  }
  return { checked, damaged };
}

/**
 * The size a safetensors file must have by its own header (8 + header + the end of the last tensor; the format
 * allows no holes or trailing bytes), or null when the header cannot be read (Checkpoint.open then says why).
 */
export function safetensorsSize(path: string): number | null {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch { return null; }
  try {
    const head = Buffer.alloc(8);
    if (readSync(fd, head, 0, 8, 0) !== 8) return null;
    const n = Number(head.readBigUInt64LE(0));
    if (n <= 0 || n > 100_000_000) return null;
    const buf = Buffer.alloc(n);
    if (readSync(fd, buf, 0, n, 8) !== n) return null;
    const header = JSON.parse(buf.toString('utf8')) as Record<string, { data_offsets?: [number, number] }>;
    let end = 0;
    for (const [k, v] of Object.entries(header)) if (k !== '__metadata__' && Array.isArray(v?.data_offsets)) end = Math.max(end, Number(v.data_offsets[1]));
    return 8 + n + end;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** Every cached run: the weights must have the size their headers announce (a truncated or padded blob is damaged). */
export function checkWeightSizes(snap: string, files: string[], named: string): void {
  for (const f of files) {
    const p = join(snap, f);
    if (!f.endsWith('.safetensors') || !existsSync(p)) continue;
    const want = safetensorsSize(p), have = statSync(p).size;
    if (want !== null && want !== have)
      throw new FlaError(`${named}: the cached ${f} is ${have} bytes but its header needs ${want}: the file is damaged; run fla pull --verify ${named} to download it again`);
  }
}
