// fla run --chat and fla chat (spawned, stdin-driven) on kjv-llama with a small chat template: a second turn
// reuses the model state of the first, and gives the same reply as an uncached run over the whole conversation.
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChatTemplate, encodeChat, type Message } from '../../../src/tokenizer/chat.ts';
import { HfTokenizer } from '../../../src/tokenizer/hf.ts';
import { sharedModel } from '../../helpers/fixtures.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';

const ROOT = join(import.meta.dir, '../../..');
const kjv = sharedModel('kjv-llama');
const DEVICE = HAS_GPU ? 'gpu' : 'cpu';
const TEMPLATE = '{% for m in messages %}{{ m.role }}:{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}';

function fla(args: string[], stdin?: string) {
  const p = Bun.spawnSync([process.execPath, join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, stdin: stdin === undefined ? 'ignore' : Buffer.from(stdin) });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

describe.skipIf(!kjv)('chat', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fla-chat-model-'));
  for (const f of ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) symlinkSync(join(kjv!, f), join(dir, f));
  writeFileSync(join(dir, 'chat_template.jinja'), TEMPLATE);

  test('run --chat wraps the prompt in the template', () => {
    const r = fla(['run', dir, 'Who is Moses?', '--chat', '-t', '0', '-n', '12', '--json', '--device', DEVICE]);
    expect(r.code).toBe(0);
    const tok = HfTokenizer.load(dir);
    expect(JSON.parse(r.out).prompt_ids).toEqual(tok.encode('user:Who is Moses?\nassistant:', false));
  });

  test('chat: the second turn reuses the state and equals an uncached run of the whole conversation', () => {
    const r = fla(['chat', dir, '-t', '0', '-n', '16', '--verbose', '--device', DEVICE], 'Who is Moses?\nAnd Aaron?\n');
    expect(r.code).toBe(0);
    const replies = r.out.split('\n').filter(Boolean);
    expect(replies.length).toBeGreaterThanOrEqual(2);
    expect(r.err).toMatch(/chat: [1-9]\d* tokens of state reused/);
    const tok = HfTokenizer.load(dir);
    const tpl = ChatTemplate.load(dir, tok)!;
    const first = fla(['run', dir, 'Who is Moses?', '--chat', '-t', '0', '-n', '16', '--json', '--device', DEVICE]);
    const a1 = JSON.parse(first.out).text as string;
    const conv: Message[] = [{ role: 'user', content: 'Who is Moses?' }, { role: 'assistant', content: a1 }, { role: 'user', content: 'And Aaron?' }];
    const second = fla(['run', '--ids', encodeChat(tok, tpl, conv).join(','), '-t', '0', '-n', '16', '--json', '--device', DEVICE, dir]);
    expect(second.code).toBe(0);
    expect(r.out).toBe(`${a1}\n${JSON.parse(second.out).text}\n`);
  });

  test('chat on a model without a template: one-line error', () => {
    const r = fla(['chat', '--device', 'cpu'], 'hi\n');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/has no chat template/);
  });
});
