// Prints each fixture's golden error (the largest relErr of goldenError's three checks) on every backend, to set
// golden.ts's TOLERANCE from:  bun test/helpers/measure_golden.ts [fixture …]   (default: every fixture in TOLERANCE)
import { fixture } from './fixtures.ts';
import { TOLERANCE, goldenError } from './golden.ts';
import { BACKENDS } from './model.ts';

const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(TOLERANCE);
for (const name of names) {
  const dir = fixture(name);
  if (!dir) continue;
  const errs: string[] = [];
  for (const kind of BACKENDS) errs.push(`${kind} ${(await goldenError(dir, kind)).toExponential(2)}`);
  console.log(`${name}: ${errs.join(', ')}  (tolerance now ${TOLERANCE[name] ?? 'none'})`);
}
process.exit(0);
