// Prompt-state cache: snapshots of a slot's state (recurrent + conv/shift state; KV rows of attention layers)
// taken at token boundaries, kept in a radix trie of their token prefixes. A request restores the deepest
// snapshot on its path and prefills only the rest. Bounded in bytes (snapshots and trie edges), LRU eviction;
// with a host budget, checkpoints pushed off the device are copied to host memory first (LRU there too).
import { snapshotParts, type Backend, type Snapshot } from '../backend/backend.ts';
import { log } from '../util/log.ts';

/** A checkpoint: the state after the first `depth` tokens of some path (on the device, or spilled to the host). */
export interface CacheHit {
  readonly depth: number; readonly snapshot: Snapshot | null; readonly host: Float32Array | null;
  /** The logits after the last of the `depth` tokens, kept with prompt-end checkpoints (a whole repeated prompt). */
  readonly logits: Float32Array | null;
}

export interface PrefixCacheOptions {
  /** Upper bound of the cache's memory (snapshots + trie), bytes; 0 = off. */
  maxBytes: number;
  /** Checkpoint every this many prompt tokens (prefill chunks end on multiples of it). Default 256. */
  interval?: number;
  /** Host memory for checkpoints evicted from the device (0 = none: evicted checkpoints are dropped). */
  hostBytes?: number;
}

export interface PrefixCacheStats {
  hits: number; misses: number; tokensSaved: number;
  /** Memory held now (snapshots + trie), bytes. */
  bytes: number; entries: number; evictions: number; maxBytes: number;
  /** Checkpoints held in host memory, their bytes, and how many were moved there. */
  hostEntries: number; hostBytes: number; spills: number;
}

/** Bytes a trie node costs besides its edge's tokens (object, child map entry): an estimate that errs high. */
const NODE_BYTES = 160;

interface Entry {
  node: Node; depth: number; bytes: number;
  /** On the device (also while its copy to the host is under way), else null. */
  snapshot: Snapshot | null;
  host: Float32Array | null;
  logits: Float32Array | null;
  spilling: boolean; dead: boolean;
}

class Node {
  children = new Map<number, Node>();
  entry: Entry | null = null;
  constructor(public edge: Int32Array, public depth: number, public parent: Node | null) {}
}

export class PrefixCache {
  readonly maxBytes: number;
  readonly interval: number;
  private root = new Node(new Int32Array(0), 0, null);
  /** Entries from least to most recently used (a Map keeps insertion order; a touch re-inserts). */
  private lru = new Map<Entry, true>();
  private hostLru = new Map<Entry, true>();
  private snapBytes = 0;
  /** Device bytes of checkpoints being copied to the host: counted in `bytes` until freed, not as evictable. */
  private spillingBytes = 0;
  private hostUsed = 0;
  private readonly hostMax: number;
  private spills = new Set<Promise<void>>();
  private trieBytes = NODE_BYTES;
  private counts = { hits: 0, misses: 0, tokensSaved: 0, evictions: 0, spills: 0 };

  constructor(readonly backend: Backend, opts: PrefixCacheOptions) {
    if (!(opts.maxBytes >= 0)) throw new Error(`prefix cache: maxBytes must be >= 0, got ${opts.maxBytes}`);
    this.maxBytes = opts.maxBytes;
    this.interval = Math.max(1, opts.interval ?? 256);
    this.hostMax = Math.max(0, opts.hostBytes ?? 0);
  }

  get enabled(): boolean { return this.maxBytes > 0; }
  get bytes(): number { return this.snapBytes + this.trieBytes; }

  /**
   * The deepest checkpoint on `tokens`' path at most `max` deep (default: one short of the whole sequence, so
   * that at least one token is left to feed and give logits; with `whole`, the whole sequence too when its
   * checkpoint kept the logits). Marks it recently used.
   */
  lookup(tokens: ArrayLike<number>, max = tokens.length - 1, whole = false): CacheHit | null {
    if (whole) max = tokens.length;
    let node = this.root, best: Entry | null = null, i = 0;
    while (i < tokens.length) {
      const child = node.children.get(tokens[i]!);
      if (!child || child.depth > max) break;
      const e = child.edge;
      let j = 0;
      while (j < e.length && e[j] === tokens[i + j]) j++;
      if (j < e.length) break;
      i += e.length;
      node = child;
      if (node.entry && (node.depth < tokens.length || !whole || node.entry.logits)) best = node.entry;
    }
    if (!best) return null;
    this.touch(best);
    return { depth: best.depth, snapshot: best.snapshot, host: best.host, logits: best.depth === tokens.length ? best.logits : null };
  }

  /** Copy a checkpoint's state into `slot` (the caller sets the slot's position to hit.depth). */
  restore(hit: CacheHit, slot: number): void {
    if (hit.snapshot) { this.backend.restore(hit.snapshot, slot); return; }
    const up = this.backend.uploadSnapshot(hit.host!, hit.depth);   // from the host: through a transient upload
    this.backend.restore(up, slot);
    this.backend.freeSnapshot(up);
  }

  /** Count a request's outcome: a hit when `saved` > 0 tokens came from the cache. */
  record(saved: number): void {
    if (saved > 0) { this.counts.hits++; this.counts.tokensSaved += saved; } else this.counts.misses++;
  }

  /** Count tokens restored after the request's first lookup (another sequence computed its prefix meanwhile). */
  recordSaved(saved: number): void { this.counts.tokensSaved += saved; }

  /** True when a checkpoint exists for exactly these tokens. */
  has(tokens: ArrayLike<number>): boolean { return this.find(tokens)?.entry != null; }

  /**
   * Checkpoint `slot`, whose state holds exactly `tokens`. A checkpoint already there is kept (marked used);
   * one that cannot fit the bound is not taken. Evicts least recently used checkpoints to stay in bounds.
   */
  insert(tokens: ArrayLike<number>, slot: number, logits?: Float32Array): void {
    if (!this.enabled || tokens.length === 0) return;
    const at = this.find(tokens);
    if (at?.entry) {
      if (logits && !at.entry.logits) this.keepLogits(at.entry, logits);
      this.touch(at.entry);
      return;
    }
    const bytes = 4 * snapshotParts(this.backend.stateSpecs, tokens.length).reduce((a, b) => a + b, 0);
    if (bytes + 4 * tokens.length + 3 * NODE_BYTES > this.maxBytes) return;   // could never fit beside the trie
    let snap: Snapshot;
    try { snap = this.backend.snapshot(slot, tokens.length); } catch (e) {   // e.g. over the adapter's largest buffer
      if (!this.warned) log.warn(`prefix cache: a checkpoint of ${tokens.length} tokens was not taken (${(e as Error).message})`);
      this.warned = true;
      return;
    }
    const e = this.add(tokens, snap);
    if (e && logits) this.keepLogits(e, logits);
  }

  /** Keep a copy of the logits after a checkpoint's last token (counted in its bytes, held on the host). */
  private keepLogits(e: Entry, logits: Float32Array): void {
    if (e.spilling || e.host) return;   // only while on the device (its bytes are accounted there)
    e.logits = logits.slice();
    e.bytes += e.logits.byteLength;
    this.snapBytes += e.logits.byteLength;
    if (!this.shrink(e)) this.evict(e);
  }

  /** Add a snapshot taken elsewhere (a state file): the cache then owns it. False when it cannot fit the bound or the slots. */
  adopt(tokens: ArrayLike<number>, snapshot: Snapshot): boolean {
    const fits = snapshot.bytes === 4 * snapshotParts(this.backend.stateSpecs, tokens.length).reduce((a, b) => a + b, 0);   // not past the slots' context
    if (!this.enabled || tokens.length === 0 || snapshot.depth !== tokens.length || !fits || snapshot.bytes + 4 * tokens.length + 3 * NODE_BYTES > this.maxBytes) {
      this.backend.freeSnapshot(snapshot);
      return false;
    }
    const at = this.find(tokens);
    if (at?.entry) { this.backend.freeSnapshot(snapshot); this.touch(at.entry); return true; }
    return this.add(tokens, snapshot) !== null;
  }

  /** Where the prefill chunk starting after `fed` tokens should end at the latest: the next checkpoint boundary. */
  nextBoundary(fed: number): number { return (Math.floor(fed / this.interval) + 1) * this.interval; }

  stats(): PrefixCacheStats {
    return {
      ...this.counts, bytes: this.bytes, entries: this.lru.size + this.spillingCount, maxBytes: this.maxBytes,
      hostEntries: this.hostLru.size, hostBytes: this.hostUsed,
    };
  }

  private spillingCount = 0;
  private warned = false;

  /** Wait for the copies to the host under way. */
  async settled(): Promise<void> { while (this.spills.size) await Promise.all([...this.spills]); }

  /** Drop every checkpoint. */
  clear(): void {
    for (const e of [...this.lru.keys(), ...this.hostLru.keys()]) this.evict(e);
    this.forEachEntry(e => this.evict(e));   // those being spilled
  }

  private forEachEntry(f: (e: Entry) => void): void {
    const walk = (n: Node) => { for (const c of [...n.children.values()]) walk(c); if (n.entry) f(n.entry); };
    walk(this.root);
  }

  /** The new entry, or null when it did not stay (it is evicted itself only if it alone exceeds the bound). */
  private add(tokens: ArrayLike<number>, snapshot: Snapshot): Entry | null {
    const node = this.place(tokens);
    const e: Entry = { node, depth: tokens.length, bytes: snapshot.bytes, snapshot, host: null, logits: null, spilling: false, dead: false };
    node.entry = e;
    this.lru.set(e, true);
    this.snapBytes += snapshot.bytes;
    if (this.shrink(e)) return e;
    this.evict(e);
    return null;
  }

  /** Push least recently used checkpoints other than `keep` off the device until within the bound; false if it cannot. */
  private shrink(keep: Entry): boolean {
    for (const old of this.lru.keys()) {
      if (this.bytes - this.spillingBytes <= this.maxBytes) break;
      if (old !== keep) this.pushOff(old);
    }
    return this.bytes - this.spillingBytes <= this.maxBytes;
  }

  /** Move a device checkpoint to the host when the host budget allows, else drop it. */
  private pushOff(e: Entry): void {
    if (e.bytes > this.hostMax) { this.evict(e); return; }
    this.lru.delete(e);
    e.spilling = true;
    this.spillingBytes += e.bytes;
    this.spillingCount++;
    const snap = e.snapshot!;
    const p = this.backend.readSnapshot(snap).then(data => {
      this.backend.freeSnapshot(snap);
      this.snapBytes -= e.bytes;
      this.spillingBytes -= e.bytes;
      this.spillingCount--;
      e.spilling = false;
      e.snapshot = null;
      if (e.dead) return;
      e.host = data;
      this.hostLru.set(e, true);
      this.hostUsed += e.bytes;
      this.counts.spills++;
      for (const old of this.hostLru.keys()) {
        if (this.hostUsed <= this.hostMax) break;
        this.evict(old);
      }
    }, () => {   // the device failed: forget the checkpoint
      this.snapBytes -= e.bytes; this.spillingBytes -= e.bytes; this.spillingCount--; e.spilling = false; e.snapshot = null;
      if (!e.dead) this.evict(e);
    }).finally(() => this.spills.delete(p));
    this.spills.add(p);
  }

  private touch(e: Entry): void {
    const m = e.host ? this.hostLru : e.spilling ? null : this.lru;
    if (m) { m.delete(e); m.set(e, true); }
  }

  /** The node ending exactly at `tokens`, or null. */
  private find(tokens: ArrayLike<number>): Node | null {
    let node = this.root, i = 0;
    while (i < tokens.length) {
      const child = node.children.get(tokens[i]!);
      if (!child || child.depth > tokens.length) return null;
      for (let j = 0; j < child.edge.length; j++) if (child.edge[j] !== tokens[i + j]) return null;
      i += child.edge.length;
      node = child;
    }
    return node;
  }

  /** The node ending exactly at `tokens`, made by adding a leaf and/or splitting an edge. */
  private place(tokens: ArrayLike<number>): Node {
    let node = this.root, i = 0;
    while (i < tokens.length) {
      const child = node.children.get(tokens[i]!);
      if (!child) {
        const leaf = new Node(Int32Array.from({ length: tokens.length - i }, (_, k) => tokens[i + k]!), tokens.length, node);
        node.children.set(tokens[i]!, leaf);
        this.trieBytes += NODE_BYTES + 4 * leaf.edge.length;
        return leaf;
      }
      const e = child.edge;
      let j = 0;
      while (j < e.length && i + j < tokens.length && e[j] === tokens[i + j]) j++;
      if (j === e.length) { i += j; node = child; continue; }
      // split child's edge after j tokens: node → mid → child
      const mid = new Node(e.slice(0, j), child.depth - e.length + j, node);
      child.edge = e.slice(j);
      child.parent = mid;
      mid.children.set(child.edge[0]!, child);
      node.children.set(mid.edge[0]!, mid);
      this.trieBytes += NODE_BYTES;
      i += j;
      node = mid;
    }
    return node;
  }

  private evict(e: Entry): void {
    if (e.dead) return;
    e.dead = true;
    this.lru.delete(e);
    if (this.hostLru.delete(e)) { this.hostUsed -= e.bytes; e.host = null; }
    else if (!e.spilling && e.snapshot) { this.snapBytes -= e.bytes; this.backend.freeSnapshot(e.snapshot); e.snapshot = null; }
    // a spilling entry's device copy is freed when its readback ends
    this.counts.evictions++;
    const node = e.node;
    node.entry = null;
    this.prune(node);
  }

  /** Remove nodes that hold nothing: a childless empty node goes, an empty node with one child merges into it. */
  private prune(node: Node): void {
    while (node.parent && !node.entry) {
      const parent = node.parent;
      if (node.children.size === 0) {
        parent.children.delete(node.edge[0]!);
        this.trieBytes -= NODE_BYTES + 4 * node.edge.length;
        node = parent;
        continue;
      }
      if (node.children.size === 1) {
        const [child] = node.children.values();
        const edge = new Int32Array(node.edge.length + child!.edge.length);
        edge.set(node.edge);
        edge.set(child!.edge, node.edge.length);
        child!.edge = edge;
        child!.parent = parent;
        parent.children.set(edge[0]!, child!);
        this.trieBytes -= NODE_BYTES;
      }
      break;
    }
  }
}
