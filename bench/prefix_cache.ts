// The prompt-state cache's benefit on a replayed multi-turn chat workload (BENCHMARKS.md, issue 18):
//   bun bench/prefix_cache.ts [MODEL_DIR | --synthetic NAME] [--turns 20] [--chats 4] [--system 256] [--user 32]
//                             [--reply 32] [--interval 256] [--device gpu] [--json]
// Each chat resends its whole history every turn (system prompt, then user/reply turns; token ids made from a
// seed, replies generated greedily). It reports the time to first token of the last turn of one chat with and
// without the cache, and over `--chats` chats run together the prompt tokens, the tokens prefilled and saved.
import { parseArgs } from 'node:util';
import { GpuBackend } from '../src/backend/gpu.ts';
import { syntheticModel } from '../src/bench/synthetic.ts';
import { inspectModel, loadWeights, type Model } from '../src/runtime/model.ts';
import { Engine } from '../src/runtime/engine.ts';
import { openBackend, parseDevice, resolveModelDir } from '../src/runtime/open.ts';
import { PrefixCache } from '../src/runtime/prefix_cache.ts';
import { validateSampling } from '../src/runtime/sample.ts';
import { Scheduler } from '../src/runtime/scheduler.ts';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    synthetic: { type: 'string' }, turns: { type: 'string', default: '20' }, chats: { type: 'string', default: '4' },
    system: { type: 'string', default: '256' }, user: { type: 'string', default: '32' }, reply: { type: 'string', default: '32' },
    interval: { type: 'string', default: '256' }, 'cache-mb': { type: 'string', default: '1024' }, device: { type: 'string' }, json: { type: 'boolean' },
  },
});
const int = (k: keyof typeof o) => { const n = Number(o[k]); if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${k} must be an integer >= 0`); return n; };
const TURNS = int('turns'), CHATS = int('chats'), SYSTEM = int('system'), USER = int('user'), REPLY = int('reply');
const log = (s: string) => process.stderr.write(s + '\n');
const greedy = validateSampling({ temperature: 0 });

function ids(seed: number, n: number, V: number): number[] {
  let s = seed * 2654435761 >>> 0 || 1;
  return Array.from({ length: n }, () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return (s >>> 0) % V; });
}

const backend = await openBackend(parseDevice(o.device));
const model: Model = o.synthetic ? syntheticModel(o.synthetic, backend) : loadWeights(inspectModel(resolveModelDir(positionals[0])), backend);
if (backend instanceof GpuBackend) await backend.settle();
const ctx = SYSTEM + TURNS * (USER + REPLY) + 16;
const engine = new Engine(model, Math.max(CHATS, 1), 512, ctx);
const V = engine.vocab;

/** One chat of TURNS turns through `s`; returns the time to first token of each turn (ms) and the prompts' lengths. */
async function chat(s: Scheduler, seed: number, replies?: number[][], turns = TURNS): Promise<{ ttft: number[]; prompts: number; replies: number[][] }> {
  let history = ids(seed, SYSTEM, V);
  const ttft: number[] = [], got: number[][] = [];
  let prompts = 0;
  for (let t = 0; t < turns; t++) {
    const prompt = [...history, ...ids(seed * 1000 + t + 1, USER, V)];
    prompts += prompt.length;
    const t0 = performance.now();
    const st = s.submit({ prompt, maxTokens: REPLY, sampling: greedy, eosIds: [] });
    let first = 0;
    for await (const _ of st) { if (!first) first = performance.now(); }
    const r = await st.result;
    ttft.push(first - t0);
    const reply = replies ? replies[t]! : r.ids;        // replay the same conversation without the cache
    got.push(r.ids);
    history = [...prompt, ...reply];
  }
  return { ttft, prompts, replies: got };
}

const mb = int('cache-mb');
const withCache = () => new Scheduler(engine, null, { eosIds: [], maxQueue: 1024, prefixCache: new PrefixCache(backend, { maxBytes: mb * 2 ** 20, interval: int('interval') }) });
const without = () => new Scheduler(engine, null, { eosIds: [], maxQueue: 1024 });

log(`${o.synthetic ?? positionals[0] ?? 'default model'} on ${backend.name}: ${TURNS} turns, system ${SYSTEM}, user ${USER}, reply ${REPLY} tokens`);
log('warm-up …');
await chat(without(), 99, undefined, Math.min(TURNS, 2));
log('one chat with the cache …');
const a = await chat(withCache(), 1);
log('the same chat without …');
const b = await chat(without(), 1, a.replies);
const same = a.replies.every((r, i) => r.join() === b.replies[i]!.join());
log(`${CHATS} chats together with the cache …`);
const s = withCache();
const t0 = performance.now();
const runs = await Promise.all(Array.from({ length: CHATS }, (_, c) => chat(s, 10 + c)));
const wall = performance.now() - t0;
const st = s.stats();
const promptTokens = runs.reduce((x, r) => x + r.prompts, 0);
const out = {
  model: o.synthetic ?? positionals[0] ?? 'default', device: backend.name, turns: TURNS, system: SYSTEM, user: USER, reply: REPLY,
  ttft_last_turn_ms: { cache: round(a.ttft.at(-1)!), no_cache: round(b.ttft.at(-1)!) },
  ttft_first_turn_ms: { cache: round(a.ttft[0]!), no_cache: round(b.ttft[0]!) },
  same_replies: same,
  workload: {
    chats: CHATS, prompt_tokens: promptTokens, prefilled_tokens: st.promptTokens, saved_tokens: st.prefixCache!.tokensSaved,
    saved_fraction: round(st.prefixCache!.tokensSaved / promptTokens), hits: st.prefixCache!.hits, misses: st.prefixCache!.misses,
    cache_bytes: st.prefixCache!.bytes, wall_ms: round(wall),
  },
};
if (o.json) process.stdout.write(JSON.stringify(out) + '\n');
else {
  process.stdout.write(`TTFT turn ${TURNS}: ${out.ttft_last_turn_ms.cache} ms with the cache, ${out.ttft_last_turn_ms.no_cache} ms without (turn 1: ${out.ttft_first_turn_ms.cache} / ${out.ttft_first_turn_ms.no_cache} ms); replies ${same ? 'identical' : 'DIFFER'}\n`);
  const w = out.workload;
  process.stdout.write(`${w.chats} chats × ${TURNS} turns: ${w.prompt_tokens} prompt tokens, ${w.prefilled_tokens} prefilled, ${w.saved_tokens} restored (${(100 * w.saved_fraction).toFixed(1)}%), ${w.hits} hits / ${w.misses} misses, cache ${(w.cache_bytes / 2 ** 20).toFixed(1)} MiB, ${(w.wall_ms / 1000).toFixed(1)} s\n`);
}
backend.destroy();

function round(x: number): number { return Math.round(x * 100) / 100; }
