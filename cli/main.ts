#!/usr/bin/env bun
// fla: argv → command → exit code. Every error is caught here and printed as one line (stack with --verbose).
import { cac } from 'cac';
import { FlaError } from '../src/util/errors.ts';
import { VERSION, versionLine } from '../src/util/version.ts';
import { log } from '../src/util/log.ts';
import { actionArgs, nearest, parseArgv } from './argv.ts';
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

  cli.command('run [model] [...prompt]', 'Generate text (model: a folder or org/name; default: the embedded kjv-rwkv7)')
    .option('-p, --prompt <text>', 'The prompt (instead of the words after MODEL)')
    .option('-f, --file <file>', 'Read the prompt from a file (- = stdin); with no prompt at all, stdin is read when it is not a terminal')
    .option('-n, --max-tokens <n>', 'Maximum new tokens, -1 = until EOS or the context (default 256)')
    .option('-t, --temp, --temperature <t>', 'Sampling temperature, 0 = greedy (default 0.8)')
    .option('--top-k <k>', 'Keep the k most likely tokens, 0 = off (default 40)')
    .option('--top-p <p>', 'Nucleus sampling, 1 = off (default 0.95)')
    .option('--min-p <p>', 'Drop tokens below p × the top probability, 0 = off (default 0.05)')
    .option('--repetition-penalty <r>', 'Penalise tokens already seen, 1 = off (default 1)')
    .option('--seed <n>', 'Random seed (same seed, same output)')
    .option('--stop <s>', 'Stop when this string appears (repeatable)', { type: [String] })
    .option('-c, --ctx <n>', 'Context size in tokens for attention models (default 4096); prints the memory the state takes')
    .option('--device <d>', 'gpu, gpu:N or cpu (default: a hardware GPU if any, else cpu)')
    .option('--json', 'Print one JSON object (ids, text, timings) instead of streaming')
    .option('--ids <ids>', 'Prompt as comma-separated token ids')
    .option('--no-echo', 'Print only the generated text, not the prompt before it')
    .option('--prompts <file>', 'JSONL of prompts run together (continuous batching); one JSON result line each, in order')
    .option('--max-batch <n>', 'With --prompts: sequences generated together (default 16)')
    .option('--chat', "Wrap the prompt in the model's chat template (as one user turn)")
    .option('--system <text>', 'System message for --chat')
    .option('--save-state <file>', "Write the prompt's state (after its last token) to FILE")
    .option('--load-state <file>', 'Start from the state in FILE (its tokens come before the prompt; with --prompts it seeds the cache)')
    .option('--state-cache-mb <m>', 'With --prompts: memory for prompt-state checkpoints, 0 = off (default 1024)')
    .option('--state-interval <n>', 'With --prompts: checkpoint every N prompt tokens (default 256)')
    .option('--state-cache-host-mb <m>', 'With --prompts: host memory for checkpoints pushed off the GPU (default 0 = drop them)')
    .option('--revision <rev>', 'Hub model: branch, tag or commit (default main)')
    .option('--token <token>', 'Hub token for private or gated repos (default: HF_TOKEN)')
    .option('--offline', 'Hub model: use only the local cache (also HF_HUB_OFFLINE=1)')
    .example('fla run In the beginning')
    .example('echo "In the beginning" | fla run -n 32')
    .example('fla run ./my-checkpoint "Hello" --temperature 0 -n 32')
    .example('fla run --prompts prompts.jsonl -t 0')
    .action((model, words, opts) => { result = runCommand(model, words, opts); });

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
    .option('-n, --max-tokens <n>', 'Maximum new tokens per reply, -1 = until EOS or the context (default 512)')
    .option('-t, --temp, --temperature <t>', 'Sampling temperature, 0 = greedy (default 0.8)')
    .option('--top-k <k>', 'Top-k (default 40)')
    .option('--top-p <p>', 'Top-p (default 0.95)')
    .option('--min-p <p>', 'Min-p (default 0.05)')
    .option('--repetition-penalty <r>', 'Repetition penalty (default 1)')
    .option('--seed <n>', 'Random seed')
    .option('--stop <s>', 'Stop string (repeatable)', { type: [String] })
    .option('--system <text>', 'System message')
    .option('-c, --ctx <n>', 'Context size in tokens for attention models (default 4096)')
    .option('--device <d>', 'gpu, gpu:N or cpu')
    .option('--revision <rev>', 'Hub model: branch, tag or commit (default main)')
    .option('--token <token>', 'Hub token for private or gated repos (default: HF_TOKEN)')
    .option('--offline', 'Hub model: use only the local cache (also HF_HUB_OFFLINE=1)')
    .action((model, opts) => { result = chatCommand(model, opts); });

  cli.command('bench [model]', 'Speed: prompt and generation tokens/s, TTFT, batched decode, per-kernel roofline')
    .option('--synthetic <name>', 'Random weights of a real model shape: rwkv7-0.1b, rwkv7-1.5b, gated_deltanet-1.3b, gla-1.3b, llama-1b, qwen3_next-80b-a3b (-e64, -e512), qwen3_moe-30b-a3b')
    .option('--dtype <d>', 'Synthetic weights: bf16 or fp8 (F8_E4M3, 128×128 block scales; default bf16)')
    .option('-p, --prompt-tokens <n>', 'Prompt length (default 512)')
    .option('-n, --gen-tokens <n>', 'Generated tokens (default 128)')
    .option('-b, --batch <list>', 'Decode batch sizes, comma-separated (default 1)')
    .option('-r, --reps <n>', 'Repetitions after warm-up (default 3)')
    .option('--ctx <n>', 'Also decode with this many tokens already in the KV cache (random keys/values, no prefill); the state is sized for it, its memory goes to stderr')
    .option('--no-profile', 'Skip the per-kernel timestamp profile (it runs by default where the GPU has timestamps)')
    .option('--device <d>', 'gpu, gpu:N or cpu')
    .option('--json', 'Print JSON')
    .option('--revision <rev>', 'Hub model: branch, tag or commit (default main)')
    .option('--token <token>', 'Hub token for private or gated repos (default: HF_TOKEN)')
    .option('--offline', 'Hub model: use only the local cache (also HF_HUB_OFFLINE=1)')
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
    .option('--state-cache-mb <m>', 'Memory for prompt-state checkpoints (prefix cache), 0 = off (default 1024)')
    .option('--state-interval <n>', 'Checkpoint every N prompt tokens (default 256)')
    .option('--state-cache-host-mb <m>', 'Host memory for checkpoints pushed off the GPU (default 0 = drop them)')
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

  // A negated flag (--no-echo) is on by default; cac's help would print that as "(default: true)".
  for (const c of [cli.globalCommand, ...cli.commands]) for (const o of c.options) if (o.negated) o.config.default = undefined;

  try {
    const parsed = parseArgv(cli, argv);
    const { command, args, options } = parsed;
    if (!command) {
      if (args[0] === 'help') {
        const want = args[1];
        const c = want === undefined ? null : cli.commands.find(x => x.isMatched(want));
        if (want !== undefined && !c) throw unknownCommand(want);
        if (args.length > 2) throw new FlaError(`fla help takes at most one command, got ${args.length - 1}`, 2);
        (c ?? cli.globalCommand).outputHelp();
        return 0;
      }
      if (args.length) throw unknownCommand(args[0]!);
      if (options.version && !options.help) { process.stdout.write(versionLine() + '\n'); return 0; }
      cli.globalCommand.outputHelp();
      return 0;
    }
    if (options.help) { command.outputHelp(); return 0; }
    await command.commandAction!.apply(cli, actionArgs(command, parsed));
    return await result;
  } catch (e) {
    return handleError(e, verbose);
  }
}

function unknownCommand(name: string): FlaError {
  const near = nearest(name, [...COMMANDS, 'help']);
  return new FlaError(`unknown command '${name}'${near ? ` (did you mean ${near}?)` : ''}; commands: ${COMMANDS.join(', ')}, help; see fla --help`, 2);
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
  process.stderr.write(`error: internal error: ${err?.message ?? String(e)}${verbose ? '' : ' (run with --verbose for details)'}\n`);
  if (verbose && err?.stack) process.stderr.write(err.stack + '\n');
  return 1;
}

/** stdout that fails: a closed pipe (fla run … | head) ends quietly; any other write error is one line and exit 1. */
function guardStdout(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    const why: Record<string, string> = { ENOSPC: 'no space left on device', EIO: 'input/output error', EBADF: 'not open for writing' };
    process.stderr.write(`error: cannot write to stdout: ${why[e.code ?? ''] ?? e.message}\n`);
    process.exit(1);
  });
}

/** Resolves once what was written to stdout has been handed to the OS (so its write errors come before the exit). */
const drainStdout = () => new Promise<void>(res => { process.stdout.write('', () => setImmediate(res)); });

if (import.meta.main) {
  guardStdout();
  const code = await main(process.argv.slice(2));
  await drainStdout();
  process.exit(code);
}
