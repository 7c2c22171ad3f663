import { describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HfTokenizer, StreamDecoder } from '../../../src/tokenizer/hf.ts';
import { FormatError } from '../../../src/util/errors.ts';
import { SHARED, sharedModel } from '../../helpers/fixtures.ts';

const MULTI = 'Hello 🤗 世界 café naïve';

/** GPT-2 byte -> printable character table (bytes that are already printable map to themselves). */
function byteChars(): string[] {
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCharCode(printable ? b : 256 + extra++);
  }
  return out;
}

/** A hand-built byte-level BPE: 2 specials, 256 byte tokens, a few merges, BOS added by TemplateProcessing. */
function tinyTokenizerJson(): object {
  const vocab: Record<string, number> = { '<s>': 0, '</s>': 1 };
  for (const c of byteChars()) vocab[c] = Object.keys(vocab).length;
  const merges: [string, string][] = [
    ['h', 'e'], ['l', 'l'], ['he', 'll'], ['hell', 'o'], ['Ġ', 't'], ['Ġt', 'he'],
    ['ð', 'Ł'], // first two bytes of U+1F917 (F0 9F A4 97): the emoji becomes 3 tokens
  ];
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  const special = (id: number, content: string) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<s>'), special(1, '</s>')],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] } },
    },
    decoder: byteLevel,
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
}

const tinyConfig = { bos_token: '<s>', eos_token: { content: '</s>' }, chat_template: '{{ messages }}' };

/** Streams ids one at a time; returns the pieces (flush last). */
function stream(tok: HfTokenizer, ids: number[], skipSpecial = false): string[] {
  const d = new StreamDecoder(tok, skipSpecial);
  const pieces = ids.map((id) => d.push(id));
  pieces.push(d.flush());
  return pieces;
}

describe('HfTokenizer (hand-built byte-level BPE)', () => {
  const tok = HfTokenizer.fromJson(tinyTokenizerJson(), tinyConfig);

  test('metadata', () => {
    expect(tok.vocabSize).toBe(2 + 256 + 7);
    expect(tok.bosId).toBe(0);
    expect(tok.eosIds).toEqual([1]);
    expect(tok.chatTemplate).toBe('{{ messages }}');
    expect(tok.tokenToId('hello')).toBe(2 + 256 + 3);
    expect(tok.tokenToId('no such token')).toBeUndefined();
  });

  test('merges apply and special tokens follow the post-processor', () => {
    const plain = tok.encode('hello the', false);
    expect(plain).toEqual([tok.tokenToId('hello')!, tok.tokenToId('Ġthe')!]);
    expect(tok.encode('hello the')).toEqual([0, ...plain]);
    expect(tok.encode('hello the', true)).toEqual([0, ...plain]);
  });

  test('add_bos_token false drops the post-processor BOS but keeps one spelled in the text', () => {
    const t = HfTokenizer.fromJson(tinyTokenizerJson(), { ...tinyConfig, add_bos_token: false });
    expect(t.encode('hello')).toEqual(t.encode('hello', false));
    expect(t.encode('<s>hello')[0]).toBe(0);
  });

  test('round trip of multi-byte text', () => {
    for (const s of [MULTI, 'the hello world\n\tx', '', 'ñ€𝄞 日本語 👩‍👩‍👧']) {
      expect(tok.decode(tok.encode(s, false))).toBe(s);
    }
  });

  test('decode: [] gives "", specials kept unless skipped, no space clean-up', () => {
    expect(tok.decode([])).toBe('');
    const ids = [0, ...tok.encode('hello ?', false), 1];
    expect(tok.decode(ids)).toBe('<s>hello ?</s>');
    expect(tok.decode(ids, true)).toBe('hello ?');
  });

  test('an emoji split over several byte-level tokens streams as one piece', () => {
    const ids = tok.encode('🤗', false);
    expect(ids.length).toBe(3);
    for (const id of ids) expect(tok.decode([id])).toContain('\uFFFD'); // each alone is a partial character
    const pieces = stream(tok, ids);
    expect(pieces.join('')).toBe('🤗');
    expect(pieces.filter((p) => p !== '')).toEqual(['🤗']);
  });

  test('stream pieces concatenate to the full decode, with and without specials', () => {
    const ids = [0, ...tok.encode(`the ${MULTI} hello 🤗🤗`, false), 1];
    for (const skip of [false, true]) {
      const pieces = stream(tok, ids, skip);
      expect(pieces.join('')).toBe(tok.decode(ids, skip));
      for (const p of pieces) expect(p).not.toContain('\uFFFD');
    }
  });

  test('flush returns a held partial character and resets', () => {
    const ids = tok.encode('a🤗', false);
    const d = new StreamDecoder(tok);
    let out = '';
    for (const id of ids.slice(0, -1)) out += d.push(id);
    expect(out).toBe('a');
    expect(d.flush()).toContain('\uFFFD');
    expect(d.flush()).toBe('');
    expect(d.push(tok.tokenToId('hello')!)).toBe('hello');
  });

  test('invalid tokenizer JSON is a FormatError', () => {
    expect(() => HfTokenizer.fromJson({})).toThrow(FormatError);
  });
});

describe('HfTokenizer.load errors', () => {
  test('missing directory or tokenizer.json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fla-tok-'));
    try {
      expect(() => HfTokenizer.load(dir)).toThrow(FormatError);
      expect(() => HfTokenizer.load(dir)).toThrow(/tokenizer\.json/);
      expect(() => HfTokenizer.load(join(dir, 'nope'))).toThrow(/tokenizer\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad JSON names the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fla-tok-'));
    try {
      writeFileSync(join(dir, 'tokenizer.json'), '{"model": ');
      expect(() => HfTokenizer.load(dir)).toThrow(FormatError);
      expect(() => HfTokenizer.load(dir)).toThrow(/tokenizer\.json/);
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
      writeFileSync(join(dir, 'tokenizer_config.json'), 'not json');
      expect(() => HfTokenizer.load(dir)).toThrow(/tokenizer_config\.json/);
      writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tinyConfig));
      expect(HfTokenizer.load(dir).eosIds).toEqual([1]);
      rmSync(join(dir, 'tokenizer_config.json'));
      const t = HfTokenizer.load(dir); // config is optional
      expect(t.eosIds).toEqual([]);
      expect(t.bosId).toBeNull();
      expect(t.chatTemplate).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const KJV = sharedModel('kjv-rwkv7');

/** Some KJV lines: from shared data when present, else a few built-in ones. */
function kjvLines(): string[] {
  const path = join(SHARED, 'data', 'kjv.txt');
  if (!existsSync(path)) {
    return [
      '1:1 In the beginning God created the heaven and the earth.',
      '1:2 And the earth was without form, and void; and darkness was upon the face of the deep.',
    ];
  }
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const step = Math.max(1, Math.floor(lines.length / 300));
  return lines.filter((_, i) => i % step === 0);
}

describe.skipIf(!KJV)('HfTokenizer (kjv-rwkv7)', () => {
  const tok = KJV ? HfTokenizer.load(KJV) : (null as unknown as HfTokenizer);

  test('metadata: eos 0, no chat template', () => {
    expect(tok.eosIds).toEqual([0]);
    expect(tok.bosId).toBe(0);
    expect(tok.vocabSize).toBe(4096);
    expect(tok.chatTemplate).toBeNull();
    expect(tok.tokenToId('<|endoftext|>')).toBe(0);
  });

  test('encode adds no BOS (add_bos_token false, ByteLevel post-processor)', () => {
    const ids = tok.encode(' In the beginning God');
    expect(ids[0]).not.toBe(0);
    expect(ids).toEqual(tok.encode(' In the beginning God', false));
  });

  test('round trip of KJV lines', () => {
    const lines = kjvLines();
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(tok.decode(tok.encode(line))).toBe(line);
    const block = lines.slice(0, 50).join('\n');
    expect(tok.decode(tok.encode(block))).toBe(block);
  });

  test('round trip of multi-byte text', () => {
    for (const s of [MULTI, '日本語のテキスト', 'Ünïcödé — “quotes” … 👍🏽 🇫🇷']) {
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
  });

  test('emoji byte pieces stream without U+FFFD', () => {
    const ids = tok.encode('🤗', false);
    expect(ids.length).toBeGreaterThan(1);
    const pieces = stream(tok, ids);
    expect(pieces.filter((p) => p !== '')).toEqual(['🤗']);
  });

  test('stream pieces concatenate to the full decode', () => {
    const text = `${kjvLines().slice(0, 20).join('\n')}\n${MULTI} 🤗🤗 世界<|endoftext|>`;
    const ids = tok.encode(text);
    for (const skip of [false, true]) {
      const pieces = stream(tok, ids, skip);
      expect(pieces.join('')).toBe(tok.decode(ids, skip));
      for (const p of pieces) expect(p).not.toContain('\uFFFD');
    }
    const mb = tok.encode(MULTI);
    const naive = mb.map((id) => tok.decode([id])).join('');
    expect(naive).toContain('\uFFFD'); // why the stream decoder exists
    expect(stream(tok, mb).join('')).toBe(MULTI);
  });
});
