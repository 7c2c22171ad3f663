// fla pull / ls / rm: the Hugging Face cache from the command line; hubOptions() maps --revision/--token/--offline for run and ppl.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { hubCacheDir, listCached, parseRepoId, RepoCache } from '../src/load/cache.ts';
import type { PullOptions } from '../src/load/hub.ts';
import { missingLocally } from '../src/load/hub_files.ts';
import { verifyBlobs } from '../src/load/hub_verify.ts';
import { readJson } from '../src/load/config.ts';
import { formatBytes } from '../src/load/progress.ts';
import { supportedModelTypes } from '../src/models/registry.ts';
import { pullModel } from '../src/runtime/model.ts';
import { tokenizerProblem } from '../src/tokenizer/tokenizer.ts';
import { FlaError, UsageError } from '../src/util/errors.ts';
import { log } from '../src/util/log.ts';
import { rejectUnknown } from './options.ts';

export const HUB_OPTIONS = ['revision', 'token', 'offline'];

function optString(v: unknown, flag: string): string | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) throw new UsageError(`${flag} given more than once`);
  if (typeof v === 'boolean' || String(v) === '') throw new UsageError(`${flag} needs a value`);
  return String(v);
}

export function hubOptions(opts: Record<string, unknown>): PullOptions {
  if (opts.offline !== undefined && typeof opts.offline !== 'boolean') throw new UsageError('--offline takes no value');
  return { revision: optString(opts.revision, '--revision'), token: optString(opts.token, '--token'), offline: opts.offline === true };
}

export async function pullCommand(repo: string | undefined, opts: Record<string, unknown>): Promise<number> {
  rejectUnknown(opts, [...HUB_OPTIONS, 'verify']);
  if (!repo) throw new UsageError('missing model: fla pull ORG/NAME [--revision R]');
  if (opts.verify !== undefined && typeof opts.verify !== 'boolean') throw new UsageError('--verify takes no value');
  const r = await pullModel(repo, { ...hubOptions(opts), verify: opts.verify === true });
  const what = r.downloaded.length ? `${r.downloaded.length} files downloaded` : 'already in the cache';
  const check = r.verified ? `; ${r.verified.checked} cached files re-hashed, ${r.verified.damaged.length ? `${r.verified.damaged.length} damaged and downloaded again` : 'all match'}` : '';
  log.info(`${r.repo}@${r.revision} (${r.commit.slice(0, 7)}): ${what}${check}`);
  process.stdout.write(r.dir + '\n');
  return 0;
}

interface LsRow {
  repo: string; revisions: { revision: string | null; commit: string }[]; size_bytes: number; model_type: string | null; supported: boolean; complete: boolean; tokenizer: boolean; path: string;
  /** fla ls --verify: blobs re-hashed, the damaged ones (deleted), and the files downloaded again in their place. */
  verified?: { checked: number; damaged: string[]; downloaded: string[]; error?: string };
}

export function lsRows(cacheDir = hubCacheDir()): LsRow[] {
  const supported = new Set(supportedModelTypes());
  return listCached(cacheDir).map(c => {
    const named = Object.entries(c.refs).map(([revision, commit]) => ({ revision: revision as string | null, commit }));
    const loose = c.snapshots.filter(s => !named.some(n => n.commit === s)).map(commit => ({ revision: null, commit }));
    const shown = c.refs.main ?? named[0]?.commit ?? c.snapshots[0];
    const snap = shown ? join(c.dir, 'snapshots', shown) : null;
    let modelType: string | null = null;
    try { if (snap && existsSync(join(snap, 'config.json'))) modelType = String(readJson(join(snap, 'config.json')).model_type ?? '') || null; } catch { /* unreadable config */ }
    return {
      repo: c.repo, revisions: [...named, ...loose], size_bytes: c.sizeBytes, model_type: modelType,
      supported: modelType !== null && supported.has(modelType), complete: !!snap && missingLocally(snap).length === 0,
      tokenizer: !!snap && existsSync(snap) && tokenizerProblem(readdirSync(snap)) === null, path: c.dir,
    };
  });
}

/**
 * fla ls --verify: re-hash every blob of every cached repo against its name; delete the damaged ones and download
 * again what a snapshot that was complete now lacks. Returns the rows as they are afterwards.
 */
async function verifyCache(cacheDir: string, rows: LsRow[]): Promise<LsRow[]> {
  const results = new Map<string, NonNullable<LsRow['verified']>>();
  for (const row of rows) {
    const cache = new RepoCache(cacheDir, row.repo);
    const completeBefore = row.revisions.map(v => v.commit).filter(c => missingLocally(cache.snapshot(c)).length === 0);
    const r = await verifyBlobs(cache);
    const v: NonNullable<LsRow['verified']> = { checked: r.checked, damaged: r.damaged, downloaded: [] };
    results.set(row.repo, v);
    if (!r.damaged.length) continue;
    log.warn(`${row.repo}: ${r.damaged.length} damaged blob${r.damaged.length > 1 ? 's' : ''} deleted (${r.damaged.map(b => b.slice(0, 12)).join(', ')}); downloading again`);
    for (const commit of completeBefore) {
      if (missingLocally(cache.snapshot(commit)).length === 0) continue;
      try { v.downloaded.push(...(await pullModel(`${row.repo}@${commit}`)).downloaded); } catch (e) {
        v.error = (e as Error).message;
        log.warn(`${row.repo}@${commit.slice(0, 7)}: not downloaded again (${v.error}); run fla pull ${row.repo}@${commit} when the hub can be reached`);
      }
    }
  }
  return lsRows(cacheDir).map(row => ({ ...row, ...(results.has(row.repo) ? { verified: results.get(row.repo) } : {}) }));
}

export async function lsCommand(opts: Record<string, unknown>): Promise<number> {
  rejectUnknown(opts, ['json', 'verify']);
  if (opts.verify !== undefined && typeof opts.verify !== 'boolean') throw new UsageError('--verify takes no value');
  const cacheDir = hubCacheDir();
  let rows = lsRows(cacheDir);
  if (opts.verify) rows = await verifyCache(cacheDir, rows);
  const code = rows.some(r => r.verified?.error) ? 1 : 0;   // damage left in the cache
  if (opts.json) { process.stdout.write(JSON.stringify(rows) + '\n'); return code; }
  if (!rows.length) { log.info(`no models in ${cacheDir}`); return 0; }
  const verifiedCol = (r: LsRow) => !r.verified ? [] : [r.verified.error ? `${r.verified.damaged.length} damaged, not repaired`
    : r.verified.damaged.length ? `${r.verified.damaged.length} damaged, downloaded again` : `ok (${r.verified.checked} files)`];
  const table = [['REPO', 'REVISION', 'SIZE', 'MODEL_TYPE', 'SUPPORTED', ...(opts.verify ? ['VERIFIED'] : [])], ...rows.map(r => [
    r.repo, r.revisions.map(v => v.revision ? `${v.revision} (${v.commit.slice(0, 7)})` : v.commit.slice(0, 7)).join(', ') || '-',
    formatBytes(r.size_bytes), r.model_type ?? '?', !r.supported ? 'no' : !r.complete ? 'yes (incomplete)' : r.tokenizer ? 'yes' : 'yes (no tokenizer: --ids only)', ...verifiedCol(r),
  ])];
  const w = table[0]!.map((_, i) => Math.max(...table.map(row => row[i]!.length)));
  for (const row of table) process.stdout.write(row.map((c, i) => i === row.length - 1 ? c : c.padEnd(w[i]!)).join('  ') + '\n');
  return code;
}

export async function rmCommand(repoArg: string | undefined, opts: Record<string, unknown>): Promise<number> {
  rejectUnknown(opts, []);
  if (!repoArg) throw new UsageError('missing model: fla rm ORG/NAME');
  const { repo, revision } = parseRepoId(repoArg);
  if (revision) throw new UsageError(`fla rm removes every revision of a repo; give ${repo} without @${revision}`);
  const cacheDir = hubCacheDir();
  const cache = new RepoCache(cacheDir, repo);
  if (!existsSync(cache.dir)) throw new FlaError(`${repo} is not in the cache (${cacheDir})`);
  const size = lsRows(cacheDir).find(r => r.repo === repo)?.size_bytes ?? 0;
  cache.remove();
  log.info(`removed ${repo} (${formatBytes(size)}) from ${cacheDir}`);
  return 0;
}
