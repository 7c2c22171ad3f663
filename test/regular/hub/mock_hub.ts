// A loopback Hugging Face Hub for tests: model info, tree, paths-info, resolve (LFS files redirect to a second "CDN" origin),
// Range requests, tokens, and faults (dropped connections, corrupt bytes, forced statuses). Every request is logged.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

type Bytes = Uint8Array;

export interface MockRepo {
  id: string;
  dir?: string;                              // folder served (recursively)
  include?: string[];                        // only these files of dir
  files?: Record<string, Bytes | string>;   // added or replaced files
  sha?: string;
  tags?: Record<string, string>;            // extra revision names → sha ("main" is always sha)
  token?: string;                           // private: only this token sees it
  gated?: boolean;                          // with token: gated, not private
}

export interface Faults {
  drop?: Record<string, { bytes: number; times: number; reset?: boolean }>;   // path → cut after N bytes, first `times` GETs
  corrupt?: Record<string, number>;                                        // path → flip one byte, first N GETs
  status?: { match: RegExp; status: number; times?: number }[];            // request path → forced status
  ignoreRange?: boolean;
  slowMs?: number;                                                         // delay per 64 kB chunk of file bodies
  anyRevision?: boolean;                                                   // hostile: answer model info for any revision name
  redirect?: Record<string, string>;                                       // hostile: path → Location the resolve of that file redirects to
}

export interface Req { server: 'hub' | 'cdn'; method: string; path: string; range: string | null; auth: string | null }

interface File { path: string; data: Bytes; lfs: boolean; sha256: string; gitSha1: string }
interface Repo { spec: MockRepo; sha: string; files: Map<string, File> }

const hex = (algo: 'sha256' | 'sha1', ...parts: (Bytes | string)[]) => { const h = new Bun.CryptoHasher(algo); for (const p of parts) h.update(p); return h.digest('hex'); };
const bytes = (x: Bytes | string) => (typeof x === 'string' ? new TextEncoder().encode(x) : x);

function walk(dir: string, root = dir): string[] {
  return readdirSync(dir).flatMap(n => { const p = join(dir, n); return statSync(p).isDirectory() ? walk(p, root) : [relative(root, p)]; });
}

export class MockHub {
  readonly requests: Req[] = [];
  faults: Faults = {};
  private repos = new Map<string, Repo>();
  private counts = new Map<string, number>();
  private hub: ReturnType<typeof Bun.serve>;
  private cdn: ReturnType<typeof Bun.serve>;

  constructor(repos: MockRepo[]) {
    for (const r of repos) this.add(r);
    const serve = (name: 'hub' | 'cdn') => Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: req => this.handle(name, req), error: () => new Response('boom', { status: 500 }) });
    this.hub = serve('hub');
    this.cdn = serve('cdn');
  }

  get url() { return `http://127.0.0.1:${this.hub.port}`; }
  get cdnUrl() { return `http://127.0.0.1:${this.cdn.port}`; }
  stop() { this.hub.stop(true); this.cdn.stop(true); }
  clear() { this.requests.length = 0; this.counts.clear(); }
  repo(id: string) { return this.repos.get(id)!; }

  add(spec: MockRepo) {
    const files = new Map<string, File>();
    const put = (path: string, data: Bytes) => {
      const lfs = /\.(safetensors|bin|onnx)$/.test(path);
      files.set(path, { path, data, lfs, sha256: hex('sha256', data), gitSha1: hex('sha1', `blob ${data.length}\0`, data) });
    };
    if (spec.dir) for (const p of walk(spec.dir)) if (!spec.include || spec.include.includes(p)) put(p, new Uint8Array(readFileSync(join(spec.dir, p))));
    for (const [p, d] of Object.entries(spec.files ?? {})) put(p, bytes(d));
    this.repos.set(spec.id, { spec, sha: spec.sha ?? hex('sha1', spec.id), files });
  }

  /** How many logged requests match. */
  count(pred: (r: Req) => boolean = () => true) { return this.requests.filter(pred).length; }

  private once(key: string, times: number): boolean {
    const n = this.counts.get(key) ?? 0;
    this.counts.set(key, n + 1);
    return n < times;
  }

  private async handle(server: 'hub' | 'cdn', req: Request): Promise<Response> {
    const u = new URL(req.url);
    const path = decodeURIComponent(u.pathname);
    this.requests.push({ server, method: req.method, path: path + u.search, range: req.headers.get('range'), auth: req.headers.get('authorization') });
    for (const f of this.faults.status ?? [])
      if (f.match.test(path) && this.once(`status:${f.match}`, f.times ?? Infinity)) return new Response('forced', { status: f.status });
    if (server === 'cdn') {
      const m = path.match(/^\/lfs\/([0-9a-f]{64})$/);
      const file = m && [...this.repos.values()].flatMap(r => [...r.files.values()]).find(f => f.sha256 === m[1]);
      return file ? this.body(req, file, {}) : new Response('no such blob', { status: 404 });
    }
    const rogue = this.faults.anyRevision && path.match(/^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/);
    if (rogue) return this.api(req, rogue[1]!, 'revision', this.repo(rogue[1]!)?.sha ?? rogue[2]!);
    let m = path.match(/^\/api\/models\/([^/]+\/[^/]+)(?:\/(revision|tree|paths-info)\/([^/]+)(?:\/(.*))?)?$/);
    if (m) return this.api(req, m[1]!, m[2] ?? 'revision', m[3] ?? 'main', m[4]);
    m = path.match(/^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/);
    if (m) return this.resolve(req, m[1]!, m[2]!, m[3]!);
    return new Response('not found', { status: 404 });
  }

  /** Access check as the hub does it: unknown and private-without-token look the same (401 RepositoryNotFound on files). */
  private access(req: Request, id: string, api: boolean): Repo | Response {
    const repo = this.repos.get(id);
    const auth = req.headers.get('authorization');
    const notFound = () => new Response('Repository not found', { status: api && auth ? 404 : 401, headers: { 'x-error-code': 'RepositoryNotFound', 'x-error-message': 'Repository not found' } });
    if (!repo) return notFound();
    if (repo.spec.token && auth !== `Bearer ${repo.spec.token}`) {
      if (!repo.spec.gated) return notFound();
      return new Response('gated', { status: auth ? 403 : 401, headers: { 'x-error-code': 'GatedRepo', 'x-error-message': 'Access to this repo is restricted' } });
    }
    return repo;
  }

  private commit(repo: Repo, rev: string): string | null {
    if (rev === 'main' || rev === repo.sha) return repo.sha;
    return repo.spec.tags?.[rev] ?? null;
  }

  private entry(f: File) {
    return { type: 'file', oid: f.gitSha1, size: f.data.length, path: f.path, ...(f.lfs ? { lfs: { oid: f.sha256, size: f.data.length, pointerSize: 134 } } : {}) };
  }

  private async api(req: Request, id: string, kind: string, rev: string, sub?: string): Promise<Response> {
    const repo = this.access(req, id, true);
    if (repo instanceof Response) return repo;
    const sha = this.commit(repo, rev);
    if (!sha) return new Response('bad rev', { status: 404, headers: { 'x-error-code': 'RevisionNotFound', 'x-error-message': `Invalid rev id: ${rev}` } });
    const files = [...repo.files.values()];
    if (kind === 'revision')
      return Response.json({ _id: id, id, sha, private: !!repo.spec.token, gated: repo.spec.gated ?? false, downloads: 0, likes: 0,
        lastModified: '2025-01-01T00:00:00.000Z', siblings: files.map(f => ({ rfilename: f.path })) });
    if (kind === 'tree') {
      const prefix = sub ? `${sub}/` : '';
      return Response.json(files.filter(f => f.path.startsWith(prefix)).map(f => this.entry(f)));
    }
    const body = await req.json().catch(() => ({})) as { paths?: string[] };
    return Response.json((body.paths ?? []).map(p => repo.files.get(p)).filter((f): f is File => !!f).map(f => this.entry(f)));
  }

  private resolve(req: Request, id: string, rev: string, path: string): Response {
    const repo = this.access(req, id, false);
    if (repo instanceof Response) return repo;
    const sha = this.commit(repo, rev);
    if (!sha) return new Response('bad rev', { status: 404, headers: { 'x-error-code': 'RevisionNotFound' } });
    const to = this.faults.redirect?.[path];
    if (to) return new Response(null, { status: 302, headers: { location: to } });
    const f = repo.files.get(path);
    if (!f) return new Response('Entry not found', { status: 404, headers: { 'x-error-code': 'EntryNotFound' } });
    const h: Record<string, string> = { 'x-repo-commit': sha, etag: `"${f.lfs ? f.sha256 : f.gitSha1}"` };
    if (f.lfs) {
      Object.assign(h, { 'x-linked-etag': `"${f.sha256}"`, 'x-linked-size': String(f.data.length), location: `${this.cdnUrl}/lfs/${f.sha256}?sig=fake` });
      return new Response(null, { status: 302, headers: h });
    }
    return this.body(req, f, h);
  }

  private body(req: Request, f: File, headers: Record<string, string>): Response {
    const size = f.data.length;
    let data = f.data;
    if (req.method === 'GET' && this.once(`corrupt:${f.path}`, this.faults.corrupt?.[f.path] ?? 0)) {
      data = data.slice();
      data[size >> 1]! ^= 0xff;
    }
    const h: Record<string, string> = { ...headers, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    let start = 0, end = size - 1, status = 200;
    const range = req.headers.get('range')?.match(/^bytes=(\d+)-(\d*)$/);
    if (range && !this.faults.ignoreRange) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(Number(range[2]), size - 1);
      if (start >= size) return new Response(null, { status: 416, headers: { ...h, 'content-range': `bytes */${size}` } });
      status = 206;
      h['content-range'] = `bytes ${start}-${end}/${size}`;
    }
    const part = data.subarray(start, end + 1);
    h['content-length'] = String(part.length);
    if (req.method === 'HEAD') return new Response(null, { status, headers: h });
    const drop = this.faults.drop?.[f.path];
    if (drop && this.once(`drop:${f.path}`, drop.times)) {
      let sent = false;
      const stream = new ReadableStream({
        async pull(c) {
          if (!sent) { c.enqueue(part.subarray(0, drop.bytes)); sent = true; return; }
          await Bun.sleep(100);                    // let the bytes reach the client before the reset discards buffers
          if (drop.reset) c.error(new Error('mock hub: connection reset on purpose (this line is expected)')); else c.close();
        },
      });
      return new Response(stream, { status, headers: h });
    }
    const slow = this.faults.slowMs;
    if (slow) {
      let at = 0;
      return new Response(new ReadableStream({
        async pull(c) {
          if (at >= part.length) { c.close(); return; }
          await Bun.sleep(slow);
          c.enqueue(part.subarray(at, at + 65536));
          at += 65536;
        },
      }), { status, headers: h });
    }
    return new Response(part, { status, headers: h });
  }
}

/** A 40-hex commit id, different per seed. */
export const fakeSha = (seed: string) => hex('sha1', seed);
export const sha256Of = (d: Bytes | string) => hex('sha256', bytes(d));
export const gitSha1Of = (d: Bytes | string) => { const b = bytes(d); return hex('sha1', `blob ${b.length}\0`, b); };
