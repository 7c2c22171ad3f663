// The output head on every architecture, as transformers builds it (issue 14.4, 17.4): variants of each fixture with
// lm_head.weight added or removed and tie_word_embeddings flipped, made in a temp dir. Tied: a stored lm_head.weight
// is ignored. Untied: lm_head.weight is the head, and a missing one is a one-line error naming the folder and tensor.
import { afterAll, describe, expect, test } from 'bun:test';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile, writeSafetensors, type StDtype } from '../../../src/load/safetensors.ts';
import { Engine } from '../../../src/runtime/engine.ts';
import { fixture } from '../../helpers/fixtures.ts';
import { load, reference } from '../../helpers/model.ts';

const NAMES = ['abc-tiny', 'delta_net-tiny', 'gated_deltanet-tiny', 'gla-tiny', 'linear_attn-tiny', 'llama-tiny', 'qwen2-tiny',
  'qwen3-tiny', 'qwen3_moe-tiny', 'qwen3_next-tiny', 'rwkv7-tiny', 'transformer-tiny'];
const EMB = ['model.embed_tokens.weight', 'model.embeddings.weight'];
type Tensors = Record<string, { dtype: StDtype; shape: number[]; data: Uint8Array }>;

const tmp = mkdtempSync(join(tmpdir(), 'fla-head-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function readAll(dir: string): Tensors {
  const f = SafetensorsFile.open(join(dir, 'model.safetensors'));
  const out: Tensors = {};
  for (const [n, t] of f.tensors) out[n] = { dtype: t.dtype, shape: t.shape, data: f.bytes(n).slice() };
  return out;
}

let count = 0;
/** A copy of the fixture with tie_word_embeddings set to `tie` and these tensors. */
function variant(dir: string, tie: boolean, tensors: Tensors): string {
  const out = join(tmp, `v${count++}`);
  mkdirSync(out);
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(out, 'config.json'), JSON.stringify({ ...cfg, tie_word_embeddings: tie }));
  writeSafetensors(join(out, 'model.safetensors'), tensors);
  return out;
}

async function logitsOf(dir: string, prompt: number[]): Promise<Float32Array> {
  const e = new Engine(load(dir, 'cpu'), 1, 256);
  const slot = e.acquire();
  const [l] = await e.run([{ slot, tokens: prompt, keepAll: true }]);
  return l!;
}

for (const name of NAMES) {
  const dir = fixture(name);
  describe.skipIf(!dir)(`${name} head`, () => {
    const cfg = dir ? JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) : {};
    const tied = cfg.tie_word_embeddings === true;
    const prompt = () => reference(dir!).ints('gen.prompt').slice(0, 8);
    const base = () => readAll(dir!);
    const embName = (t: Tensors) => EMB.find(n => t[n])!;
    const without = (t: Tensors) => { const { ['lm_head.weight']: _, ...rest } = t; return rest; };
    /** lm_head.weight = a copy of the embedding matrix. */
    const withEmbCopy = (t: Tensors) => ({ ...t, 'lm_head.weight': { ...t[embName(t)]!, data: t[embName(t)]!.data.slice() } });
    /** lm_head.weight = minus the embedding matrix (a head that changes every logit): each value's sign bit flipped. */
    const withOther = (t: Tensors) => {
      const e = t[embName(t)]!, data = e.data.slice(), size = e.dtype === 'F32' ? 4 : 2;
      for (let i = size - 1; i < data.length; i += size) data[i]! ^= 0x80;
      return { ...t, 'lm_head.weight': { ...e, data } };
    };

    test(`the fixture is ${tied ? 'tied without' : 'untied with'} lm_head.weight`, () => {
      expect('lm_head.weight' in base()).toBe(!tied);
    });

    test('untied without lm_head.weight: one-line error naming the folder and the tensor', () => {
      const v = variant(dir!, false, without(base()));
      let msg = '';
      try { load(v, 'cpu'); } catch (e) { msg = (e as Error).message; }
      expect(msg).toContain(v);
      expect(msg).toContain('missing tensor lm_head.weight');
      expect(msg).toContain('tie_word_embeddings: false');
      expect(msg).not.toContain('\n');
    });

    test('tied: a stored lm_head.weight is ignored; untied: it is the head', async () => {
      const p = prompt();
      const tiedNoHead = await logitsOf(variant(dir!, true, without(base())), p);
      // tied with a different stored head: identical to tied without one
      expect(await logitsOf(variant(dir!, true, withOther(base())), p)).toEqual(tiedNoHead);
      // untied with a copy of the embeddings as head: identical to tied
      expect(await logitsOf(variant(dir!, false, withEmbCopy(base())), p)).toEqual(tiedNoHead);
      // untied with a different head: the head is used (every logit changes)
      const other = await logitsOf(variant(dir!, false, withOther(base())), p);
      expect(other.some((v, i) => v !== tiedNoHead[i])).toBe(true);
    });
  });
}
