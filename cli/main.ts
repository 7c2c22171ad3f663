#!/usr/bin/env bun
// fla: argv → command → exit code. Every error is caught here and printed as one line (stack with --verbose).
import { cac } from 'cac';
import { FlaError } from '../src/util/errors.ts';
import { VERSION, versionLine } from '../src/util/version.ts';
import { log } from '../src/util/log.ts';
import { benchCommand } from './bench.ts';
import { chatCommand } from './chat.ts';
import { devicesCommand } from './devices.ts';
import { lsCommand, pullCommand, rmCommand } from './hub.ts';
import { pplCommand } from './ppl.ts';
import { runCommand } from './run.ts';
import { serveCommand } from './serve.ts';

const COMMANDS = ['run', 'serve', 'ppl', 'chat', 'bench', 'devices', 'pull', 'ls', 'rm'];

export async function main(argv: string[]): Promise<number> {
  const cli = cac('fla');
  let result: Promise<number> | number = 0;
  const verbose = argv.includes('--verbose');
  if (verbose) log.setLevel('debug');

  cli.option('--verbose', 'Show debug logs and stack traces');

  cli.command('run [model] [prompt]', 'Generate text (model: a checkpoint folder; default: the embedded kjv-rwkv7)')
    .option('-n, --max-tokens <n>', 'Maximum new tokens (default 256)')
    .option('-t, --temperature <t>', 'Sampling temperature, 0 = greedy (default 0.8)')
    .option('--top-k <k>', 'Keep the k most likely tokens, 0 = off (default 40)')
    .option('--top-p <p>', 'Nucleus sampling, 1 = off (default 0.95)')
    .option('--min-p <p>', 'Drop tokens below p × the top probability, 0 = off (default 0.05)')
    .option('--repetition-penalty <r>', 'Penalise tokens already seen, 1 = off (default 1)')
    .option('--seed <n>', 'Random seed (same seed, same output)')
    .option('--stop <s>', 'Stop when this string appears (repeatable)', { type: [String] })
    .option('--device <d>', 'gpu, gpu:N or cpu (default: gpu if any, else cpu)')
    .option('--json', 'Print one JSON object (ids, text, timings) instead of streaming')
    .option('--ids <ids>', 'Prompt as comma-separated token ids')
    .option('--no-echo', 'Do not print the prompt before the generated text')
    .option('--prompts <file>', 'JSONL of prompts run together (continuous batching); one JSON result line each, in order')
    .option('--max-batch <n>', 'With --prompts: sequences generated together (default 16)')
    .option('--chat', "Wrap the prompt in the model's chat template (as one user turn)")
    .option('--system <text>', 'System message for --chat')
    .option('--revision <rev>', 'Hub model: branch, tag or commit (default main)')
    .option('--token <token>', 'Hub token for private or gated repos (default: HF_TOKEN)')
    .option('--offline', 'Hub model: use only the local cache (also HF_HUB_OFFLINE=1)')
    .example('fla run "In the beginning"')
    .example('fla run ./my-checkpoint "Hello" --temperature 0 -n 32')
    .example('fla run --prompts prompts.jsonl -t 0')
    .action((model, prompt, opts) => { result = runCommand(model, prompt, opts); });

  cli.command('ppl [model]', 'Perplexity over non-overlapping windows of a text or id file')
    .option('--text <file>', 'Text file, tokenized with the model tokenizer')
    .option('--ids <file>', 'JSON array of token ids')
    .option('--window <n>', 'Window length (default 512)')
    .option('--batch <n>', 'Windows run together (default 8)')
    .option('--device <d>', 'gpu, gpu:N or cpu')
    .option('--json', 'Print JSON')
    .option('--revision <rev>', 'Hub model: branch, tag or commit (default main)')
    .option('--token <token>', 'Hub token for private or gated repos (default: HF_TOKEN)')
    .option('--offline', 'Hub model: use only the local cache (also HF_HUB_OFFLINE=1)')
    .action((model, opts) => { result = pplCommand(model, opts); });

  cli.command('chat [model]', 'Interactive multi-turn chat; the model state is kept between turns')
    .option('-n, --max-tokens <n>', 'Maximum new tokens per reply (default 512)')
    .option('-t, --temperature <t>', 'Sampling temperature, 0 = greedy (default 0.8)')
    .option('--top-k <k>', 'Top-k (default 40)')
    .option('--top-p <p>', 'Top-p (default 0.95)')
    .option('--min-p <p>', 'Min-p (default 0.05)')
    .option('--repetition-penalty <r>', 'Repetition penalty (default 1)')
    .option('--seed <n>', 'Random seed')
    .option('--stop <s>', 'Stop string (repeatable)', { type: [String] })
    .option('--system <text>', 'System message')
    .option('--ctx <n>', 'Context size in tokens for attention models (default 4096)')
    .option('--device <d>', 'gpu, gpu:N or cpu')
    .action((model, opts) => { result = chatCommand(model, opts); });

  cli.command('bench [model]', 'Speed: prompt and generation tokens/s, TTFT, batched decode, per-kernel roofline')
    .option('--synthetic <name>', 'Random weights of a real model shape: rwkv7-0.1b, rwkv7-1.5b, gated_deltanet-1.3b, llama-1b')
    .option('-p, --prompt-tokens <n>', 'Prompt length (default 512)')
    .option('-n, --gen-tokens <n>', 'Generated tokens (default 128)')
    .option('-b, --batch <list>', 'Decode batch sizes, comma-separated (default 1)')
    .option('-r, --reps <n>', 'Repetitions after warm-up (default 3)')
    .option('--no-profile', 'Skip the per-kernel timestamp profile')
    .option('--device <d>', 'gpu, gpu:N or cpu')
    .option('--json', 'Print JSON')
    .example('fla bench --synthetic rwkv7-1.5b -p 512 -n 128 -b 1,8,64')
    .action((model, opts) => { result = benchCommand(model, opts); });

  cli.command('serve [model]', 'OpenAI-compatible HTTP server with continuous batching')
    .option('--host <addr>', 'Address to listen on (default 127.0.0.1)')
    .option('--port <n>', 'Port, 0 = any free one (default 8080)')
    .option('--max-batch <n>', 'Sequences generated together (state slots; default 8)')
    .option('--max-queue <n>', 'Requests waiting beyond the batch; more get 429 (default 64)')
    .option('-n, --max-tokens <n>', 'max_tokens when a request gives none (default 256)')
    .option('--max-tokens-limit <n>', 'Largest max_tokens a request may ask for; more is a 400 (default 4096)')
    .option('--max-prompt-tokens <n>', 'Longest prompt in tokens; longer is a 400 (default 16384)')
    .option('--ctx <n>', 'Context size in tokens for attention models (default 4096)')
    .option('--device <d>', 'gpu, gpu:N or cpu (one server per GPU)')
    .option('--shutdown-timeout <s>', 'On SIGTERM/SIGINT, seconds to let in-flight requests finish (default 30)')
    .option('--revision <rev>', 'Hub model: branch, tag or commit (default main)')
    .option('--token <token>', 'Hub token for private or gated repos (default: HF_TOKEN)')
    .option('--offline', 'Hub model: use only the local cache (also HF_HUB_OFFLINE=1)')
    .example('fla serve --port 8080')
    .example('fla serve ./my-checkpoint --device gpu:1 --port 8081 --max-batch 32')
    .action((model, opts) => { result = serveCommand(model, opts); });

  cli.command('devices', 'List WebGPU adapters and the features that choose kernels')
    .option('--json', 'Print JSON')
    .action(opts => { result = devicesCommand(opts); });

  cli.command('pull [model]', 'Download a model from the Hugging Face Hub into its cache (prints the snapshot folder)')
    .option('--revision <rev>', 'Branch, tag or commit (default main; also ORG/NAME@REV)')
    .option('--token <token>', 'Token for private or gated repos (default: HF_TOKEN, then $HF_HOME/token)')
    .option('--offline', 'Only check the cache (also HF_HUB_OFFLINE=1)')
    .option('--verify', 'Re-hash the cached files (sha256 / git sha1) and download again those that do not match')
    .example('fla pull fla-hub/rwkv7-191M-world')
    .action((model, opts) => { result = pullCommand(model, opts); });

  cli.command('ls', 'List models in the Hugging Face cache (HF_HUB_CACHE)')
    .option('--json', 'Print JSON')
    .option('--verify', 'Re-hash every cached blob; delete damaged ones and download them again')
    .action(opts => { result = lsCommand(opts); });

  cli.command('rm [model]', 'Remove a model from the Hugging Face cache')
    .action((model, opts) => { result = rmCommand(model, opts); });

  cli.help();
  cli.option('-v, --version', `Print the version (${VERSION}) and commit`);

  try {
    if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
      process.stdout.write(versionLine() + '\n');
      return 0;
    }
    cli.parse(['bun', 'fla', ...argv], { run: false });
    if (!cli.matchedCommand) {
      if (cli.options.help) return 0;
      if (cli.args.length) throw new FlaError(`unknown command '${cli.args[0]}' (commands: ${COMMANDS.join(', ')}; see fla --help)`, 2);
      cli.outputHelp();
      return 2;
    }
    if (cli.options.help) return 0;
    await cli.runMatchedCommand();
    return await result;
  } catch (e) {
    return handleError(e, verbose);
  }
}

export function handleError(e: unknown, verbose: boolean): number {
  const err = e as Error;
  if (e instanceof FlaError) {
    process.stderr.write(`error: ${err.message}\n`);
    if (verbose && err.stack) process.stderr.write(err.stack + '\n');
    return e.exitCode;
  }
  const sys = err as NodeJS.ErrnoException;
  if (sys?.code && typeof sys.code === 'string' && /^E[A-Z]+$/.test(sys.code)) {
    // file-system failures the user can fix: name the path and the reason, no stack
    const why: Record<string, string> = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'is a directory', ENOSPC: 'disk full', EROFS: 'read-only file system' };
    process.stderr.write(`error: ${sys.path ?? ''}${sys.path ? ': ' : ''}${why[sys.code] ?? sys.message}\n`);
    if (verbose && err.stack) process.stderr.write(err.stack + '\n');
    return 1;
  }
  if (err?.name === 'CACError') {
    process.stderr.write(`error: ${err.message} (see fla --help)\n`);
    return 2;
  }
  process.stderr.write(`error: internal error: ${err?.message ?? String(e)}${verbose ? '' : ' (run with --verbose for details)'}\n`);
  if (verbose && err?.stack) process.stderr.write(err.stack + '\n');
  return 1;
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  process.exit(code);
}
