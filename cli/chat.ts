// fla chat: an interactive multi-turn conversation. The model's state (recurrent state or KV cache) is kept
// between turns: each turn feeds only the tokens the rendered conversation adds, not the whole history.
import { createInterface } from 'node:readline';
import { Engine } from '../src/runtime/engine.ts';
import { generate } from '../src/runtime/generate.ts';
import { openSession, parseDevice } from '../src/runtime/open.ts';
import { validateSampling } from '../src/runtime/sample.ts';
import { ChatTemplate, encodeChat, type Message } from '../src/tokenizer/chat.ts';
import { FlaError } from '../src/util/errors.ts';
import { log } from '../src/util/log.ts';
import { optInt, optNum, optStrings, rejectUnknown } from './options.ts';

export async function chatCommand(modelArg: string | undefined, opts: Record<string, any>): Promise<number> {
  rejectUnknown(opts, ['n', 't', 'maxTokens', 'temperature', 'topK', 'topP', 'minP', 'repetitionPenalty', 'seed', 'stop', 'device', 'system', 'ctx']);
  const maxTokens = optInt(opts.maxTokens, '--max-tokens', 512, 1);
  const ctx = optInt(opts.ctx, '--ctx', 4096, 16);
  const sampling = validateSampling({
    temperature: optNum(opts.temperature, '--temperature'), topK: optNum(opts.topK, '--top-k'), topP: optNum(opts.topP, '--top-p'),
    minP: optNum(opts.minP, '--min-p'), repetitionPenalty: optNum(opts.repetitionPenalty, '--repetition-penalty'),
    seed: opts.seed === undefined ? undefined : optInt(opts.seed, '--seed', 0),
  });
  const { model, tokenizer, backend } = await openSession(modelArg, parseDevice(opts.device), true);
  try {
    const tpl = ChatTemplate.load(model.dir, tokenizer!);
    if (!tpl) throw new FlaError(`${model.dir}: this model has no chat template (tokenizer_config.json chat_template or chat_template.jinja); use fla run`);
    const engine = new Engine(model, 1, 512, ctx);
    const eosIds = [...new Set([...model.eosIds, ...tokenizer!.eosIds])];
    const system: Message[] = opts.system ? [{ role: 'system', content: String(opts.system) }] : [];
    let messages: Message[] = [...system];
    let slot = engine.acquire();
    let fed: number[] = [];           // tokens the slot's state holds
    const tty = process.stdin.isTTY;
    const rl = createInterface({ input: process.stdin, output: tty ? process.stderr : undefined, terminal: tty });
    const abort = { current: null as AbortController | null };
    process.on('SIGINT', () => { if (abort.current) abort.current.abort(); else { rl.close(); process.exit(130); } });
    if (tty) process.stderr.write('fla chat — /reset starts over, /exit or Ctrl-D quits\n');
    const ask = () => { if (tty) rl.setPrompt('> '), rl.prompt(); };
    ask();
    for await (const line of rl) {
      const text = line.trim();
      if (text === '/exit') break;
      if (text === '/reset' || text === '') {
        if (text === '/reset') { messages = [...system]; engine.release(slot); slot = engine.acquire(); fed = []; }
        ask();
        continue;
      }
      messages.push({ role: 'user', content: text });
      const ids = encodeChat(tokenizer!, tpl, messages);
      const prefix = fed.length <= ids.length && fed.every((t, i) => ids[i] === t);
      if (!prefix || ids.length + maxTokens > engine.ctx) {   // history no longer a prefix, or too long: start the state over
        engine.release(slot); slot = engine.acquire(); fed = [];
        if (ids.length + maxTokens > engine.ctx) throw new FlaError(`the conversation (${ids.length} tokens) + --max-tokens ${maxTokens} exceeds the context of ${engine.ctx} tokens; use /reset or --ctx`);
      }
      log.debug(`chat: ${fed.length} tokens of state reused, ${ids.length - fed.length} new`);
      abort.current = new AbortController();
      const it = generate(engine, tokenizer, ids.slice(fed.length), { maxTokens, sampling, stop: optStrings(opts.stop), eosIds, signal: abort.current.signal, slot });
      let reply = '';
      const out: number[] = [];
      let r = await it.next();
      while (!r.done) {
        if (r.value.id !== null) out.push(r.value.id);
        reply += r.value.text;
        process.stdout.write(r.value.text);
        r = await it.next();
      }
      abort.current = null;
      process.stdout.write('\n');
      fed = [...ids, ...out.slice(0, r.value.fedTokens)];
      messages.push({ role: 'assistant', content: reply });
      ask();
    }
    rl.close();
    return 0;
  } finally {
    backend.destroy();
  }
}
