// defines: HfTokenizer (tokenizer.json + tokenizer_config.json via @huggingface/tokenizers), StreamDecoder.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { FormatError } from '../util/errors.ts';

type Json = Record<string, unknown>;

function readJson(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new FormatError(`cannot read ${path}: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new FormatError(`${path} must hold a JSON object`);
  return v as Json;
}

/** Token text from a tokenizer_config entry: "tok", {content: "tok"}, or null. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

/** A Hugging Face tokenizer. Decoding never applies clean_up_tokenization_spaces (it breaks round trips). */
export class HfTokenizer {
  readonly vocabSize: number;
  readonly eosIds: number[];
  readonly bosId: number | null;
  readonly chatTemplate: string | null;
  private readonly addBos: boolean | null;

  /** tokenizer_config.json as read (chat templates need its special tokens). */
  readonly config: Json;

  private constructor(private readonly tok: Tokenizer, config: Json) {
    this.config = config;
    let maxId = -1;
    for (const id of tok.get_vocab(true).values()) if (id > maxId) maxId = id;
    for (const id of tok.get_added_tokens_decoder().keys()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;

    const eos = config.eos_token;
    const eosIds: number[] = [];
    for (const e of Array.isArray(eos) ? eos : [eos]) {
      const s = tokenContent(e);
      const id = s === null ? undefined : tok.token_to_id(s);
      if (id !== undefined && !eosIds.includes(id)) eosIds.push(id);
    }
    this.eosIds = eosIds;
    const bos = tokenContent(config.bos_token);
    this.bosId = (bos === null ? undefined : tok.token_to_id(bos)) ?? null;
    this.addBos = typeof config.add_bos_token === 'boolean' ? config.add_bos_token : null;

    const ct = config.chat_template;
    if (typeof ct === 'string') this.chatTemplate = ct;
    else if (Array.isArray(ct)) {
      // Newer configs hold a list of named templates; "default" is the one used for chat.
      const d = ct.find((t) => t && typeof t === 'object' && t.name === 'default' && typeof t.template === 'string');
      this.chatTemplate = d ? (d.template as string) : null;
    } else this.chatTemplate = null;
  }

  /** Reads dir/tokenizer.json and, if present, dir/tokenizer_config.json. */
  static load(dir: string): HfTokenizer {
    const tjPath = join(dir, 'tokenizer.json');
    const tcPath = join(dir, 'tokenizer_config.json');
    if (!existsSync(tjPath)) throw new FormatError(`tokenizer file not found: ${tjPath}`);
    const tj = readJson(tjPath);
    const tc = existsSync(tcPath) ? readJson(tcPath) : {};
    try {
      return HfTokenizer.fromJson(tj, tc);
    } catch (e) {
      throw new FormatError(`${tjPath}: ${(e as Error).message}`);
    }
  }

  static fromJson(tokenizerJson: object, config: object = {}): HfTokenizer {
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(tokenizerJson, config);
    } catch (e) {
      throw new FormatError(`invalid tokenizer.json: ${(e as Error).message}`);
    }
    return new HfTokenizer(tok, config as Json);
  }

  /**
   * Token ids of text. With addSpecialTokens the post-processor's specials are added, except a leading
   * BOS when tokenizer_config says add_bos_token: false (as transformers' Llama-style tokenizers do).
   */
  encode(text: string, addSpecialTokens = true): number[] {
    const ids = this.tok.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    if (addSpecialTokens && this.addBos === false && this.bosId !== null && ids[0] === this.bosId) {
      // Keep a BOS that the text itself spells out; drop only one added by the post-processor.
      const plain = this.tok.encode(text, { add_special_tokens: false }).ids;
      if (plain[0] !== this.bosId) ids.shift();
    }
    return ids;
  }

  /** Text of ids ('' for []). Ids outside the vocabulary decode to nothing. */
  decode(ids: number[], skipSpecial = false): string {
    if (ids.length === 0) return '';
    return this.tok.decode(ids, { skip_special_tokens: skipSpecial, clean_up_tokenization_spaces: false });
  }

  tokenToId(s: string): number | undefined {
    return this.tok.token_to_id(s);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }
}

/**
 * Streaming detokenizer ("prefix/read offset" scheme): decodes a short window of recent ids and emits only
 * the new text once it no longer ends in U+FFFD, so a piece never splits a UTF-8 character. Keeping the
 * already-emitted tokens in the window preserves context-dependent decoding (leading spaces, Strip decoders).
 */
export class StreamDecoder {
  private ids: number[] = [];
  private prefix = 0; // start of the window
  private read = 0; // ids before this are already emitted

  constructor(private readonly tok: { decode(ids: number[], skipSpecial?: boolean): string }, private readonly skipSpecial = false) {}

  push(id: number): string {
    this.ids.push(id);
    return this.emit(false);
  }

  /** Whatever text is still held back (e.g. an incomplete UTF-8 sequence at the end). Resets the decoder. */
  flush(): string {
    const out = this.emit(true);
    this.ids = [];
    this.prefix = this.read = 0;
    return out;
  }

  private emit(force: boolean): string {
    const { tok, ids, skipSpecial } = this;
    if (this.read === ids.length) return '';
    const seen = tok.decode(ids.slice(this.prefix, this.read), skipSpecial);
    const all = tok.decode(ids.slice(this.prefix), skipSpecial);
    if (all.length > seen.length && (force || !all.endsWith('\uFFFD'))) {
      const out = all.slice(seen.length);
      this.prefix = this.read;
      this.read = ids.length;
      // Drop ids before the window so memory stays bounded over long generations.
      if (this.prefix > 0) {
        this.ids = ids.slice(this.prefix);
        this.read -= this.prefix;
        this.prefix = 0;
      }
      return out;
    }
    if (force) this.read = ids.length;
    return '';
  }
}
