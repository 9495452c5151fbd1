/** The default deadline of a call, in seconds. */
export const DEFAULT_TIMEOUT = 30;
/** The default deadline of validate, test and discoverSchema, in seconds (the server gives probes at least 125 s). */
export const PROBE_TIMEOUT = 130;
/** The default number of retries of UNAVAILABLE. */
export const DEFAULT_MAX_RETRIES = 5;
/** The first retry's backoff ceiling, in seconds; it doubles with each retry. */
export const BACKOFF_BASE = 0.1;
/** The largest backoff ceiling, in seconds. */
export const BACKOFF_CAP = 2;

/**
 * The wait before retry number `retry` (1-based), in seconds. Equal jitter: half of
 * min(cap, base * 2^(retry-1)) for sure, the other half at random, so retries spread out but
 * their total wait has a floor an outage can be sized against.
 */
export function backoffSeconds(retry: number): number {
  const ceiling = Math.min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (retry - 1));
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}
/** The default cache lifetime of a key provider, in seconds. */
export const DEFAULT_KEY_TTL = 60;
