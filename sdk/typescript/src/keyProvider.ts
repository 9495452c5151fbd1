/**
 * `client.keyProvider(...)`: a function that returns a credential's current secret, fetched
 * through the access API and cached for `ttl` seconds, for SDKs that take a key per request
 * (`apiKey: await provider()`). Concurrent callers share one fetch; a failed fetch is not cached;
 * `refresh()` drops the cache so the next call fetches again (after a rotation). The value lives
 * in a closure: the provider prints as its id or type, never the key.
 */
import { inspect } from "node:util";
import { DEFAULT_KEY_TTL } from "./defaults.js";
import type { Secret } from "./secret.js";
import type { AccessOptions, CallOptions } from "./types.js";

/** Options of `client.keyProvider()`. */
export interface KeyProviderOptions extends CallOptions {
  /** The workspace's default credential of this type, e.g. openai. */
  type?: string;
  /** A credential by id (instead of type). */
  credentialId?: string;
  /** How long a fetched secret is reused, in seconds (default 60; 0 fetches on every call). */
  ttl?: number;
}

/** Returns the current secret; see {@link KeyProviderOptions}. */
export interface KeyProvider {
  (): Promise<string>;
  /** Drops the cached secret: the next call fetches it again. */
  refresh(): void;
  /** The cache lifetime in seconds. */
  readonly ttl: number;
}


/** @internal Builds a provider over `access` (the client's `access`). */
export function createKeyProvider(
  access: (options: AccessOptions) => Promise<Secret>,
  options: KeyProviderOptions,
): KeyProvider {
  const { type, credentialId, ttl = DEFAULT_KEY_TTL, ...call } = options;
  if ((type === undefined) === (credentialId === undefined)) {
    throw new TypeError("credvault: keyProvider needs exactly one of a type or { credentialId }");
  }
  if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl < 0) {
    throw new TypeError("credvault: keyProvider ttl must be a number of seconds >= 0");
  }
  const selector: AccessOptions =
    credentialId !== undefined ? { ...call, id: credentialId } : { ...call, type: type as string };
  const label = credentialId !== undefined ? `id=${credentialId}` : `type=${type}`;

  let cached: { value: string; expires: number } | null = null;
  let inflight: Promise<string> | null = null;
  // Bumped by refresh(): a fetch started before it does not fill the cache after it.
  let generation = 0;

  const fetchSecret = (): Promise<string> => {
    const started = generation;
    const p = access(selector).then(
      (secret) => {
        const value = secret.reveal();
        if (started === generation) {
          cached = { value, expires: performance.now() + ttl * 1000 };
        }
        return value;
      },
    );
    inflight = p;
    const clear = () => {
      if (inflight === p) inflight = null;
    };
    p.then(clear, clear);
    return p;
  };

  const provider = (async () => {
    if (cached && performance.now() < cached.expires) return cached.value;
    return inflight ?? fetchSecret();
  }) as KeyProvider;

  const refresh = () => {
    generation += 1;
    cached = null;
    inflight = null;
  };
  const text = () => `KeyProvider(${label}, ttl=${ttl}s, value=[REDACTED])`;
  Object.defineProperties(provider, {
    refresh: { value: refresh },
    ttl: { value: ttl, enumerable: true },
    toString: { value: text },
    toJSON: { value: text },
    [inspect.custom]: { value: text },
  });
  return provider;
}
