/**
 * The real stack for the integration tests: one `target/debug/test-stack` per run (Postgres, the
 * kms and the credentials-api), started on first use and stopped by the entry file's `after`.
 *
 * The binary prints one JSON line when ready, then answers commands on stdin one JSON line each:
 * `token <ws,...> <perm,...>`, `stop-api`, `start-api`. EOF on stdin stops it and drops its
 * database. Its stderr goes to a file (the path is in every failure message), removed after a
 * clean stop unless CREDVAULT_TEST_KEEP_LOG is set.
 *
 * A missing binary fails every test that needs it (it never skips): build it with
 * `cargo build --workspace --bins` in the repository root, or point CREDVAULT_TEST_STACK at it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Client, type ClientOptions } from "../src/index.js";

/** The ready line. */
export interface StackInfo {
  grpc: string;
  http: string;
  workspace: string;
  token: string;
  analytics_url: string;
  /** The stack's directory (the kms's and the API's own logs), removed when it stops. */
  dir?: string;
}

export type Permission = "read" | "write" | "access" | "admin";

// dist-test/test/stack.js -> the package root is two levels up, the repository four.
const PACKAGE_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DEFAULT_BINARY = join(PACKAGE_ROOT, "..", "..", "target", "debug", "test-stack");
const READY_TIMEOUT_MS = 180_000;
const COMMAND_TIMEOUT_MS = 60_000;

export class Stack {
  readonly info: StackInfo;
  readonly log: string;
  readonly #child: ChildProcess;
  readonly #lines: AsyncIterator<string>;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(child: ChildProcess, lines: AsyncIterator<string>, info: StackInfo, log: string) {
    this.#child = child;
    this.#lines = lines;
    this.info = info;
    this.log = log;
  }

  static async start(): Promise<Stack> {
    const binary = process.env.CREDVAULT_TEST_STACK || DEFAULT_BINARY;
    if (!existsSync(binary)) {
      throw new Error(
        `test-stack binary not found at ${binary}: build it with \`cargo build --workspace --bins\` ` +
          "in the repository root, or set CREDVAULT_TEST_STACK to its path",
      );
    }
    const log = join(tmpdir(), `credvault-ts-test-stack-${process.pid}-${randomBytes(3).toString("hex")}.log`);
    const logStream = createWriteStream(log);
    const child = spawn(binary, [], { stdio: ["pipe", "pipe", "pipe"] });
    child.stderr?.pipe(logStream);
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const exited = new Promise<never>((_, reject) => {
      child.once("error", (e) => reject(new Error(`test-stack failed to start: ${e.message}`)));
      child.once("exit", (code, signal) =>
        reject(new Error(`test-stack exited (${signal ?? code}) before it was ready; log: ${log}\n${tail(log)}`)),
      );
    });
    exited.catch(() => {});
    const first = await withTimeout(Promise.race([lines.next(), exited]), READY_TIMEOUT_MS, `test-stack ready line; log: ${log}`);
    if (first.done) throw new Error(`test-stack closed stdout before it was ready; log: ${log}\n${tail(log)}`);
    const info = JSON.parse(first.value) as StackInfo;
    for (const key of ["grpc", "workspace", "token", "analytics_url"] as const) {
      if (typeof info[key] !== "string" || info[key] === "") {
        throw new Error(`test-stack ready line lacks ${key}: ${first.value}`);
      }
    }
    return new Stack(child, lines, info, log);
  }

  /** Sends one command and returns its JSON answer; commands run one at a time. */
  command(line: string): Promise<Record<string, unknown>> {
    const run = async () => {
      if (this.#child.exitCode !== null) throw new Error(`test-stack has exited; log: ${this.log}`);
      this.#child.stdin!.write(`${line}\n`);
      const next = await withTimeout(this.#lines.next(), COMMAND_TIMEOUT_MS, `test-stack answer to ${line}`);
      if (next.done) throw new Error(`test-stack closed stdout during ${line}; log: ${this.log}\n${tail(this.log)}`);
      const answer = JSON.parse(next.value) as Record<string, unknown>;
      if ("error" in answer) throw new Error(`test-stack refused ${line}: ${JSON.stringify(answer)}`);
      return answer;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }

  /** A token for the workspaces with the permissions. */
  async token(workspaces: string[], permissions: Permission[], subject?: string): Promise<string> {
    const line = `token ${workspaces.join(",")} ${permissions.join(",")} ${subject ?? ""}`.trim();
    const answer = await this.command(line);
    if (typeof answer.token !== "string") throw new Error(`test-stack token answer: ${JSON.stringify(answer)}`);
    return answer.token;
  }

  async stopApi(): Promise<void> {
    await this.command("stop-api");
  }

  async startApi(): Promise<void> {
    await this.command("start-api");
  }

  /** A client of the stack's API (the harness's token and workspace unless told otherwise). */
  client(options: ClientOptions = {}): Client {
    return new Client({ target: this.info.grpc, token: this.info.token, ...options });
  }

  /** A workspace of its own (a fresh id with the prefix), its token and a client acting in it. */
  async workspace(
    prefix: string,
    permissions: Permission[] = ["read", "write", "access"],
    options: ClientOptions = {},
  ): Promise<{ workspace: string; token: string; client: Client }> {
    const workspace = `${prefix}-${randomBytes(4).toString("hex")}`;
    const token = await this.token([workspace], permissions);
    return { workspace, token, client: this.client({ token, ...options }) };
  }

  /** Alters a credential's row in the database so its value fails the integrity check. */
  async tamper(id: string): Promise<void> {
    const answer = await this.command(`tamper ${id}`);
    if (answer.rows !== 1) throw new Error(`test-stack tamper answer: ${JSON.stringify(answer)}`);
  }

  /**
   * Stops the stack: EOF on stdin, then waits for it to clean up (SIGTERM after 60 s). It exits
   * non-zero when one of its processes logged an ERROR no test expected, which fails the run.
   */
  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<number | null>((resolve) => this.#child.once("exit", (code) => resolve(code)));
    this.#child.stdin!.end();
    const timer = setTimeout(() => this.#child.kill("SIGTERM"), 60_000);
    const code = await exited;
    clearTimeout(timer);
    // A clean stop leaves nothing behind; otherwise the log stays for a look.
    if (code === 0 && !process.env.CREDVAULT_TEST_KEEP_LOG) rmSync(this.log, { force: true });
    if (code !== 0) throw new Error(`test-stack exited with ${code}; log: ${this.log}\n${tail(this.log)}`);
  }
}

let shared: Promise<Stack> | undefined;

/** The run's stack, started on first use. */
export function stack(): Promise<Stack> {
  shared ??= Stack.start();
  return shared;
}

/** Stops the run's stack if it was started. */
export async function closeStack(): Promise<void> {
  if (!shared) return;
  const s = await shared.catch(() => undefined);
  await s?.close();
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function tail(path: string): string {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-20).join("\n");
  } catch {
    return "";
  }
}
