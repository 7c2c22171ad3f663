// The prompt-state cache flags of fla serve and fla run --prompts (--state-cache-mb, --state-interval,
// --state-cache-host-mb).
import type { Backend } from '../src/backend/backend.ts';
import { PrefixCache, type PrefixCacheOptions } from '../src/runtime/prefix_cache.ts';
import { optInt } from './options.ts';

export const STATE_CACHE_OPTIONS = ['stateCacheMb', 'stateInterval', 'stateCacheHostMb'];
export const DEFAULT_STATE_CACHE_MB = 1024;

/** The checked flag values (call before loading the model so that a bad value fails fast). */
export function stateCacheOptions(opts: Record<string, any>): PrefixCacheOptions {
  const mb = optInt(opts.stateCacheMb, '--state-cache-mb', DEFAULT_STATE_CACHE_MB, 0, 1 << 24);
  const interval = optInt(opts.stateInterval, '--state-interval', 256, 1, 1 << 24);
  const host = optInt(opts.stateCacheHostMb, '--state-cache-host-mb', 0, 0, 1 << 24);
  return { maxBytes: mb * 2 ** 20, interval, hostBytes: host * 2 ** 20 };
}

/** The cache the flags ask for; undefined with --state-cache-mb 0. */
export function makePrefixCache(o: PrefixCacheOptions, backend: Backend): PrefixCache | undefined {
  return o.maxBytes === 0 ? undefined : new PrefixCache(backend, o);
}
