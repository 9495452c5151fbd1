/**
 * The client: one HTTP/2 connection (gRPC, TLS or plaintext), the bearer token on every call,
 * bounded retries of UNAVAILABLE, and the resource namespaces.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { SecureClientSessionOptions } from "node:http2";
import { type Client as RpcClient, type Interceptor, createClient } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { AccessService } from "./gen/credentials/v1/access_service_pb.js";
import { CredentialsService } from "./gen/credentials/v1/credentials_service_pb.js";
import { AuditEvents } from "./auditEvents.js";
import { requireCredential } from "./convert.js";
import { Credentials } from "./credentials.js";
import { DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, backoffSeconds } from "./defaults.js";
import { Cancelled, Unavailable, type VaultError, fromConnectError } from "./errors.js";
import { type KeyProvider, type KeyProviderOptions, createKeyProvider } from "./keyProvider.js";
import { Secret } from "./secret.js";
import type { AccessOptions, CallOptions } from "./types.js";
import { VERSION } from "./version.js";

/** Options of {@link Client}; each falls back to an environment variable, then a default. */
export interface ClientOptions {
  /** `host:port` of the API (`[::1]:50051` for IPv6); env CREDVAULT_TARGET; default `localhost:50051`. */
  target?: string;
  /** The bearer token (a JWT); env CREDVAULT_TOKEN. Required. */
  token?: string;
  /** The workspace to act in; env CREDVAULT_WORKSPACE; default: the token's single workspace. */
  workspace?: string;
  /**
   * undefined: plaintext to a loopback target (localhost, 127.x, ::1), TLS otherwise;
   * true: TLS with Node's trusted roots; false: plaintext; a string: TLS trusting the CA bundle
   * (PEM) at that path.
   */
  tls?: boolean | string;
  /** Deadline of each attempt in seconds (default 30; probes default to 130). */
  timeout?: number;
  /** Extra attempts after UNAVAILABLE (default 5); no other error is retried. */
  maxRetries?: number;
}


/** How a call reaches the wire; shared by the namespaces. @internal */
export interface Transport {
  readonly credentialsService: RpcClient<typeof CredentialsService>;
  readonly accessService: RpcClient<typeof AccessService>;
  /** The workspace_id to send: the call's, else the client's, else "". */
  workspace(options: CallOptions): string;
  /** Runs `fn` with a deadline per attempt, retrying UNAVAILABLE with backoff. */
  call<T>(
    fn: (opts: { timeoutMs: number; signal?: AbortSignal; headers: Record<string, string> }) => Promise<T>,
    options: CallOptions,
    defaultTimeout?: number,
  ): Promise<T>;
}

/**
 * A client of the credentials vault.
 *
 * ```ts
 * const client = new Client({ target: "vault.internal:50051", token: process.env.VAULT_TOKEN });
 * const credential = await client.credentials.create({ name: "OpenAI Production", type: "openai", value: "sk-..." });
 * const secret = await client.access({ type: "openai" });
 * await client.close();
 * ```
 */
export class Client {
  /** Create, read, list, update, delete, validate and discover credentials. */
  readonly credentials: Credentials;
  /** The workspace's audit log: `client.auditEvents.list({ credentialId })`. */
  readonly auditEvents: AuditEvents;
  /** The target this client talks to. */
  readonly target: string;
  /** The workspace calls act in when they name none (undefined: the token's single workspace). */
  readonly workspace: string | undefined;

  readonly #sessions: Http2SessionManager;
  readonly #transport: Transport;
  #closed = false;

  constructor(options: ClientOptions = {}) {
    const env = process.env;
    const token = options.token ?? env.CREDVAULT_TOKEN;
    if (!token) {
      throw new TypeError("credvault: no token: pass new Client({ token }) or set CREDVAULT_TOKEN");
    }
    if (!/^[\x21-\x7e]+$/.test(token)) {
      // Said without repeating it: a token is a credential too.
      throw new TypeError("credvault: the token has characters a header cannot carry (spaces, newlines, non-ASCII)");
    }
    const target = options.target ?? env.CREDVAULT_TARGET ?? "localhost:50051";
    const workspace = options.workspace ?? (env.CREDVAULT_WORKSPACE || undefined);
    const timeout = checkSeconds("timeout", options.timeout ?? DEFAULT_TIMEOUT);
    const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    if (!Number.isInteger(maxRetries) || maxRetries < 0) {
      throw new TypeError("credvault: maxRetries must be an integer >= 0");
    }
    const { host, port } = parseTarget(target);
    const tls = options.tls ?? !isLoopback(host);
    const authority = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    const baseUrl = `${tls === false ? "http" : "https"}://${authority}`;
    const nodeOptions: SecureClientSessionOptions = {};
    if (typeof tls === "string") {
      nodeOptions.ca = readFileSync(tls);
    }

    this.target = target;
    this.workspace = workspace;
    this.#sessions = new Http2SessionManager(baseUrl, {}, nodeOptions);
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      req.header.set("user-agent", `credvault-node/${VERSION}`);
      return next(req);
    };
    const grpc = createGrpcTransport({ baseUrl, sessionManager: this.#sessions, interceptors: [auth] });
    const isClosed = () => this.#closed;

    this.#transport = {
      credentialsService: createClient(CredentialsService, grpc),
      accessService: createClient(AccessService, grpc),
      workspace: (call) => call.workspace ?? workspace ?? "",
      async call(fn, call, defaultTimeout = timeout) {
        const seconds = checkSeconds("timeout", call.timeout ?? defaultTimeout);
        // One id for every attempt, so the server's logs and audit events tie the retries together.
        const requestId = randomBytes(12).toString("hex");
        for (let attempt = 1; ; attempt++) {
          if (isClosed()) throw new Cancelled("credvault: the client is closed", [], { attempts: attempt - 1 });
          let err: VaultError;
          try {
            return await fn({
              timeoutMs: Math.max(1, Math.ceil(seconds * 1000)),
              ...(call.signal ? { signal: call.signal } : {}),
              headers: { "x-request-id": requestId },
            });
          } catch (e) {
            err = fromConnectError(e, attempt, call.signal?.aborted === true || isClosed());
          }
          if (!(err instanceof Unavailable) || attempt > maxRetries || isClosed()) throw err;
          await sleep(backoffSeconds(attempt) * 1000, call.signal, attempt);
        }
      },
    };
    this.credentials = new Credentials(this.#transport);
    this.auditEvents = new AuditEvents(this.#transport);
  }

  /**
   * A credential's plaintext, by id (`{ id }`) or as the workspace's default for a type
   * (`{ type: "openai" }`). Needs the `access` permission; every call is audited.
   */
  async access(options: AccessOptions): Promise<Secret> {
    const t = this.#transport;
    const selector =
      options.id !== undefined
        ? { case: "id" as const, value: options.id }
        : options.type !== undefined
          ? { case: "defaultForType" as const, value: options.type }
          : null;
    if (!selector) throw new TypeError("credvault: access needs { id } or { type }");
    const r = await t.call(
      (opts) => t.accessService.accessCredential({ workspaceId: t.workspace(options), selector }, opts),
      options,
    );
    return new Secret(requireCredential(r.credential), r.secret, Object.entries(r.fields));
  }

  /**
   * A function returning a credential's current secret, cached for `ttl` seconds (default 60):
   * `client.keyProvider("openai")` (the workspace's default for the type) or
   * `client.keyProvider({ credentialId, ttl })`.
   */
  keyProvider(type: string, options?: Omit<KeyProviderOptions, "type" | "credentialId">): KeyProvider;
  keyProvider(options: KeyProviderOptions): KeyProvider;
  keyProvider(
    typeOrOptions: string | KeyProviderOptions,
    options: Omit<KeyProviderOptions, "type" | "credentialId"> = {},
  ): KeyProvider {
    const merged = typeof typeOrOptions === "string" ? { ...options, type: typeOrOptions } : typeOrOptions;
    return createKeyProvider((o) => this.access(o), merged);
  }

  /** Closes the connection; calls made afterwards fail with `Cancelled`. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#sessions.abort();
  }

  /** `await using client = new Client(...)` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  get [Symbol.toStringTag](): string {
    return "Client";
  }
}

function checkSeconds(what: string, value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`credvault: ${what} must be a positive number of seconds`);
  }
  return value;
}

/** Splits `host:port` / `[v6]:port`. */
function parseTarget(target: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:\[\]/]+)):(\d{1,5})$/.exec(target);
  const port = m ? Number(m[3]) : NaN;
  const host = m ? (m[1] ?? m[2]) : undefined;
  if (!host || !(port > 0 && port < 65536)) {
    throw new TypeError(`credvault: target must be host:port (or [ipv6]:port), got ${JSON.stringify(target)}`);
  }
  return { host, port };
}

function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::1";
}

function sleep(ms: number, signal: AbortSignal | undefined, attempts: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new Cancelled("credvault: the call was cancelled", [], { attempts, cause: signal.reason }));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Cancelled("credvault: the call was cancelled", [], { attempts, cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
