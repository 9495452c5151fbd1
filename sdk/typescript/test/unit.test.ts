/** Unit tests: what needs no server (versions, error mapping, printing, the key cache, options). */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { describe, test } from "node:test";
import { inspect } from "node:util";
import { create } from "@bufbuild/protobuf";
import { DurationSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { backoffSeconds } from "../src/defaults.js";
import { toAuditEvent } from "../src/convert.js";
import { fromConnectError } from "../src/errors.js";
import { AuditAction, AuditEventSchema, AuditOutcome } from "../src/gen/credentials/v1/resources_pb.js";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { createKeyProvider } from "../src/keyProvider.js";
import {
  AlreadyExists,
  AuditEvent,
  AuditEventList,
  Cancelled,
  Client,
  Credential,
  DataLoss,
  DeadlineExceeded,
  EtagMismatch,
  FailedPrecondition,
  Internal,
  InvalidArgument,
  Listing,
  NotFound,
  OutOfRange,
  PermissionDenied,
  ResourceExhausted,
  Secret,
  Unauthenticated,
  Unavailable,
  Unimplemented,
  Unknown,
  VERSION,
  VaultError,
} from "../src/index.js";

function event(id: string): AuditEvent {
  return new AuditEvent({
    id,
    workspaceId: "ws",
    credentialId: "c-1",
    actor: "svc",
    action: "access",
    outcome: "succeeded",
    statusCode: "OK",
    requestId: "r",
    time: null,
  });
}

const ROOT = new URL("../../", import.meta.url); // dist-test/test/ -> the package root

function credential(id = "c-1", type = "openai"): Credential {
  return new Credential({
    id,
    workspaceId: "ws",
    name: "n",
    category: "llm",
    type,
    description: "",
    maskedContent: "sk-pr...abcd",
    isDefault: true,
    isValid: null,
    validation: null,
    hasSchema: false,
    schemaUpdatedAt: null,
    createdAt: null,
    updatedAt: null,
    deletedAt: null,
    etag: "v1",
  });
}

describe("version", () => {
  test("package.json, VERSION and the Cargo workspace version agree", () => {
    const pkg = JSON.parse(readFileSync(new URL("package.json", ROOT), "utf8")) as { version: string };
    const cargo = readFileSync(new URL("../../Cargo.toml", ROOT), "utf8");
    const section = /^\[workspace\.package\]\s*$([\s\S]*?)(?=^\[)/m.exec(cargo)?.[1] ?? "";
    const cargoVersion = /^version\s*=\s*"([^"]+)"/m.exec(section)?.[1];
    assert.ok(cargoVersion, "Cargo.toml has [workspace.package] version");
    assert.equal(pkg.version, cargoVersion);
    assert.equal(VERSION, pkg.version);
  });
});

describe("error mapping", () => {
  const cases: [Code, new (...args: never[]) => VaultError, string][] = [
    [Code.InvalidArgument, InvalidArgument, "INVALID_ARGUMENT"],
    [Code.NotFound, NotFound, "NOT_FOUND"],
    [Code.AlreadyExists, AlreadyExists, "ALREADY_EXISTS"],
    [Code.Aborted, EtagMismatch, "ABORTED"],
    [Code.PermissionDenied, PermissionDenied, "PERMISSION_DENIED"],
    [Code.Unauthenticated, Unauthenticated, "UNAUTHENTICATED"],
    [Code.FailedPrecondition, FailedPrecondition, "FAILED_PRECONDITION"],
    [Code.ResourceExhausted, ResourceExhausted, "RESOURCE_EXHAUSTED"],
    [Code.Unavailable, Unavailable, "UNAVAILABLE"],
    [Code.DeadlineExceeded, DeadlineExceeded, "DEADLINE_EXCEEDED"],
    [Code.OutOfRange, OutOfRange, "OUT_OF_RANGE"],
    [Code.DataLoss, DataLoss, "DATA_LOSS"],
    [Code.Internal, Internal, "INTERNAL"],
    [Code.Canceled, Cancelled, "CANCELLED"],
    [Code.Unknown, Unknown, "UNKNOWN"],
  ];
  for (const [code, cls, name] of cases) {
    test(`${name} -> ${cls.name}`, () => {
      // As a server answers: the status in the trailers.
      const err = fromConnectError(new ConnectError("the server's message", code, { "grpc-status": String(code) }));
      assert.ok(err instanceof cls);
      assert.ok(err instanceof VaultError && err instanceof Error);
      assert.equal(err.code, name);
      assert.equal(err.message, "the server's message", "no [code] prefix");
      assert.equal(err.name, cls.name);
      assert.match(String(err), new RegExp(`^${cls.name}: the server's message$`));
    });
  }

  test("UNIMPLEMENTED (an older vault) -> Unimplemented", () => {
    const err = fromConnectError(new ConnectError("nope", Code.Unimplemented));
    assert.equal(err.constructor, Unimplemented);
    assert.ok(err instanceof VaultError);
    assert.equal(err.code, "UNIMPLEMENTED");
    assert.equal(err.name, "Unimplemented");
  });

  test("BadRequest details become fieldViolations", () => {
    const err = fromConnectError(
      new ConnectError("name: too long", Code.InvalidArgument, undefined, [
        {
          desc: BadRequestSchema,
          value: { fieldViolations: [{ field: "name", description: "at most 128 characters" }] },
        },
        { desc: ErrorInfoSchema, value: { reason: "TOO_LONG" } },
      ]),
    );
    assert.ok(err instanceof InvalidArgument);
    assert.deepEqual(err.fieldViolations, [{ field: "name", description: "at most 128 characters" }]);
    assert.equal(err.details.length, 2, "every detail is decoded");
  });

  test("RetryInfo becomes retryAfter in seconds", () => {
    const err = fromConnectError(
      new ConnectError("slow down", Code.ResourceExhausted, undefined, [
        { desc: RetryInfoSchema, value: { retryDelay: create(DurationSchema, { seconds: 1n, nanos: 500_000_000 }) } },
      ]),
    );
    assert.ok(err instanceof ResourceExhausted);
    assert.equal(err.retryAfter, 1.5);
    const bare = fromConnectError(new ConnectError("slow down", Code.ResourceExhausted));
    assert.ok(bare instanceof ResourceExhausted);
    assert.equal(bare.retryAfter, null);
  });

  test("a stream cancelled under the call, not by the caller, is a lost connection", () => {
    const torn = () => new ConnectError("http/2 stream closed with error code CANCEL (0x8)", Code.Canceled);
    assert.ok(fromConnectError(torn()) instanceof Unavailable);
    assert.ok(fromConnectError(torn(), 1, true) instanceof Cancelled, "the caller's own cancel stays CANCELLED");
  });

  test("a connection reset is UNAVAILABLE, not a stale etag", () => {
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    const err = fromConnectError(ConnectError.from(Object.assign(new ConnectError("reset", Code.Aborted), { cause: reset })));
    assert.ok(err instanceof Unavailable, String(err));
  });
});

describe("listings", () => {
  test("a Listing follows next_page_token lazily and starts again on each iteration", async () => {
    const requested: string[] = [];
    const pages: Record<string, { events: AuditEvent[]; nextPageToken: string }> = {
      "": { events: [event("3"), event("2")], nextPageToken: "p2" },
      p2: { events: [event("1")], nextPageToken: "" },
    };
    const list = new AuditEventList(async (token) => {
      requested.push(token);
      return pages[token]!;
    });
    assert.ok(list instanceof Listing);
    assert.deepEqual(requested, [], "nothing before iteration");
    assert.deepEqual((await list.toArray()).map((e) => e.id), ["3", "2", "1"]);
    assert.deepEqual(requested, ["", "p2"]);
    const sizes: number[] = [];
    for await (const page of list.pages) sizes.push(page.events.length);
    assert.deepEqual(sizes, [2, 1]);
    assert.deepEqual(requested, ["", "p2", "", "p2"]);
  });

  test("an audit event message converts to an AuditEvent with lower-case enum names", () => {
    const time = new Date("2025-01-02T03:04:05.678Z");
    const e = toAuditEvent(
      create(AuditEventSchema, {
        id: "42",
        workspaceId: "ws",
        credentialId: "c-1",
        actor: "svc",
        action: AuditAction.SET_DEFAULT,
        outcome: AuditOutcome.STARTED,
        statusCode: "OK",
        requestId: "r-1",
        time: timestampFromDate(time),
      }),
    );
    assert.ok(e instanceof AuditEvent);
    assert.equal(e.data, e);
    assert.deepEqual(
      { ...e },
      {
        id: "42",
        workspaceId: "ws",
        credentialId: "c-1",
        actor: "svc",
        action: "set_default",
        outcome: "started",
        statusCode: "OK",
        requestId: "r-1",
        time,
      },
    );
    const unset = toAuditEvent(create(AuditEventSchema, {}));
    assert.equal(unset.action, "unspecified");
    assert.equal(unset.outcome, "unspecified");
    assert.equal(unset.time, null);
  });
});

describe("Secret printing", () => {
  test("toString, JSON, inspect and template literals are redacted", () => {
    const secret = new Secret(credential("c-42"), "sk-the-value", [
      ["api_key", "sk-the-value"],
      ["org", "org-visible-only-by-get"],
    ]);
    for (const text of [
      String(secret),
      `${secret}`,
      JSON.stringify(secret),
      JSON.stringify({ secret }),
      inspect(secret, { showHidden: true, depth: Infinity }),
      inspect(secret.fields, { showHidden: true }),
      JSON.stringify(secret.fields),
      String(secret.fields),
    ]) {
      assert.ok(!text.includes("sk-the-value") && !text.includes("org-visible"), text);
    }
    assert.equal(String(secret), "Secret(id=c-42, type=openai, value=[REDACTED])");
    assert.equal(secret.reveal(), "sk-the-value");
    assert.equal(secret.field("org"), "org-visible-only-by-get");
    assert.deepEqual([...secret.fields.keys()], ["api_key", "org"]);
    assert.equal(secret.fields.size, 2);
    assert.deepEqual(secret.fields.toObject(), { api_key: "sk-the-value", org: "org-visible-only-by-get" });
    assert.deepEqual(Object.keys(secret), ["credential", "fields"], "the value is in no own property");
  });
});

describe("keyProvider cache", () => {
  function counting(values: string[]) {
    let calls = 0;
    const access = async () => {
      const v = values[Math.min(calls, values.length - 1)]!;
      calls += 1;
      await new Promise((r) => setTimeout(r, 10));
      return new Secret(credential(), v, []);
    };
    return { access, calls: () => calls };
  }

  test("concurrent callers share one fetch; refresh() drops the cache", async () => {
    const fake = counting(["one", "two"]);
    const provider = createKeyProvider(fake.access, { type: "openai" });
    assert.deepEqual(await Promise.all([provider(), provider(), provider()]), ["one", "one", "one"]);
    assert.equal(await provider(), "one");
    assert.equal(fake.calls(), 1);
    provider.refresh();
    assert.equal(await provider(), "two");
    assert.equal(fake.calls(), 2);
    assert.equal(provider.ttl, 60, "the default ttl");
  });

  test("a fetch in flight during refresh() does not fill the cache", async () => {
    const fake = counting(["old", "new"]);
    const provider = createKeyProvider(fake.access, { type: "openai" });
    const pending = provider();
    provider.refresh();
    assert.equal(await pending, "old");
    assert.equal(await provider(), "new");
  });

  test("a failure is not cached", async () => {
    let fail = true;
    const provider = createKeyProvider(async () => {
      if (fail) throw new Unavailable("down");
      return new Secret(credential(), "ok", []);
    }, { credentialId: "c-1", ttl: 5 });
    await assert.rejects(provider(), Unavailable);
    fail = false;
    assert.equal(await provider(), "ok");
  });

  test("ttl 0 fetches on every call; bad options are refused", async () => {
    const fake = counting(["a", "b", "c"]);
    const provider = createKeyProvider(fake.access, { type: "openai", ttl: 0 });
    assert.equal(await provider(), "a");
    assert.equal(await provider(), "b");
    assert.throws(() => createKeyProvider(fake.access, {}), TypeError);
    assert.throws(() => createKeyProvider(fake.access, { type: "openai", credentialId: "x" }), TypeError);
    assert.throws(() => createKeyProvider(fake.access, { type: "openai", ttl: -1 }), TypeError);
  });

  test("prints without the value", async () => {
    const fake = counting(["sk-cached-value"]);
    const provider = createKeyProvider(fake.access, { type: "openai" });
    await provider();
    for (const text of [String(provider), inspect(provider, { showHidden: true }), JSON.stringify({ provider })]) {
      assert.ok(!text.includes("sk-cached-value"), text);
    }
    assert.equal(String(provider), "KeyProvider(type=openai, ttl=60s, value=[REDACTED])");
  });
});

describe("Client options", () => {
  test("a missing token is an error at construction", () => {
    const saved = process.env.CREDVAULT_TOKEN;
    delete process.env.CREDVAULT_TOKEN;
    try {
      assert.throws(() => new Client(), /no token/);
    } finally {
      if (saved !== undefined) process.env.CREDVAULT_TOKEN = saved;
    }
  });

  test("the environment supplies target, token and workspace", async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { CREDVAULT_TOKEN: "t", CREDVAULT_TARGET: "127.0.0.1:1", CREDVAULT_WORKSPACE: "acme" });
    try {
      const client = new Client();
      assert.equal(client.target, "127.0.0.1:1");
      assert.equal(client.workspace, "acme");
      await client.close();
    } finally {
      process.env = saved;
    }
  });

  test("bad options are refused without echoing the token", () => {
    assert.throws(() => new Client({ token: "t", target: "no-port" }), /host:port/);
    assert.throws(() => new Client({ token: "t", timeout: 0 }), /timeout/);
    assert.throws(() => new Client({ token: "t", maxRetries: -1 }), /maxRetries/);
    assert.throws(
      () => new Client({ token: "secret token\n" }),
      (e: Error) => e instanceof TypeError && !e.message.includes("secret token"),
    );
    assert.throws(() => new Client({ token: "t", target: "vault:443", tls: "/nonexistent/ca.pem" }), /ENOENT/);
  });

  test("retries UNAVAILABLE maxRetries times, with bounded backoff", async () => {
    // A port nothing listens on: connection refused on every attempt.
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const client = new Client({ token: "t", target: `127.0.0.1:${port}`, maxRetries: 4 });
    const err = await client.credentials.get("x").catch((e) => e);
    assert.ok(err instanceof Unavailable, String(err));
    assert.equal(err.attempts, 5);

    const none = new Client({ token: "t", target: `127.0.0.1:${port}`, maxRetries: 0 });
    assert.equal(((await none.credentials.get("x").catch((e) => e)) as VaultError).attempts, 1);

    await client.close();
    const closed = await client.credentials.get("x").catch((e) => e);
    assert.ok(closed instanceof Cancelled, "calls after close() fail");
    await none.close();
  });

  test("the backoff doubles to its cap, never under half of it", () => {
    [0.1, 0.2, 0.4, 0.8, 1.6, 2, 2].forEach((ceiling, i) => {
      const waits = Array.from({ length: 200 }, () => backoffSeconds(i + 1));
      assert.ok(Math.min(...waits) >= ceiling / 2 && Math.max(...waits) <= ceiling, `retry ${i + 1}`);
    });
  });

  test("an aborted signal cancels the retries", async () => {
    const client = new Client({ token: "t", target: "127.0.0.1:1", maxRetries: 100 });
    const err = await client.credentials.get("x", { signal: AbortSignal.timeout(300) }).catch((e) => e);
    assert.ok(err instanceof Cancelled || err instanceof DeadlineExceeded, String(err));
    await client.close();
  });
});
