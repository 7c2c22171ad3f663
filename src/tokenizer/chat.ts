// Chat templates: the checkpoint's Jinja template (tokenizer_config.chat_template or chat_template.jinja)
// rendered with @huggingface/jinja, as transformers' apply_chat_template does.
import { Template } from '@huggingface/jinja';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlaError, FormatError } from '../util/errors.ts';
import type { Tokenizer } from './tokenizer.ts';

export interface Message { role: 'system' | 'user' | 'assistant'; content: string }

const SPECIALS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'];

export class ChatTemplate {
  private readonly tpl: Template;
  constructor(readonly source: string, private readonly specials: Record<string, string>, readonly where = 'chat template') {
    try { this.tpl = new Template(source); } catch (e) {
      throw new FormatError(`${where}: cannot parse the chat template (${(e as Error).message.split('\n')[0]})`);
    }
  }

  /** The template of a model folder: chat_template.jinja, else tokenizer_config.json's chat_template; null if none. */
  static load(dir: string, tok: Tokenizer): ChatTemplate | null {
    const specials: Record<string, string> = {};
    for (const k of SPECIALS) {
      const v = tok.config[k] as unknown;
      const s = v && typeof v === 'object' ? (v as { content?: unknown }).content : v;
      if (typeof s === 'string') specials[k] = s;
    }
    const file = join(dir, 'chat_template.jinja');
    if (existsSync(file)) return new ChatTemplate(readFileSync(file, 'utf8'), specials, file);
    return tok.chatTemplate ? new ChatTemplate(tok.chatTemplate, specials, join(dir, 'tokenizer_config.json')) : null;
  }

  render(messages: Message[], addGenerationPrompt = true, extra: Record<string, unknown> = {}): string {
    try {
      return this.tpl.render({ messages, add_generation_prompt: addGenerationPrompt, ...this.specials, ...extra });
    } catch (e) {
      throw new FlaError(`${this.where}: rendering the chat template failed: ${(e as Error).message.split('\n')[0]}`);
    }
  }
}

/** The template, or the one error every command gives for a model without one (fla chat, fla run --chat, --prompts --chat). */
export function requireChatTemplate(dir: string, tok: Tokenizer): ChatTemplate {
  const tpl = ChatTemplate.load(dir, tok);
  if (!tpl) throw new FlaError(`${dir}: the model has no chat template (tokenizer_config.json chat_template or chat_template.jinja), so it cannot chat; use fla run without --chat`);
  return tpl;
}

/** Token ids of a rendered conversation: the template already holds BOS and the special tokens. */
export function encodeChat(tok: Tokenizer, tpl: ChatTemplate, messages: Message[], extra?: Record<string, unknown>): number[] {
  return tok.encode(tpl.render(messages, true, extra), false);
}
