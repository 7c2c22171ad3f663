// argv → {command, positional args, options} from cac's command and option definitions. Values stay the strings typed
// (cac's parser turns "\n", " " or "007" into numbers); an option that takes a value always takes the next word, so
// `-n -1` works; unknown options are reported as typed, with a "did you mean" and the command's --help.
import type { CAC, Command } from 'cac';
import { UsageError } from '../src/util/errors.ts';

type Option = Command['options'][number];
export interface Parsed { command: Command | null; args: string[]; options: Record<string, unknown> }

/** Edit distance with adjacent transpositions (optimal string alignment), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest of `names` to `typed`, if close enough to be a typo. */
export function nearest(typed: string, names: string[]): string | null {
  let best: string | null = null, dist = Infinity;
  for (const n of names) {
    const e = editDistance(typed, n);
    if (e < dist) { dist = e; best = n; }
  }
  const core = typed.replace(/^-+/, '').length;
  return best !== null && dist <= (core <= 4 ? 1 : core <= 8 ? 2 : 3) ? best : null;
}

/** Every spelling of an option as typed: "-n", "--max-tokens", "--no-echo". */
export function spellings(o: Option): string[] {
  return o.rawName.replace(/[<[].*$/, '').split(',').map(s => s.trim()).filter(Boolean);
}

const takesValue = (o: Option) => !o.isBoolean;

export function parseArgv(cli: CAC, argv: string[]): Parsed {
  const global = cli.globalCommand.options;
  const options: Record<string, unknown> = {};
  const args: string[] = [];
  let command: Command | null = null;
  let known = new Map<string, Option>();
  const index = (opts: Option[]) => { known = new Map(opts.flatMap(o => spellings(o).map(s => [s, o] as const))); };
  index(global);
  const set = (o: Option, v: unknown) => {
    for (const name of o.names) {
      const old = options[name];
      options[name] = old === undefined ? v : Array.isArray(old) ? [...old, v] : [old, v];
    }
  };
  const where = () => (command ? `fla ${command.name} --help` : 'fla --help');

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { args.push(...argv.slice(i + 1)); break; }
    if (!a.startsWith('-') || a === '-' || /^-\d/.test(a)) {
      if (command === null && args.length === 0) {
        command = cli.commands.find(c => c.isMatched(a)) ?? null;
        if (command) { index([...command.options, ...global]); continue; }
      }
      args.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = flag === a ? undefined : a.slice(eq + 1);
    const o = known.get(flag);
    if (!o) {
      if (command === null && args.length) throw new UsageError(`unknown command '${args[0]}'`);
      const near = nearest(flag, [...known.keys()].filter(k => k.startsWith('--')));
      throw new UsageError(`unknown option ${flag}${command ? ` for fla ${command.name}` : ''}${near ? ` (did you mean ${near}?)` : ''}; see ${where()}`);
    }
    if (o.negated && flag.startsWith('--no-')) {
      if (inline !== undefined) throw new UsageError(`${flag} takes no value`);
      set(o, false);
    } else if (takesValue(o)) {
      let v = inline;
      if (v === undefined) {
        const next = argv[i + 1];
        if (next === undefined || (next.startsWith('-') && known.has(next.split('=')[0]!))) throw new UsageError(`${flag} needs a value; see ${where()}`);
        v = next;
        i++;
      }
      set(o, v);
    } else {
      if (inline !== undefined) throw new UsageError(`${flag} takes no value`);
      set(o, true);
    }
  }
  return { command, args, options };
}

/** The arguments a cac action takes: one per declared argument (a variadic one gets the rest), then the options. */
export function actionArgs(command: Command, p: Parsed): unknown[] {
  const out: unknown[] = [];
  const variadic = command.args.some(a => a.variadic);
  if (!variadic && p.args.length > command.args.length)
    throw new UsageError(`unexpected argument${p.args.length - command.args.length > 1 ? 's' : ''} ${p.args.slice(command.args.length).map(s => JSON.stringify(s)).join(' ')} for fla ${command.name}; quote a prompt with spaces, or see fla ${command.name} --help`);
  const missing = command.args.filter(a => a.required).length;
  if (p.args.length < missing) throw new UsageError(`fla ${command.rawName}: missing arguments; see fla ${command.name} --help`);
  command.args.forEach((a, i) => out.push(a.variadic ? p.args.slice(i) : p.args[i]));
  out.push(p.options);
  return out;
}
