// org/name[@revision] → a snapshot folder in the Hugging Face cache, downloading what fla needs (config.json checked first).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlaError, UsageError } from '../util/errors.ts';
import { log } from '../util/log.ts';
import { checkRevision, isBlobName, isCommit, parseRepoId, RepoCache } from './cache.ts';
import { downloadBlob } from './download.ts';
import { HubClient, type HubOptions, hubSettings, NetworkError, type RemoteFile } from './hub_api.ts';
import { INDEX, missingLocally, smallFiles, weightFiles } from './hub_files.ts';
import { checkWeightSizes, verifySnapshot } from './hub_verify.ts';
import { readJson } from './config.ts';
import { loadTokenizer, tokenizerProblem } from '../tokenizer/tokenizer.ts';
import { type Progress, StderrProgress } from './progress.ts';

export interface PullOptions extends HubOptions {
  revision?: string;
  progress?: Progress;
  /** Re-hash the cached files against their sha256 / git sha1 first; damaged ones are deleted and downloaded again. */
  verify?: boolean;
  /** The caller will tokenize text: refuse a repo without a usable tokenizer before any weights are downloaded. */
  needTokenizer?: boolean;
}
export interface Pulled {
  repo: string; revision: string; commit: string; dir: string; downloaded: string[];
  /** With verify: files re-hashed, and those that did not match. */
  verified?: { checked: number; damaged: string[] };
}

/** True for an argument shaped like a hub id (org/name or org/name@revision). */
export const isHubId = (arg: string) => /^[A-Za-z0-9][\w.-]*\/[\w.-]+(@[\w./-]+)?$/.test(arg);

/** The caller's check of config.json (the architecture, from above src/load), run before any other file is fetched. */
export type ConfigCheck = (config: Record<string, unknown>, where: string) => void;

export async function pullRepo(arg: string, o: PullOptions, checkConfig: ConfigCheck): Promise<Pulled> {
  const ref = parseRepoId(arg);
  if (ref.revision && o.revision && ref.revision !== o.revision) throw new UsageError(`${arg}: revision given twice (@${ref.revision} and --revision ${o.revision})`);
  const revision = checkRevision(o.revision ?? ref.revision ?? 'main', o.revision !== undefined ? '--revision' : 'revision');
  const repo = ref.repo;
  const s = hubSettings(o);
  const cache = new RepoCache(s.cacheDir, repo);
  const named = revision === 'main' ? repo : `${repo}@${revision}`;
  const verified = o.verify ? { checked: 0, damaged: [] as string[] } : undefined;
  const seen = new Set<string>();
  const verifyCommit = async (commit: string | null) => {
    if (!verified || commit === null || seen.has(commit)) return;
    seen.add(commit);
    const r = await verifySnapshot(cache, commit);
    verified.checked += r.checked;
    verified.damaged.push(...r.damaged);
    for (const f of r.damaged) log.warn(`${named}: the cached ${f} does not match its sha256 / git sha1 (or is missing); deleted${s.offline ? '' : ', downloading it again'}`);
  };
  const done = (commit: string, downloaded: string[] = []): Pulled => {
    const dir = cache.snapshot(commit);
    if (existsSync(dir)) checkWeightSizes(dir, readdirSync(dir), named);
    return { repo, revision, commit, dir, downloaded, ...(verified ? { verified } : {}) };
  };

  const local = cache.localCommit(revision);
  await verifyCommit(local);
  const localOk = local !== null && missingLocally(cache.snapshot(local)).length === 0;
  if (s.offline) {
    if (localOk) return done(local);
    if (verified?.damaged.length) throw new FlaError(`${named}: ${verified.damaged.join(', ')} in the cache ${verified.damaged.length > 1 ? 'were' : 'was'} damaged and deleted; offline mode is on, so run fla pull ${named} with network access to download again`);
    throw new FlaError(`${named} is not in the Hugging Face cache (${cache.dir}) and offline mode is on (--offline / HF_HUB_OFFLINE); run fla pull ${named} with network access first`);
  }
  if (localOk && isCommit(revision)) return done(local);   // a commit never changes: no request

  const client = new HubClient(s, repo);
  let info: { sha: string; files: string[] };
  try {
    info = await client.modelInfo(revision);
  } catch (e) {
    if (e instanceof NetworkError && localOk) {
      log.warn(`${e.message.split(';')[0]}; using the cached ${named} (${local.slice(0, 7)})`);
      return done(local);
    }
    throw e;
  }
  const commit = info.sha;
  await verifyCommit(commit);
  cache.writeRef(revision, commit);
  const snap = cache.snapshot(commit);
  const small = smallFiles(info.files);
  if (!small.includes('config.json')) throw new FlaError(`${repo}: the repo has no config.json, so it is not a transformers-style checkpoint fla can read`);
  const noTokenizer = tokenizerProblem(info.files);
  if (noTokenizer && o.needTokenizer) throw new FlaError(`${repo}: ${noTokenizer}; give the prompt as --ids, or use a repo that ships one`);

  // Everything needed already cached (from a previous pull or Python): no further request.
  const haveIndex = () => readFileSync(join(snap, INDEX), 'utf8');
  const cachedWeights = (() => { try { return weightFiles(info.files, haveIndex, repo); } catch { return null; } })();
  if (cachedWeights && missingLocally(snap, [...small, ...cachedWeights]).length === 0) return done(commit);

  const progress = o.progress ?? new StderrProgress();
  const downloaded: string[] = [];
  const meta = new Map<string, RemoteFile>();
  const fetchFiles = async (paths: string[], describe = paths) => {
    const unknown = describe.filter(p => !meta.has(p) && missingLocally(snap, [p]).length);
    if (unknown.length) for (const [k, v] of await client.pathsInfo(commit, unknown)) meta.set(k, v);
    for (const p of paths) {
      if (missingLocally(snap, [p]).length === 0) continue;
      const m = meta.get(p);
      if (!m) throw new FlaError(`${repo}: ${p} is listed by the hub but has no file info at ${commit.slice(0, 7)}`);
      const blobName = m.lfs?.oid ?? m.oid;
      if (!isBlobName(blobName)) throw new FlaError(`${repo}: the hub gave ${p} a malformed id ${JSON.stringify(blobName)}`);
      const fresh = await downloadBlob({
        url: client.fileUrl(commit, p), blobPath: cache.blob(blobName), lockPath: cache.lock(blobName), label: `${repo}/${p}`,
        size: m.lfs?.size ?? m.size, sha256: m.lfs?.oid ?? null, gitSha1: m.lfs ? null : m.oid,
      }, client, progress);
      cache.link(commit, p, blobName);
      if (fresh) downloaded.push(p);
    }
  };

  // config.json first: refuse an unsupported architecture before gigabytes of weights.
  await fetchFiles(['config.json'], small);
  checkArch(snap, repo, checkConfig);
  await fetchFiles(small);
  if (noTokenizer) log.warn(`${repo}: ${noTokenizer}; only --ids prompts will work`);
  else loadTokenizer(snap);      // a tokenizer that does not parse fails here, before the weights
  const weights = weightFiles(info.files, haveIndex, repo);
  await fetchFiles(weights);
  if (downloaded.length) log.debug(`${named}: ${downloaded.length} files into ${snap}`);
  return done(commit, downloaded);
}

function checkArch(snap: string, repo: string, checkConfig: ConfigCheck): void {
  const where = `${repo}/config.json`;
  checkConfig(readJson(join(snap, 'config.json')), where);
}
