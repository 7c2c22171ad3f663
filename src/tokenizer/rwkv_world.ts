// defines: WorldTokenizer, the RWKV "World" tokenizer (rwkv_vocab_v20230424.txt): greedy longest match over UTF-8 bytes.
// Vocab format, one token a line: `ID LITERAL LEN`, LITERAL a Python str ('…', "…": its UTF-8 bytes) or bytes (b'…')
// literal, LEN its length in bytes. Encoding picks, at each position, the longest token matching the bytes there;
// of tokens with equal bytes the one with the highest id wins. Id 0 is not in the file: it is the end-of-text token.
import { readFileSync } from 'node:fs';
import { FormatError } from '../util/errors.ts';

type Json = Record<string, unknown>;

const SIMPLE: Record<string, number> = { '\\': 0x5c, "'": 0x27, '"': 0x22, a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11 };

/** The bytes a Python string or bytes literal stands for; throws with the reason on anything else. */
export function pythonLiteralBytes(lit: string): Uint8Array {
  let s = lit;
  const isBytes = s[0] === 'b' || s[0] === 'B';
  if (isBytes) s = s.slice(1);
  const q = s[0];
  if ((q !== "'" && q !== '"') || s.length < 2 || s[s.length - 1] !== q) throw new Error(`not a quoted literal: ${lit}`);
  const body = s.slice(1, -1);
  const out: number[] = [];
  const pushCode = (cp: number) => {   // a code point of a str literal, as UTF-8
    if (cp >= 0xd800 && cp <= 0xdfff) throw new Error(`surrogate \\u${cp.toString(16)} cannot be encoded as UTF-8`);
    if (cp > 0x10ffff) throw new Error(`code point ${cp.toString(16)} out of range`);
    for (const b of new TextEncoder().encode(String.fromCodePoint(cp))) out.push(b);
  };
  const hexAt = (i: number, n: number) => {
    const h = body.slice(i, i + n);
    if (h.length !== n || !/^[0-9a-fA-F]+$/.test(h)) throw new Error(`bad \\x/\\u escape in ${lit}`);
    return parseInt(h, 16);
  };
  for (let i = 0; i < body.length;) {
    const c = body[i]!;
    if (c === q) throw new Error(`unescaped quote inside ${lit}`);
    if (c !== '\\') {
      const cp = body.codePointAt(i)!;
      if (isBytes && cp > 0x7f) throw new Error(`non-ASCII character in a bytes literal: ${lit}`);
      if (isBytes) out.push(cp); else pushCode(cp);
      i += cp > 0xffff ? 2 : 1;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) throw new Error(`trailing backslash in ${lit}`);
    if (e in SIMPLE) { out.push(SIMPLE[e]!); i += 2; }
    else if (e === '\n') i += 2;                                  // line continuation
    else if (e === 'x') { const v = hexAt(i + 2, 2); if (isBytes) out.push(v); else pushCode(v); i += 4; }
    else if (e >= '0' && e <= '7') {
      let j = i + 1; let v = 0;
      while (j < i + 4 && body[j]! >= '0' && body[j]! <= '7') v = v * 8 + Number(body[j++]);
      if (isBytes) out.push(v & 0xff); else pushCode(v);
      i = j;
    } else if (!isBytes && e === 'u') { pushCode(hexAt(i + 2, 4)); i += 6; }
    else if (!isBytes && e === 'U') { pushCode(hexAt(i + 2, 8)); i += 10; }
    else if (!isBytes && e === 'N') throw new Error(`\\N{…} escapes are not supported: ${lit}`);
    else { out.push(0x5c); i += 1; }                               // unknown escape: the backslash stays
  }
  return new Uint8Array(out);
}

const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** Token text from a tokenizer_config entry: "tok", {content: "tok"}, or null. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

/** The RWKV World tokenizer: a byte vocabulary, plus the special tokens tokenizer_config.json adds (id 0 at least). */
export class WorldTokenizer {
  readonly vocabSize: number;
  readonly eosIds: number[];
  readonly bosId: number | null;
  readonly chatTemplate: string | null;
  readonly config: Json;
  private readonly tokens: (Uint8Array | undefined)[] = [];
  private readonly byKey = new Map<string, number>();   // token bytes as latin1 → id (the highest id of equal bytes)
  private readonly prefixes = new Set<string>();         // every prefix of every token: the trie, as a set
  private readonly special = new Map<number, string>();  // id → text of the special (added) tokens
  private readonly specialByText = new Map<string, number>();
  private readonly addBos: boolean;

  /** `vocab` is the text of rwkv_vocab_*.txt; `where` names it in errors. */
  constructor(vocab: string, config: Json = {}, where = 'rwkv vocab') {
    this.config = config;
    const lines = vocab.split('\n');
    for (let n = 0; n < lines.length; n++) {
      const line = lines[n]!.replace(/\r$/, '');
      if (line === '') continue;
      const a = line.indexOf(' '), b = line.lastIndexOf(' ');
      const bad = (why: string) => new FormatError(`${where}:${n + 1}: ${why} (expected "ID LITERAL LENGTH")`);
      if (a <= 0 || b <= a) throw bad('malformed line');
      const id = Number(line.slice(0, a)), len = Number(line.slice(b + 1));
      if (!Number.isSafeInteger(id) || id < 1 || id > 1 << 24 || !/^\d+$/.test(line.slice(0, a))) throw bad(`bad id ${JSON.stringify(line.slice(0, a))}`);
      if (!/^\d+$/.test(line.slice(b + 1))) throw bad(`bad length ${JSON.stringify(line.slice(b + 1))}`);
      let bytes: Uint8Array;
      try { bytes = pythonLiteralBytes(line.slice(a + 1, b).trim()); } catch (e) { throw bad((e as Error).message); }
      if (bytes.length !== len) throw bad(`token is ${bytes.length} bytes, the line says ${len}`);
      this.tokens[id] = bytes;
      if (bytes.length === 0) continue;                      // an empty token can never be matched
      const key = latin1(bytes);
      this.byKey.set(key, id);                               // later lines win, as in the reference
      for (let k = 1; k <= key.length; k++) this.prefixes.add(key.slice(0, k));
    }
    if (this.byKey.size === 0) throw new FormatError(`${where}: no tokens`);

    // Special tokens: tokenizer_config's added_tokens_decoder, else id 0 as the end-of-text token.
    const added = config.added_tokens_decoder;
    if (added && typeof added === 'object') {
      for (const [k, v] of Object.entries(added as Json)) {
        const s = tokenContent(v);
        if (/^\d+$/.test(k) && s) { this.special.set(Number(k), s); this.specialByText.set(s, Number(k)); }
      }
    }
    if (!this.special.has(0) && !this.tokens[0]) { this.special.set(0, '<|endoftext|>'); this.specialByText.set('<|endoftext|>', 0); }
    this.vocabSize = Math.max(this.tokens.length, ...[...this.special.keys()].map(k => k + 1));

    const idOf = (v: unknown): number | null => {
      if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : null;
      const s = tokenContent(v);
      if (s === null) return null;
      const sp = this.specialByText.get(s);
      if (sp !== undefined) return sp;
      const ids = this.encodeBytes(new TextEncoder().encode(s));
      return ids.length === 1 ? ids[0]! : null;
    };
    const eos = config.eos_token === undefined ? [0] : Array.isArray(config.eos_token) ? config.eos_token : [config.eos_token];
    this.eosIds = [...new Set(eos.map(idOf).filter((x): x is number => x !== null))];
    this.bosId = idOf(config.bos_token);
    this.addBos = config.add_bos_token === true;
    const ct = config.chat_template;
    this.chatTemplate = typeof ct === 'string' ? ct : null;
  }

  static load(vocabPath: string, config: Json = {}): WorldTokenizer {
    let text: string;
    try { text = readFileSync(vocabPath, 'utf8'); } catch (e) { throw new FormatError(`cannot read ${vocabPath}: ${(e as Error).message}`); }
    return new WorldTokenizer(text, config, vocabPath);
  }

  /** Greedy longest match over bytes (no special tokens). */
  encodeBytes(src: Uint8Array): number[] {
    const s = latin1(src);
    const out: number[] = [];
    for (let i = 0; i < s.length;) {
      let best = 0, id = -1;
      for (let k = 1; i + k <= s.length; k++) {
        const p = s.slice(i, i + k);
        if (!this.prefixes.has(p)) break;
        const t = this.byKey.get(p);
        if (t !== undefined) { best = k; id = t; }
      }
      if (best === 0) throw new FormatError(`the RWKV vocabulary has no token for byte 0x${s.charCodeAt(i).toString(16)}`);
      out.push(id);
      i += best;
    }
    return out;
  }

  /** Token ids of text. Special-token text (e.g. the end-of-text token) becomes its id, as transformers splits added tokens. */
  encode(text: string, addSpecialTokens = true): number[] {
    const out: number[] = addSpecialTokens && this.addBos && this.bosId !== null ? [this.bosId] : [];
    const specials = [...this.specialByText.keys()].filter(s => s.length > 0).sort((a, b) => b.length - a.length);
    let rest = text;
    while (rest.length) {
      let at = -1, which = '';
      for (const s of specials) {
        const j = rest.indexOf(s);
        if (j >= 0 && (at < 0 || j < at)) { at = j; which = s; }
      }
      const plain = at < 0 ? rest : rest.slice(0, at);
      if (plain) out.push(...this.encodeBytes(new TextEncoder().encode(plain)));
      if (at < 0) break;
      out.push(this.specialByText.get(which)!);
      rest = rest.slice(at + which.length);
    }
    return out;
  }

  /** The bytes of ids; special tokens as their text unless skipped; unknown ids give nothing. */
  decodeBytes(ids: number[], skipSpecial = false): Uint8Array {
    const parts: Uint8Array[] = [];
    let n = 0;
    for (const id of ids) {
      const sp = this.special.get(id);
      const b = sp !== undefined ? (skipSpecial ? undefined : new TextEncoder().encode(sp)) : this.tokens[id];
      if (b) { parts.push(b); n += b.length; }
    }
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }

  /** Text of ids; invalid UTF-8 becomes U+FFFD (Python's errors="replace"). */
  decode(ids: number[], skipSpecial = false): string {
    return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(this.decodeBytes(ids, skipSpecial));
  }

  tokenToId(s: string): number | undefined {
    return this.specialByText.get(s) ?? this.byKey.get(latin1(new TextEncoder().encode(s)));
  }

  idToToken(id: number): string | undefined {
    const sp = this.special.get(id);
    if (sp !== undefined) return sp;
    const b = this.tokens[id];
    return b ? new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(b) : undefined;
  }
}
