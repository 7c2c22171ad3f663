// Where the shared reference data lives, and whether its absence skips or fails a test.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** ../shared (or FLA_SHARED); fixtures under FLA_FIXTURES if set. */
export const SHARED = resolve(process.env.FLA_SHARED ?? join(import.meta.dir, '../../../shared'));
export const FIXTURES = resolve(process.env.FLA_FIXTURES ?? join(SHARED, 'fixtures'));
/** CI sets FLA_REQUIRE_FIXTURES=1: missing reference data is then a failure, not a skip. */
export const REQUIRE = process.env.FLA_REQUIRE_FIXTURES === '1';

function locate(path: string, what: string): string | null {
  if (existsSync(path)) return path;
  if (REQUIRE) throw new Error(`${what} not found at ${path} (FLA_REQUIRE_FIXTURES=1)`);
  console.warn(`skip: ${what} not found at ${path}`);
  return null;
}

/** Fixtures this repository generates itself (test/fixtures/<name>, see test/fixtures/README.md). */
export const LOCAL_FIXTURES = resolve(join(import.meta.dir, '../fixtures'));

/** Path of fixtures/<name> (the repository's own first, then shared/), or null (with a message) when absent. */
export function fixture(name: string): string | null {
  const local = join(LOCAL_FIXTURES, name);
  if (existsSync(join(local, 'config.json'))) return local;
  return locate(join(FIXTURES, name), `fixture ${name}`);
}

/** Path of shared/models/<name>, or null (with a message) when absent. */
export function sharedModel(name: string): string | null {
  const viaFixtures = join(FIXTURES, '..', 'models', name);
  return locate(existsSync(viaFixtures) ? viaFixtures : join(SHARED, 'models', name), `model ${name}`);
}
