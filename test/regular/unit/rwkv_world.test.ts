// The RWKV World tokenizer against ids from the Python reference algorithm (test/fixtures/gen/rwkv_world_ids.py).
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamDecoder } from '../../../src/tokenizer/hf.ts';
import { pythonLiteralBytes, WorldTokenizer } from '../../../src/tokenizer/rwkv_world.ts';
import { loadTokenizer, tokenizerProblem } from '../../../src/tokenizer/tokenizer.ts';
import { FormatError } from '../../../src/util/errors.ts';
import { LOCAL_FIXTURES, SHARED } from '../../helpers/fixtures.ts';

const VOCAB = join(SHARED, 'data/rwkv_vocab_v20230424.txt');
const REF = JSON.parse(readFileSync(join(LOCAL_FIXTURES, 'rwkv-world/ids.json'), 'utf8')) as {
  vocab_sha256: string; vocab_tokens: number; special: Record<string, number>;
  cases: { name: string; text?: string; bytes_hex?: string; ids: number[]; decoded: string }[];
};
const CONFIG = { added_tokens_decoder: { 0: { content: '<|rwkv_tokenizer_end_of_text|>', special: true } }, eos_token: '\n\n', bos_token: '<|rwkv_tokenizer_end_of_text|>' };
const tok = WorldTokenizer.load(VOCAB, CONFIG);

describe('WorldTokenizer', () => {
  test('the vocab file is the one the reference ids were made from', () => {
    expect(new Bun.CryptoHasher('sha256').update(readFileSync(VOCAB)).digest('hex')).toBe(REF.vocab_sha256);
  });

  test('ids and decoded text equal the Python reference on every tricky case', () => {
    expect(REF.cases.length).toBeGreaterThan(20);
    for (const c of REF.cases) {
      const ids = c.text !== undefined ? tok.encode(c.text) : tok.encodeBytes(new Uint8Array(Buffer.from(c.bytes_hex!, 'hex')));
      expect({ name: c.name, ids }).toEqual({ name: c.name, ids: c.ids });
      expect({ name: c.name, text: tok.decode(c.ids) }).toEqual({ name: c.name, text: c.decoded });
      if (c.text !== undefined) expect(c.decoded).toBe(c.text);   // valid text round-trips
    }
  });

  test('special tokens: their text encodes to the id, decode keeps or skips them; eos and bos from tokenizer_config', () => {
    expect(tok.encode('<|rwkv_tokenizer_end_of_text|>a')).toEqual([0, 97 + 1]);
    expect(tok.decode([0, 98], true)).toBe('a');
    expect(tok.eosIds).toEqual([261]);                 // "\n\n" is one vocab token
    expect(tok.bosId).toBe(0);
    expect(tok.encode('a')).toEqual([98]);             // add_bos_token not set: no BOS
    expect(WorldTokenizer.load(VOCAB, { ...CONFIG, add_bos_token: true }).encode('a')).toEqual([0, 98]);
    const bare = WorldTokenizer.load(VOCAB);           // no tokenizer_config: id 0 is the end of text
    expect(bare.eosIds).toEqual([0]);
    expect(bare.vocabSize).toBe(REF.vocab_tokens + 1);
    expect(bare.decode([999999, 98])).toBe('a');
    expect(tok.tokenToId('\n\n')).toBe(261);
    expect(tok.idToToken(33155)).toBe('Hello');
  });

  test('streaming decode never splits a UTF-8 character and joins to the full text', () => {
    for (const name of ['emoji', 'rare_astral', 'cjk', 'mixed_scripts', 'combining']) {
      const c = REF.cases.find(x => x.name === name)!;
      expect(c.ids.length).toBeGreaterThan([...c.text!].length / 2);
      const d = new StreamDecoder(tok);
      const pieces = c.ids.map(id => d.push(id));
      pieces.push(d.flush());
      for (const p of pieces) expect(p).not.toContain('\uFFFD');
      expect(pieces.join('')).toBe(c.text!);
      // a partial character at the end is held back, then flushed as U+FFFD
      const e = new StreamDecoder(tok);
      expect(e.push(3319)).toBe('');                  // 0xF0 0x9F: the start of a 4-byte character
      expect(e.flush()).toBe('\uFFFD');
    }
  });

  test('Python literals: str and bytes, every escape', () => {
    const b = (s: string) => [...pythonLiteralBytes(s)];
    expect(b(`'\\x00'`)).toEqual([0]);
    expect(b(`b'\\xff'`)).toEqual([255]);
    expect(b(`'\\xff'`)).toEqual([0xc3, 0xbf]);                        // a str escape is a code point
    expect(b(`"'"`)).toEqual([39]);
    expect(b(`'\\''`)).toEqual([39]);
    expect(b(`'\\\\'`)).toEqual([92]);
    expect(b(`'\\t\\n\\r\\a\\b\\f\\v'`)).toEqual([9, 10, 13, 7, 8, 12, 11]);
    expect(b(`'\\u2003'`)).toEqual([0xe2, 0x80, 0x83]);
    expect(b(`'\\U0001f917'`)).toEqual([0xf0, 0x9f, 0xa4, 0x97]);
    expect(b(`'\\101\\0'`)).toEqual([65, 0]);
    expect(b(`'\\q'`)).toEqual([92, 113]);                             // unknown escape keeps the backslash
    expect(b(`b'\\u00'`)).toEqual([92, 117, 48, 48]);                 // no \u in bytes
    expect(b(`'é'`)).toEqual([0xc3, 0xa9]);
    for (const bad of [`'abc`, `abc`, `b'é'`, `'\\x4'`, `'\\ud800'`, `'a'b'`]) expect(() => pythonLiteralBytes(bad)).toThrow();
  });

  test('a damaged vocab line is a one-line error naming file and line', () => {
    const cases: [string, RegExp][] = [
      ["1 'a' 1\n2 'bc' 3\n", /v\.txt:2: token is 2 bytes, the line says 3/],
      ["1 'a' 1\nfoo\n", /v\.txt:2: malformed line/],
      ["x 'a' 1\n", /v\.txt:1: bad id "x"/],
      ["1 'a 1\n", /v\.txt:1: not a quoted literal/],
      ['', /v\.txt: no tokens/],
    ];
    for (const [text, re] of cases) {
      let err: unknown;
      try { new WorldTokenizer(text, {}, 'v.txt'); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(FormatError);
      expect((err as Error).message).toMatch(re);
    }
    expect(() => new WorldTokenizer("1 'a' 1\n").encodeBytes(new Uint8Array([98]))).toThrow(/no token for byte 0x62/);
  });

  test('loadTokenizer: tokenizer.json first, else rwkv_vocab_*.txt with tokenizer_config.json; else a reason', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fla-world-'));
    expect(() => loadTokenizer(dir)).toThrow(/no tokenizer \(tokenizer\.json or an RWKV World rwkv_vocab_\*\.txt\)/);
    writeFileSync(join(dir, 'tokenizer.model'), 'sp');
    expect(() => loadTokenizer(dir)).toThrow(/no tokenizer\.json \(it has tokenizer\.model; /);
    symlinkSync(VOCAB, join(dir, 'rwkv_vocab_v20230424.txt'));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(CONFIG));
    const t = loadTokenizer(dir);
    expect(t).toBeInstanceOf(WorldTokenizer);
    expect(t.encode('Hello')).toEqual([33155]);
    expect(t.eosIds).toEqual([261]);
    expect(tokenizerProblem(['config.json', 'rwkv_vocab_v20230424.txt'])).toBeNull();
    expect(tokenizerProblem(['config.json', 'tokenizer.json'])).toBeNull();
    expect(tokenizerProblem(['config.json', 'vocab.json', 'merges.txt'])).toMatch(/it has vocab\.json, merges\.txt/);
  });
});
