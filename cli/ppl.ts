// fla ppl: mean next-token negative log-likelihood over non-overlapping windows of a text or id file.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { Engine } from '../src/runtime/engine.ts';
import { openSession, parseDevice } from '../src/runtime/open.ts';
import { perplexity } from '../src/runtime/ppl.ts';
import { FormatError, UsageError } from '../src/util/errors.ts';
import { HUB_OPTIONS, hubOptions } from './hub.ts';
import { optInt, rejectUnknown } from './options.ts';

export async function pplCommand(modelArg: string | undefined, opts: Record<string, any>): Promise<number> {
  rejectUnknown(opts, ['text', 'ids', 'window', 'device', 'json', 'batch', ...HUB_OPTIONS]);
  const hub = hubOptions(opts);
  const window = optInt(opts.window, '--window', 512, 1);
  const batch = optInt(opts.batch, '--batch', 8, 1, 256);
  if ((opts.text === undefined) === (opts.ids === undefined)) throw new UsageError('give exactly one of --text FILE or --ids FILE');
  const file = String(opts.text ?? opts.ids);
  const flag = opts.text !== undefined ? '--text' : '--ids';
  if (!existsSync(file)) throw new UsageError(`${flag} ${file}: file not found`);
  if (!statSync(file).isFile()) throw new UsageError(`${flag} ${file}: not a file`);
  const device = parseDevice(opts.device);
  let ids: number[] | null = null;
  if (opts.ids !== undefined) {
    let j: unknown;
    try { j = JSON.parse(readFileSync(file, 'utf8')); } catch { throw new FormatError(`--ids ${file}: expected a JSON array of token ids`); }
    if (!Array.isArray(j) || !j.every(x => Number.isSafeInteger(x) && x >= 0)) throw new FormatError(`--ids ${file}: expected a JSON array of non-negative integer token ids`);
    ids = j as number[];
  }
  const { model, tokenizer, backend } = await openSession(modelArg, device, ids === null, hub);
  try {
    if (ids === null) ids = tokenizer!.encode(readFileSync(file, 'utf8'));
    if (ids.length < window + 1) throw new UsageError(`${file}: ${ids.length} tokens, need at least --window + 1 = ${window + 1}`);
    const engine = new Engine(model, batch, batch * window);
    const progress = process.stderr.isTTY ? (d: number, t: number) => process.stderr.write(`\rwindow ${d}/${t}`) : undefined;
    const r = await perplexity(engine, ids, window, progress);
    if (progress) process.stderr.write('\n');
    const res = { model: model.dir, device: backend.name, windows: r.windows, window: r.window, tokens: r.tokens, mean_nll: r.meanNll, ppl: r.ppl, tokens_per_s: Math.round(r.tokens / (r.ms / 1000)) };
    if (opts.json) process.stdout.write(JSON.stringify(res) + '\n');
    else process.stdout.write(`mean NLL ${r.meanNll.toFixed(6)}  perplexity ${r.ppl.toFixed(4)}  (${r.windows} windows of ${r.window} tokens, ${res.tokens_per_s} tok/s)\n`);
    return 0;
  } finally {
    backend.destroy();
  }
}
