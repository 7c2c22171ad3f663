// The Hugging Face cache on disk, shared with Python huggingface_hub: its location and models--org--name/{blobs,refs,snapshots}.
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { FlaError, UsageError } from '../util/errors.ts';

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
/** A blob's name in the cache: the LFS sha256 or the git blob sha1. */
export const isBlobName = (name: string) => /^([0-9a-f]{40}|[0-9a-f]{64})$/.test(name);

/**
 * Why `rev` is not a revision the hub could answer (null when it is one): a 40-hex commit, or a branch/tag name by
 * git's ref-name rules (git check-ref-format), which also keep refs/<revision> inside the cache: no "..", no
 * component starting with "." or ending with ".lock", no leading, trailing or doubled "/", no backslash, no
 * control characters, spaces or any of ~^:?*[ and no "@{".
 */
export function revisionProblem(rev: string): string | null {
  if (isCommit(rev)) return null;
  if (rev.length === 0) return 'it is empty';
  if (rev.length > 255) return 'it is longer than 255 characters';
  if (rev.includes('..')) return 'it contains ".."';
  if (rev.includes('\\')) return 'it contains a backslash';
  if (rev.startsWith('/') || rev.endsWith('/') || rev.includes('//')) return 'it starts or ends with "/" or has an empty component';
  if (/[\x00-\x20\x7f~^:?*[]/.test(rev)) return 'it contains a space, a control character or one of ~^:?*[';
  if (rev.includes('@{') || rev === '@') return 'it contains "@{" or is "@"';
  if (rev.endsWith('.')) return 'it ends with "."';
  if (rev.split('/').some(c => c.startsWith('.') || c.endsWith('.lock'))) return 'a component starts with "." or ends with ".lock"';
  return null;
}

/** Throws a UsageError unless `rev` is a commit or a valid branch/tag name. */
export function checkRevision(rev: string, what = 'revision'): string {
  const why = revisionProblem(rev);
  if (why) throw new UsageError(`${what} ${JSON.stringify(rev)} is not a branch, tag or 40-hex commit: ${why}`);
  return rev;
}

/** join(root, ...parts), refused unless the result lies strictly inside root (no "..", no absolute part). */
export function inside(root: string, ...parts: string[]): string {
  const p = join(root, ...parts);
  const rel = relative(root, p);
  if (!rel || rel === '..' || rel.startsWith('../') || isAbsolute(rel) || parts.some(x => isAbsolute(x) || x.includes('\0')))
    throw new FlaError(`refusing a cache path outside ${root}: ${JSON.stringify(parts.join('/'))}`);
  return p;
}

export interface RepoRef { repo: string; revision: string | undefined }

/** "org/name" or "org/name@revision"; the same name rules as huggingface_hub validate_repo_id. */
export function parseRepoId(arg: string): RepoRef {
  const m = arg.match(/^([\w.-]+\/[\w.-]+)(?:@(.+))?$/);
  const repo = m?.[1];
  if (!repo || /--|\.\./.test(repo) || repo.split('/').some(p => /^[-.]|[-.]$/.test(p) || p.length > 96))
    throw new UsageError(`${JSON.stringify(arg)} is not a Hugging Face model id (expected org/name or org/name@revision)`);
  if (m[2] !== undefined) checkRevision(m[2], `${repo}@…: revision`);
  return { repo, revision: m[2] };
}

export const repoFolderName = (repo: string) => `models--${repo.replace('/', '--')}`;

/** models--org--name → org/name, as huggingface_hub scan_cache_dir reads it. */
export function repoFromFolder(folder: string): string | null {
  if (!folder.startsWith('models--')) return null;
  return folder.slice('models--'.length).replace(/--/g, '/');
}

/**
 * One repo's folder in the cache. Every path it builds goes through inside(): refs/<revision> takes only valid
 * revision names, snapshots/<commit> only 40-hex commits, blobs/<name> only hash names, and file paths inside a
 * snapshot must stay in it, so a hostile revision, hub answer or shard name cannot reach outside the repo folder.
 */
export class RepoCache {
  readonly dir: string;
  constructor(readonly cacheDir: string, readonly repo: string) {
    // Not parseRepoId: Python also caches ids without an org (models--gpt2), which fla ls must still handle.
    const folder = repoFolderName(repo);
    if (!repo || /[/\\]/.test(folder) || /^\.|\.\./.test(repo)) throw new UsageError(`${JSON.stringify(repo)} is not a Hugging Face model id (expected org/name)`);
    this.dir = inside(cacheDir, folder);
  }

  blob(name: string): string {
    if (!isBlobName(name)) throw new FlaError(`${this.repo}: ${JSON.stringify(name)} is not a blob name (a sha256 or git sha1)`);
    return inside(this.dir, 'blobs', name);
  }
  snapshot(commit: string): string {
    if (!isCommit(commit)) throw new FlaError(`${this.repo}: ${JSON.stringify(commit)} is not a 40-hex commit`);
    return inside(this.dir, 'snapshots', commit);
  }
  /** Where Python huggingface_hub takes its lock for a blob: <cache>/.locks/models--org--name/<blob>.lock. */
  lock(name: string): string {
    if (!isBlobName(name)) throw new FlaError(`${this.repo}: ${JSON.stringify(name)} is not a blob name (a sha256 or git sha1)`);
    return inside(this.cacheDir, '.locks', repoFolderName(this.repo), `${name}.lock`);
  }

  readRef(revision: string): string | null {
    const p = inside(this.dir, 'refs', checkRevision(revision));
    if (!existsSync(p) || !statSync(p).isFile()) return null;
    const sha = readFileSync(p, 'utf8').trim();
    return isCommit(sha) ? sha : null;
  }

  /** Python writes refs/<revision> (nested for "refs/pr/1") holding the bare sha, no newline. */
  writeRef(revision: string, commit: string): void {
    if (revision === commit || this.readRef(revision) === commit) return;
    if (!isCommit(commit)) throw new FlaError(`${this.repo}: ${JSON.stringify(commit)} is not a 40-hex commit`);
    const p = inside(this.dir, 'refs', checkRevision(revision));
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
    const dst = inside(this.snapshot(commit), path);
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
    rmSync(inside(this.cacheDir, '.locks', repoFolderName(this.repo)), { recursive: true, force: true });
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
