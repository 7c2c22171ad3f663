// Logging to stderr with levels; stdout is for results only.
type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

let level: Level = (process.env.FLA_LOG as Level) in ORDER ? (process.env.FLA_LOG as Level) : 'info';

export const log = {
  setLevel(l: Level) { level = l; },
  get level() { return level; },
  debug: (m: string) => { if (ORDER[level] <= 0) process.stderr.write(`debug: ${m}\n`); },
  info: (m: string) => { if (ORDER[level] <= 1) process.stderr.write(`${m}\n`); },
  warn: (m: string) => { if (ORDER[level] <= 2) process.stderr.write(`warning: ${m}\n`); },
  error: (m: string) => { if (ORDER[level] <= 3) process.stderr.write(`error: ${m}\n`); },
};
