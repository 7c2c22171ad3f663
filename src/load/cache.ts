// The Hugging Face cache on disk, shared with Python huggingface_hub: its location and models--org--name/{blobs,refs,snapshots}.
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { UsageError } from '../util/errors.ts';

type Env = Record<string, string | undefined>;

const expand = (p: string) => (p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p);

/** $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface (huggingface_hub constants.py). */
export function hfHome(env: Env = process.env): string {
  return expand(env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface'));
}

/** HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub. */
export function hubCacheDir(env: Env = process.env): string {
  return expand(env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || join(hfHome(env), 'hub'));
}

export const isCommit = (rev: string) => /^[0-9a-f]{40}$/.test(rev);

export interface RepoRef { repo: string; revision: string | undefined }

/** "org/name" or "org/name@revision"; the same name rules as huggingface_hub validate_repo_id. */
export function parseRepoId(arg: string): RepoRef {
  const m = arg.match(/^([\w.-]+\/[\w.-]+)(?:@(.+))?$/);
  const repo = m?.[1];
  if (!repo || /--|\.\./.test(repo) || repo.split('/').some(p => /^[-.]|[-.]$/.test(p) || p.length > 96))
    throw new UsageError(`${JSON.stringify(arg)} is not a Hugging Face model id (expected org/name or org/name@revision)`);
  return { repo, revision: m[2] };
}

export const repoFolderName = (repo: string) => `models--${repo.replace('/', '--')}`;

/** models--org--name → org/name, as huggingface_hub scan_cache_dir reads it. */
export function repoFromFolder(folder: string): string | null {
  if (!folder.startsWith('models--')) return null;
  return folder.slice('models--'.length).replace(/--/g, '/');
}

/** One repo's folder in the cache. */
export class RepoCache {
  readonly dir: string;
  constructor(readonly cacheDir: string, readonly repo: string) { this.dir = join(cacheDir, repoFolderName(repo)); }

  blob(name: string): string { return join(this.dir, 'blobs', name); }
  snapshot(commit: string): string { return join(this.dir, 'snapshots', commit); }

  readRef(revision: string): string | null {
    const p = join(this.dir, 'refs', revision);
    if (!existsSync(p) || !statSync(p).isFile()) return null;
    const sha = readFileSync(p, 'utf8').trim();
    return isCommit(sha) ? sha : null;
  }

  /** Python writes refs/<revision> (nested for "refs/pr/1") holding the bare sha, no newline. */
  writeRef(revision: string, commit: string): void {
    if (revision === commit || this.readRef(revision) === commit) return;
    const p = join(this.dir, 'refs', revision);
    mkdirSync(dirname(p), { recursive: true });
    const tmp = `${p}.${process.pid}.tmp`;
    writeFileSync(tmp, commit);
    renameSync(tmp, p);
  }

  /** The commit a revision names locally (a sha with a snapshot, or refs/<revision>), without any request. */
  localCommit(revision: string): string | null {
    if (isCommit(revision) && existsSync(this.snapshot(revision))) return revision;
    return this.readRef(revision);
  }

  /** snapshots/<commit>/<path> → ../../blobs/<name>, relative like Python's; replaced atomically. */
  link(commit: string, path: string, blobName: string): string {
    const dst = join(this.snapshot(commit), path);
    mkdirSync(dirname(dst), { recursive: true });
    const target = relative(dirname(dst), this.blob(blobName));
    try {
      if (lstatSync(dst).isSymbolicLink() && existsSync(dst) && readlinkSync(dst) === target) return dst;
    } catch { /* absent */ }
    const tmp = `${dst}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      symlinkSync(target, tmp);
    } catch {
      copyFileSync(this.blob(blobName), tmp);   // filesystems without symlinks: Python copies too
    }
    renameSync(tmp, dst);
    return dst;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(join(this.cacheDir, '.locks', repoFolderName(this.repo)), { recursive: true, force: true });
  }
}

/** Sum of file sizes under a folder, symlinks not followed (blobs hold the bytes). */
export function folderSize(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += folderSize(p);
    else if (e.isFile()) n += statSync(p).size;
  }
  return n;
}

export interface CachedRepo {
  repo: string;
  dir: string;
  refs: Record<string, string>;      // revision → commit
  snapshots: string[];               // commits, newest first
  sizeBytes: number;
}

/** Every model repo in the cache (datasets and spaces are skipped). */
export function listCached(cacheDir: string): CachedRepo[] {
  if (!existsSync(cacheDir)) return [];
  const out: CachedRepo[] = [];
  for (const folder of readdirSync(cacheDir).sort()) {
    const repo = repoFromFolder(folder);
    const dir = join(cacheDir, folder);
    if (!repo || !statSync(dir).isDirectory()) continue;
    const refs: Record<string, string> = {};
    const refDir = join(dir, 'refs');
    const walk = (d: string, prefix: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name), `${prefix}${e.name}/`);
        else if (e.isFile()) { const sha = readFileSync(join(d, e.name), 'utf8').trim(); if (isCommit(sha)) refs[prefix + e.name] = sha; }
      }
    };
    if (existsSync(refDir)) walk(refDir, '');
    const snapDir = join(dir, 'snapshots');
    const snapshots = existsSync(snapDir)
      ? readdirSync(snapDir).filter(c => statSync(join(snapDir, c)).isDirectory())
        .map(c => ({ c, t: statSync(join(snapDir, c)).mtimeMs })).sort((a, b) => b.t - a.t).map(x => x.c)
      : [];
    out.push({ repo, dir, refs, snapshots, sizeBytes: folderSize(join(dir, 'blobs')) });
  }
  return out;
}
