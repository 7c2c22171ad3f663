// An RWKV-World-tokenizer checkpoint (as fla-hub's rwkv7-*-world repos ship: rwkv_vocab_v20230424.txt and
// tokenizer_config.json, no tokenizer.json) end to end through the mock hub: pull, run, --chat, ls.
import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorldTokenizer } from '../../../src/tokenizer/rwkv_world.ts';
import { LOCAL_FIXTURES, SHARED } from '../../helpers/fixtures.ts';
import { ROOT, tempDir, TINY, tinyRepo } from './helpers.ts';
import { MockHub } from './mock_hub.ts';

const VOCAB = join(SHARED, 'data/rwkv_vocab_v20230424.txt');
const WORLD_ID = 'test-org/rwkv7-world-tiny';
const NOTOK_ID = 'test-org/rwkv7-sentencepiece';
const V = 65536;
const TOKENIZER_CONFIG = {
  added_tokens_decoder: { 0: { content: '<|rwkv_tokenizer_end_of_text|>', lstrip: false, normalized: false, rstrip: false, single_word: false, special: true } },
  auto_map: { AutoTokenizer: ['hf_rwkv_tokenizer.RwkvTokenizer', null] },
  bos_token: '<|rwkv_tokenizer_end_of_text|>', eos_token: '\n\n', unk_token: '<|rwkv_tokenizer_end_of_text|>',
  chat_template: "{% for message in messages %}{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n\\n' }}"
    + "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + '\\n\\n' }}{% endif %}{% endfor %}"
    + "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}",
  tokenizer_class: 'RwkvTokenizer',
};

/** rwkv7-tiny with its 512-row embedding and head tiled to the World vocabulary's 65536 rows. */
function worldCheckpoint(dir: string): { config: string; weights: Uint8Array } {
  const st = readFileSync(join(dir, 'model.safetensors'));
  const n = Number(st.readBigUInt64LE(0));
  const header = JSON.parse(st.subarray(8, 8 + n).toString('utf8')) as Record<string, any>;
  const data = st.subarray(8 + n);
  const outHeader: Record<string, unknown> = {};
  const parts: Uint8Array[] = [];
  let off = 0;
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') { outHeader[name] = t; continue; }
    let bytes: Uint8Array = data.subarray(t.data_offsets[0], t.data_offsets[1]);
    let shape = t.shape as number[];
    if (name === 'model.embeddings.weight' || name === 'lm_head.weight') {
      const tiled = new Uint8Array((bytes.length / shape[0]!) * V);
      for (let o = 0; o < tiled.length; o += bytes.length) tiled.set(bytes.subarray(0, Math.min(bytes.length, tiled.length - o)), o);
      bytes = tiled;
      shape = [V, shape[1]!];
    }
    outHeader[name] = { dtype: t.dtype, shape, data_offsets: [off, off + bytes.length] };
    parts.push(bytes);
    off += bytes.length;
  }
  let h = Buffer.from(JSON.stringify(outHeader));
  h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const config = { ...JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), vocab_size: V, bos_token_id: 0, eos_token_id: 0 };
  return { config: JSON.stringify(config), weights: new Uint8Array(Buffer.concat([len, h, ...parts])) };
}

const world = TINY ? worldCheckpoint(TINY) : null;
const hub = world ? new MockHub([
  {
    id: WORLD_ID, files: {
      'config.json': world.config, 'generation_config.json': JSON.stringify({ bos_token_id: 0, eos_token_id: 0 }),
      'model.safetensors': world.weights, 'rwkv_vocab_v20230424.txt': new Uint8Array(readFileSync(VOCAB)),
      'tokenizer_config.json': JSON.stringify(TOKENIZER_CONFIG), 'hf_rwkv_tokenizer.py': '# transformers remote code: not read by fla\n',
      'special_tokens_map.json': JSON.stringify({ bos_token: '<|rwkv_tokenizer_end_of_text|>', eos_token: '\n\n' }),
    },
  },
  tinyRepo({ id: NOTOK_ID, files: { 'tokenizer.model': 'sentencepiece' } }),
]) : null;
afterAll(() => hub?.stop());
beforeEach(() => hub?.clear());

function env(cache: string): Record<string, string> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HF_') && !k.startsWith('HUGGING')));
  return { ...clean, HF_ENDPOINT: hub!.url, HF_HUB_CACHE: cache, HF_HOME: join(cache, 'home'), FLA_LOG: 'info' } as Record<string, string>;
}

async function fla(e: Record<string, string>, ...args: string[]) {
  const p = Bun.spawn([process.execPath, join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, env: e, stdout: 'pipe', stderr: 'pipe' });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

describe.skipIf(!world)('an RWKV World tokenizer checkpoint from the hub', () => {
  const ref = JSON.parse(readFileSync(join(LOCAL_FIXTURES, 'rwkv-world/ids.json'), 'utf8')).cases as { name: string; text?: string; ids: number[] }[];
  const tok = WorldTokenizer.load(VOCAB, TOKENIZER_CONFIG);

  test('fla run: downloads the vocab and tokenizer_config before the weights, prompt ids equal the reference, text decodes the ids', async () => {
    const cache = tempDir('world');
    const turns = ref.find(c => c.name === 'turns')!;
    const r = await fla(env(cache), 'run', WORLD_ID, turns.text!, '-t', '0', '-n', '12', '--device', 'cpu', '--json');
    expect(r.err).not.toContain('error');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.prompt_ids).toEqual(turns.ids);
    expect(j.generated_ids.length).toBeGreaterThan(0);
    expect(j.text).toBe(tok.decode(j.generated_ids, true));
    const order = hub!.requests.filter(q => q.method === 'GET' && /\/resolve\//.test(q.path)).map(q => q.path.split('/').at(-1));
    expect(order.indexOf('rwkv_vocab_v20230424.txt')).toBeGreaterThanOrEqual(0);
    expect(order.indexOf('rwkv_vocab_v20230424.txt')).toBeLessThan(order.indexOf('model.safetensors'));
    expect(order).not.toContain('hf_rwkv_tokenizer.py');

    // again from the cache, streamed: the same text; and in the chat template
    const s = await fla(env(cache), 'run', WORLD_ID, turns.text!, '-t', '0', '-n', '12', '--device', 'cpu', '--no-echo', '--offline');
    expect(s.code).toBe(0);
    expect(s.out).toBe(j.text + (j.text.endsWith('\n') ? '' : '\n'));
    const c = await fla(env(cache), 'run', WORLD_ID, 'hi', '--chat', '-t', '0', '-n', '4', '--device', 'cpu', '--json', '--offline');
    expect(c.code).toBe(0);
    expect(JSON.parse(c.out).prompt_ids).toEqual(tok.encode('User: hi\n\nAssistant:'));

    const ls = await fla(env(cache), 'ls', '--json');
    expect(JSON.parse(ls.out)).toEqual([expect.objectContaining({ repo: WORLD_ID, supported: true, complete: true, tokenizer: true })]);
  }, 120_000);

  test('a repo without a tokenizer fla reads: fla run fails before any weights; pull warns; ls says so', async () => {
    const cache = tempDir('notok');
    const r = await fla(env(cache), 'run', NOTOK_ID, 'hello', '--device', 'cpu');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: test-org\/rwkv7-sentencepiece: no tokenizer\.json \(it has tokenizer\.model; fla reads tokenizer\.json or an RWKV World rwkv_vocab_\*\.txt\); give the prompt as --ids/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(hub!.count(q => q.path.endsWith('model.safetensors'))).toBe(0);
    const p = await fla(env(cache), 'pull', NOTOK_ID);
    expect(p.code).toBe(0);
    expect(p.err).toContain('only --ids prompts will work');
    const ls = await fla(env(cache), 'ls');
    expect(ls.out).toMatch(/rwkv7-sentencepiece .* rwkv7\s+yes \(no tokenizer: --ids only\)\n$/);
    const ids = await fla(env(cache), 'run', NOTOK_ID, '--ids', '1,2,3', '-n', '2', '--device', 'cpu', '--json', '--offline');
    expect(ids.code).toBe(0);
  }, 60_000);
});
