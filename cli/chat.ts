// fla chat: an interactive multi-turn conversation. The model's state (recurrent state or KV cache) is kept
// between turns: each turn feeds only the tokens the rendered conversation adds, not the whole history.
// Ctrl-C stops a reply (the partial reply is kept in the conversation, as the state has consumed it) and, at an
// empty prompt, quits; Ctrl-D quits. Recurrent models chat without end; attention models at a full context ask for
// /drop (drop the oldest turns) or /reset.
import { createInterface } from 'node:readline';
import { Engine } from '../src/runtime/engine.ts';
import { generate } from '../src/runtime/generate.ts';
import { openSession, parseDevice } from '../src/runtime/open.ts';
import { randomSeed, validateSampling } from '../src/runtime/sample.ts';
import { encodeChat, requireChatTemplate, type Message } from '../src/tokenizer/chat.ts';
import { log } from '../src/util/log.ts';
import { HUB_OPTIONS, hubOptions } from './hub.ts';
import { optInt, optMaxTokens, optNum, optSeed, optStops, rejectUnknown } from './options.ts';

export const CHAT_HELP = [
  '/help         this list',
  '/reset        start the conversation over (the system message stays)',
  '/drop         drop the oldest turns (when the context is full) and send the last message again',
  '/exit, /quit  quit (also Ctrl-D, or Ctrl-C at an empty prompt)',
  'Ctrl-C        stop the reply; the part already shown stays in the conversation',
  '//text        send text that begins with "/"',
].join('\n');

export async function chatCommand(modelArg: string | undefined, opts: Record<string, any>): Promise<number> {
  rejectUnknown(opts, ['n', 't', 'temp', 'maxTokens', 'temperature', 'topK', 'topP', 'minP', 'repetitionPenalty', 'seed', 'stop', 'device', 'system', 'c', 'ctx', ...HUB_OPTIONS]);
  const maxTokensArg = optMaxTokens(opts.maxTokens, 512);
  const ctxArg = optInt(opts.ctx, '--ctx', 4096, 16);
  const sampling = validateSampling({
    temperature: optNum(opts.temperature, '--temperature'), topK: optNum(opts.topK, '--top-k'), topP: optNum(opts.topP, '--top-p'),
    minP: optNum(opts.minP, '--min-p'), repetitionPenalty: optNum(opts.repetitionPenalty, '--repetition-penalty'),
    seed: optSeed(opts.seed),
  });
  sampling.seed ??= randomSeed();
  const stop = optStops(opts.stop);
  const { model, tokenizer, backend } = await openSession(modelArg, parseDevice(opts.device), true, hubOptions(opts));
  try {
    const tpl = requireChatTemplate(model.dir, tokenizer!);
    const engine = new Engine(model, 1, 512, ctxArg);
    const bounded = model.arch.dims(model.cfg).maxContext !== null;   // recurrent state has no context limit
    const eosIds = [...new Set([...model.eosIds, ...tokenizer!.eosIds])];
    const system: Message[] = opts.system !== undefined ? [{ role: 'system', content: String(opts.system) }] : [];
    let messages: Message[] = [...system];
    let slot = engine.acquire();
    let fed: number[] = [];           // tokens the slot's state holds
    let pending: string | null = null; // a message that did not fit the context
    let seed = sampling.seed!;
    const tty = !!process.stdin.isTTY;
    const rl = createInterface({ input: process.stdin, output: tty ? process.stderr : undefined, terminal: tty });
    const abort = { current: null as AbortController | null };
    let quit = false;
    const interrupt = () => {
      if (abort.current) { abort.current.abort(); return; }
      if (tty && rl.line.length > 0) { (rl as any).line = ''; process.stderr.write('\n'); ask(); return; }   // Ctrl-C clears a typed line
      quit = true;
      rl.close();
    };
    rl.on('SIGINT', interrupt);               // a terminal: readline turns Ctrl-C into this event
    process.on('SIGINT', interrupt);          // piped stdin: a real signal
    const say = (s: string) => process.stderr.write(s + '\n');
    if (tty) say('fla chat — /help lists the commands, Ctrl-D quits');
    const ask = () => { if (tty) { rl.setPrompt('> '); rl.prompt(); } };
    const restart = () => { engine.release(slot); slot = engine.acquire(); fed = []; };

    const turn = async (text: string) => {
      messages.push({ role: 'user', content: text });
      let ids = encodeChat(tokenizer!, tpl, messages);
      const room = (n: number) => (maxTokensArg === -1 ? 1 : maxTokensArg) + n <= engine.ctx;
      if (bounded && !room(ids.length)) {
        messages.pop();
        pending = text;
        say(`the conversation (${ids.length} tokens) + a reply of ${maxTokensArg === -1 ? 'at least 1 token' : `--max-tokens ${maxTokensArg}`} does not fit the context of ${engine.ctx} tokens: `
          + '/drop drops the oldest turns and sends your message, /reset starts over (or restart with a larger --ctx)');
        return;
      }
      const prefix = fed.length <= ids.length && fed.every((t, i) => ids[i] === t);
      if (!prefix) restart();   // history no longer a prefix of the rendering: feed it all again
      log.debug(`chat: ${fed.length} tokens of state reused, ${ids.length - fed.length} new`);
      const maxTokens = maxTokensArg !== -1 ? maxTokensArg : bounded ? engine.ctx - ids.length : Infinity;
      abort.current = new AbortController();
      const it = generate(engine, tokenizer, ids.slice(fed.length), { maxTokens, sampling: { ...sampling, seed: seed++ }, stop, eosIds, signal: abort.current.signal, slot });
      let reply = '';
      const out: number[] = [];
      let r = await it.next();
      while (!r.done) {
        if (r.value.id !== null) out.push(r.value.id);
        reply += r.value.text;
        process.stdout.write(r.value.text);
        await new Promise(res => setImmediate(res));   // let Ctrl-C (a keypress to readline) in, also on the CPU backend
        r = await it.next();
      }
      abort.current = null;
      process.stdout.write('\n');
      if (r.value.finishReason === 'cancelled') say('[stopped]');
      fed = [...ids, ...out.slice(0, r.value.fedTokens)];
      messages.push({ role: 'assistant', content: reply });
      ids = [];
    };

    const dropOldest = () => {
      // drop whole user/assistant pairs after the system message until the pending message fits
      while (messages.length > system.length) {
        messages.splice(system.length, messages[system.length]?.role === 'user' && messages[system.length + 1]?.role === 'assistant' ? 2 : 1);
        const ids = encodeChat(tokenizer!, tpl, [...messages, { role: 'user', content: pending! }]);
        if ((maxTokensArg === -1 ? 1 : maxTokensArg) + ids.length <= engine.ctx) return true;
      }
      return (maxTokensArg === -1 ? 1 : maxTokensArg) + encodeChat(tokenizer!, tpl, [...messages, { role: 'user', content: pending! }]).length <= engine.ctx;
    };

    ask();
    for await (const line of rl) {
      const text = line.trim();
      if (text.startsWith('/') && !text.startsWith('//')) {
        const cmd = text.split(/\s+/)[0]!;
        if (cmd === '/exit' || cmd === '/quit') break;
        if (cmd === '/help') say(CHAT_HELP);
        else if (cmd === '/reset') {
          messages = [...system]; restart();
          if (pending !== null) { const p = pending; pending = null; await turn(p); }
        } else if (cmd === '/drop') {
          if (pending === null) say('/drop: nothing to drop (it is for a conversation that no longer fits the context)');
          else if (!dropOldest()) { say('/drop: your message alone does not fit the context; restart with a larger --ctx or a smaller --max-tokens'); pending = null; }
          else { restart(); const p = pending; pending = null; await turn(p); }
        } else say(`unknown command ${cmd}; /help lists the commands (start a message with // to send a leading "/")`);
        if (quit) break;
        ask();
        continue;
      }
      if (text === '') { ask(); continue; }
      pending = null;
      await turn(text.startsWith('//') ? text.slice(1) : text);
      if (quit) break;
      ask();
    }
    rl.close();
    process.off('SIGINT', interrupt);
    if (tty) process.stderr.write('\n');
    return 0;
  } finally {
    backend.destroy();
  }
}
