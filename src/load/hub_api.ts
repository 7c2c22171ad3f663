// Talking to the Hugging Face Hub (or an HF_ENDPOINT mirror): settings from env/flags, requests, and one-line errors.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pkg from '../../package.json' with { type: 'json' };
import { FlaError, UsageError } from '../util/errors.ts';
import { hfHome, hubCacheDir } from './cache.ts';

type Env = Record<string, string | undefined>;

export interface HubSettings {
  endpoint: string;
  token: string | null;
  offline: boolean;
  cacheDir: string;
  timeoutMs: number;       // a request or a download that receives nothing for this long fails
  fetch: typeof fetch;
}

export interface HubOptions { token?: string; offline?: boolean; endpoint?: string; cacheDir?: string; fetch?: typeof fetch; env?: Env }

const truthy = (v: string | undefined) => !!v && ['1', 'on', 'yes', 'true'].includes(v.trim().toLowerCase());

/** Token: --token, else HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the file `hf auth login` writes ($HF_TOKEN_PATH or $HF_HOME/token). */
export function findToken(env: Env): string | null {
  const t = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (t?.trim()) return t.trim();
  const file = env.HF_TOKEN_PATH || join(hfHome(env), 'token');
  if (existsSync(file)) { const s = readFileSync(file, 'utf8').trim(); if (s) return s; }
  return null;
}

export function hubSettings(o: HubOptions = {}): HubSettings {
  const env = o.env ?? process.env;
  const secs = Number(env.HF_HUB_DOWNLOAD_TIMEOUT);
  const endpoint = (o.endpoint ?? (env.HF_ENDPOINT || 'https://huggingface.co')).replace(/\/+$/, '');
  if (!URL.canParse(endpoint) || !/^https?:$/.test(new URL(endpoint).protocol)) throw new UsageError(`HF_ENDPOINT must be an http(s) URL, got ${JSON.stringify(endpoint)}`);
  return {
    endpoint,
    token: o.token ?? findToken(env),
    offline: !!o.offline || truthy(env.HF_HUB_OFFLINE),
    cacheDir: o.cacheDir ?? hubCacheDir(env),
    timeoutMs: Number.isFinite(secs) && secs > 0 ? secs * 1000 : 30_000,
    fetch: o.fetch ?? fetch,
  };
}

/** A failed fetch (no HTTP answer): DNS, refused, reset, timeout. */
export class NetworkError extends FlaError {}
/** An answer that may go away on its own (HTTP 429, 5xx): a partial download is worth keeping for a resume. */
export class RetryLaterError extends FlaError {}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));
const TOKEN_HINT = 'pass a token with HF_TOKEN=hf_… or --token hf_…';

export class HubClient {
  constructor(readonly s: HubSettings, readonly repo: string) {}

  apiUrl(rest: string): string { return `${this.s.endpoint}/api/models/${this.repo}/${rest}`; }
  fileUrl(commit: string, path: string): string {
    return `${this.s.endpoint}/${this.repo}/resolve/${commit}/${path.split('/').map(encodeURIComponent).join('/')}`;
  }

  /**
   * GET/HEAD with redirects followed by hand: the token goes only to the endpoint's origin, never to the CDN a file
   * redirects to (signed storage URLs reject a second credential). `signal` aborts; errors are HubErrors / NetworkErrors.
   */
  async request(url: string, init: { method?: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal } = {}, what = url): Promise<Response> {
    const origin = new URL(this.s.endpoint).origin;
    let retries = 0;   // transient 5xx answers
    for (let hop = 0; hop < 12; hop++) {
      const headers: Record<string, string> = { 'user-agent': `fla/${pkg.version}`, ...init.headers };
      if (this.s.token && new URL(url).origin === origin) headers.authorization = `Bearer ${this.s.token}`;
      let res: Response;
      try {
        res = await this.s.fetch(url, { ...init, headers, redirect: 'manual', signal: init.signal ?? AbortSignal.timeout(this.s.timeoutMs) });
      } catch (e) {
        throw this.networkError(e);
      }
      const loc = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && loc) {
        await res.body?.cancel();
        const next = URL.canParse(loc, url) ? new URL(loc, url) : null;
        // Only http(s): a mirror must not make us read file://, data: or anything else into the cache.
        if (!next || !/^https?:$/.test(next.protocol))
          throw new FlaError(`${this.repo}: ${what}: the hub redirected to ${next ? `a ${next.protocol} URL` : `an invalid URL ${JSON.stringify(loc.slice(0, 80))}`}; only http(s) redirects are followed`);
        url = next.href;
        continue;
      }
      if (res.status >= 500 && retries++ < 2) { await res.body?.cancel(); await sleep(300 * retries); continue; }
      if (!res.ok && res.status !== 416) throw this.httpError(res, what);
      return res;
    }
    throw new FlaError(`${this.repo}: too many redirects for ${what}`);
  }

  networkError(e: unknown): NetworkError {
    const err = e as Error & { code?: string };
    const why = err.name === 'TimeoutError' || err.name === 'AbortError' ? `no answer in ${this.s.timeoutMs / 1000} s` : (err.code ?? err.message).split('\n')[0];
    return new NetworkError(`cannot reach ${this.s.endpoint} (${why}); check the network or HF_ENDPOINT, or use the cache with --offline (HF_HUB_OFFLINE=1)`);
  }

  httpError(res: Response, what: string): FlaError {
    const code = res.headers.get('x-error-code');
    const msg = res.headers.get('x-error-message');
    const r = this.repo, hasToken = !!this.s.token;
    if (code === 'GatedRepo')
      return new FlaError(`${r} is a gated repo: request access at ${this.s.endpoint}/${r}, then ${hasToken ? 'check that your token belongs to that account' : TOKEN_HINT}`);
    if (code === 'RepositoryNotFound' || (res.status === 404 && !code && what === 'model info'))
      return new FlaError(`${r}: repository not found on ${this.s.endpoint}${hasToken ? '' : ` (if it is private, ${TOKEN_HINT})`}`);
    if (code === 'RevisionNotFound') return new FlaError(`${r}: revision not found (${msg ?? what})`);
    if (code === 'EntryNotFound') return new FlaError(`${r}: ${what} not found in the repo`);
    if (res.status === 401 || res.status === 403)
      return new FlaError(hasToken ? `${r}: the hub refused the token (HTTP ${res.status}); check HF_TOKEN / --token and your access to the repo`
        : `${r}: access denied (HTTP ${res.status}): private or gated repo; ${TOKEN_HINT}`);
    if (res.status === 429) return new RetryLaterError(`${r}: rate limited by ${this.s.endpoint} (HTTP 429); try again later${hasToken ? '' : ` or ${TOKEN_HINT}`}`);
    const Err = res.status >= 500 ? RetryLaterError : FlaError;
    return new Err(`${r}: ${what}: the hub answered HTTP ${res.status}${msg ? ` (${msg})` : ''}${res.status >= 500 ? '; try again later' : ''}`);
  }

  async json<T>(url: string, what: string, init?: { method?: string; body?: string; headers?: Record<string, string> }): Promise<T> {
    const res = await this.request(url, init, what);
    try { return await res.json() as T; } catch (e) {
      throw e instanceof FlaError ? e : new FlaError(`${this.repo}: ${what}: the hub's answer is not JSON`);
    }
  }

  /** The revision's commit sha and its file list (GET /api/models/{repo}/revision/{rev}). */
  async modelInfo(revision: string): Promise<{ sha: string; files: string[] }> {
    const j = await this.json<{ sha?: string; siblings?: { rfilename: string }[] }>(this.apiUrl(`revision/${encodeURIComponent(revision)}`), 'model info');
    if (typeof j.sha !== 'string' || !/^[0-9a-f]{40}$/.test(j.sha) || !Array.isArray(j.siblings))
      throw new FlaError(`${this.repo}: the hub's model info has no commit sha or file list`);
    return { sha: j.sha, files: j.siblings.map(x => x.rfilename) };
  }

  /** size, git blob oid and LFS sha256 of the given paths at a commit (POST paths-info). */
  async pathsInfo(commit: string, paths: string[]): Promise<Map<string, RemoteFile>> {
    const list = await this.json<RemoteFile[]>(this.apiUrl(`paths-info/${commit}`), 'paths-info',
      { method: 'POST', body: JSON.stringify({ paths, expand: false }), headers: { 'content-type': 'application/json' } });
    return new Map(list.filter(e => e.type === 'file').map(e => [e.path, e]));
  }
}

export interface RemoteFile { type: string; path: string; size: number; oid: string; lfs?: { oid: string; size: number } }
