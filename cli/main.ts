#!/usr/bin/env bun
// fla: argv → command → exit code. Every error is caught here and printed as one line (stack with --verbose).
import { cac } from 'cac';
import pkg from '../package.json' with { type: 'json' };
import { FlaError } from '../src/util/errors.ts';
import { log } from '../src/util/log.ts';
import { devicesCommand } from './devices.ts';
import { pplCommand } from './ppl.ts';
import { runCommand } from './run.ts';

const COMMANDS = ['run', 'ppl', 'devices'];

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
    .example('fla run "In the beginning"')
    .example('fla run ./my-checkpoint "Hello" --temperature 0 -n 32')
    .action((model, prompt, opts) => { result = runCommand(model, prompt, opts); });

  cli.command('ppl [model]', 'Perplexity over non-overlapping windows of a text or id file')
    .option('--text <file>', 'Text file, tokenized with the model tokenizer')
    .option('--ids <file>', 'JSON array of token ids')
    .option('--window <n>', 'Window length (default 512)')
    .option('--batch <n>', 'Windows run together (default 8)')
    .option('--device <d>', 'gpu, gpu:N or cpu')
    .option('--json', 'Print JSON')
    .action((model, opts) => { result = pplCommand(model, opts); });

  cli.command('devices', 'List WebGPU adapters and the features that choose kernels')
    .option('--json', 'Print JSON')
    .action(opts => { result = devicesCommand(opts); });

  cli.help();
  cli.version(pkg.version);

  try {
    cli.parse(['bun', 'fla', ...argv], { run: false });
    if (!cli.matchedCommand) {
      if (cli.options.help || cli.options.version) return 0;
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
