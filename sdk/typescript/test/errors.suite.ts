/** Each error class, from the real server's answers. */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";
import {
  AlreadyExists,
  DataLoss,
  DeadlineExceeded,
  EtagMismatch,
  FailedPrecondition,
  InvalidArgument,
  NotFound,
  OutOfRange,
  PermissionDenied,
  ResourceExhausted,
  Unauthenticated,
  Unavailable,
  VaultError,
} from "../src/index.js";
import { stack } from "./stack.js";

const KEY = "sk-proj-0123456789abcdefghijklmnop";

describe("errors", () => {
  test("InvalidArgument names the field in fieldViolations", async () => {
    const s = await stack();
    const { client } = await s.workspace("errors-invalid");
    try {
      const err = await client.credentials.create({ name: "x".repeat(129), type: "openai", value: KEY }).catch((e) => e);
      assert.ok(err instanceof InvalidArgument, String(err));
      assert.ok(err instanceof VaultError);
      assert.equal(err.code, "INVALID_ARGUMENT");
      assert.equal(err.name, "InvalidArgument");
      assert.ok(err.fieldViolations.some((v) => v.field === "name"), JSON.stringify(err.fieldViolations));
      assert.ok(err.fieldViolations.every((v) => v.description.length > 0));
      assert.equal(err.attempts, 1, "never retried");

      const mismatch = await client.credentials
        .create({ name: "wrong category", category: "speech", type: "openai", value: KEY })
        .catch((e) => e);
      assert.ok(mismatch instanceof InvalidArgument, String(mismatch));
      assert.ok(mismatch.fieldViolations.some((v) => v.field === "category"), JSON.stringify(mismatch.fieldViolations));

      const badValue = await client.credentials
        .create({ name: "bad bedrock", type: "bedrock", value: { access_key_id: "AKIAIOSFODNN7EXAMPLE", secret_access_key: "s3cr3t-value-0123456789", region: "Not A Region" } })
        .catch((e) => e);
      assert.ok(badValue instanceof InvalidArgument, String(badValue));
      assert.ok(badValue.fieldViolations.some((v) => v.field === "value.fields[region]"), JSON.stringify(badValue.fieldViolations));
    } finally {
      await client.close();
    }
  });

  test("NotFound for an unknown id and for another workspace's id", async () => {
    const s = await stack();
    const mine = await s.workspace("errors-mine");
    const theirs = await s.workspace("errors-theirs");
    try {
      const unknown = await mine.client.credentials.get(randomUUID()).catch((e) => e);
      assert.ok(unknown instanceof NotFound, String(unknown));
      assert.equal(unknown.code, "NOT_FOUND");

      const other = await theirs.client.credentials.create({ name: "theirs", type: "openai", value: KEY });
      const foreign = await mine.client.credentials.get(other.id).catch((e) => e);
      assert.ok(foreign instanceof NotFound, String(foreign));
      assert.equal(foreign.message, unknown.message.replace(/[0-9a-f-]{36}/, other.id), "the same answer as a missing id");
      await assert.rejects(mine.client.access({ id: other.id }), NotFound);
      await assert.rejects(mine.client.credentials.delete(other.id), NotFound);
    } finally {
      await mine.client.close();
      await theirs.client.close();
    }
  });

  test("AlreadyExists for a name taken", async () => {
    const s = await stack();
    const { client } = await s.workspace("errors-exists");
    try {
      await client.credentials.create({ name: "Taken", type: "openai", value: KEY });
      const err = await client.credentials.create({ name: "Taken", type: "anthropic", value: KEY }).catch((e) => e);
      assert.ok(err instanceof AlreadyExists, String(err));
      assert.equal(err.code, "ALREADY_EXISTS");
    } finally {
      await client.close();
    }
  });

  test("EtagMismatch for a stale etag", async () => {
    const s = await stack();
    const { client } = await s.workspace("errors-etag");
    try {
      const created = await client.credentials.create({ name: "Versioned", type: "openai", value: KEY });
      const updated = await client.credentials.update(created.id, { description: "v2", etag: created.etag });
      assert.notEqual(updated.etag, created.etag);
      const stale = await client.credentials.update(created.id, { description: "v3", etag: created.etag }).catch((e) => e);
      assert.ok(stale instanceof EtagMismatch, String(stale));
      assert.equal(stale.code, "ABORTED");
      assert.equal(stale.attempts, 1, "ABORTED is not retried");
      await assert.rejects(client.credentials.delete(created.id, { etag: created.etag }), EtagMismatch);
      assert.equal((await client.credentials.get(created.id)).description, "v2", "nothing changed");
      await client.credentials.delete(created.id, { etag: updated.etag });
    } finally {
      await client.close();
    }
  });

  test("PermissionDenied with a read-only token", async () => {
    const s = await stack();
    const writer = await s.workspace("errors-perm");
    const reader = s.client({ token: await s.token([writer.workspace], ["read"]) });
    try {
      const created = await writer.client.credentials.create({ name: "Readable", type: "openai", value: KEY });
      assert.equal((await reader.credentials.get(created.id)).id, created.id, "read works");
      const err = await reader.credentials.create({ name: "Not allowed", type: "openai", value: KEY }).catch((e) => e);
      assert.ok(err instanceof PermissionDenied, String(err));
      assert.equal(err.code, "PERMISSION_DENIED");
      await assert.rejects(reader.access({ id: created.id }), PermissionDenied, "access needs the access permission");
    } finally {
      await writer.client.close();
      await reader.close();
    }
  });

  test("Unauthenticated with a bad token", async () => {
    const s = await stack();
    const client = s.client({ token: "not-a-valid-jwt" });
    try {
      const err = await client.credentials.list().toArray().catch((e) => e);
      assert.ok(err instanceof Unauthenticated, String(err));
      assert.equal(err.code, "UNAUTHENTICATED");
    } finally {
      await client.close();
    }
  });

  test("FailedPrecondition: access by type with no default", async () => {
    const s = await stack();
    const { client } = await s.workspace("errors-precondition");
    try {
      await client.credentials.create({ name: "Not the default", type: "mistral", value: KEY });
      const err = await client.access({ type: "mistral" }).catch((e) => e);
      assert.ok(err instanceof FailedPrecondition, String(err));
      assert.equal(err.code, "FAILED_PRECONDITION");
      const schema = await client.credentials
        .getSchema((await client.credentials.list().toArray())[0]!.id)
        .catch((e) => e);
      assert.ok(schema instanceof FailedPrecondition, "no schema discovered: " + String(schema));
    } finally {
      await client.close();
    }
  });

  test("ResourceExhausted past the probe rate limit, with the server's retry delay", async () => {
    const s = await stack();
    const workspace = `errors-burst-${randomUUID().slice(0, 8)}`;
    // A principal of its own: the probe rate limit (60 a minute) is per token subject.
    const token = await s.token([workspace], ["read", "write"], `burst-${workspace}`);
    const client = s.client({ token });
    try {
      let err: unknown;
      for (let i = 0; i < 100 && !err; i++) {
        err = await client.credentials
          .test({ type: "postgresql", value: "postgresql://u:p@127.0.0.1:9/db" })
          .then(() => undefined, (e) => e);
      }
      assert.ok(err instanceof ResourceExhausted, String(err));
      assert.ok(err.retryAfter !== null && err.retryAfter > 0, `retryAfter ${err.retryAfter}`);
    } finally {
      await client.close();
    }
  });

  test("DataLoss when a stored row was altered; DeadlineExceeded; OutOfRange", async () => {
    const s = await stack();
    const { client } = await s.workspace("errors-misc");
    try {
      const created = await client.credentials.create({ name: "Tampered", type: "openai", value: KEY });
      await s.tamper(created.id);
      const lost = await client.access({ id: created.id }).catch((e) => e);
      assert.ok(lost instanceof DataLoss, String(lost));
      assert.ok(lost.message.includes("integrity check") && !lost.message.includes(KEY));

      const late = await client.credentials.get(created.id, { timeout: 0.000001 }).catch((e) => e);
      assert.ok(late instanceof DeadlineExceeded, String(late));

      const big = await client.credentials
        .create({ name: "Big", type: "openai", value: "k".repeat(300 * 1024) })
        .catch((e) => e);
      assert.ok(big instanceof OutOfRange, String(big));
    } finally {
      await client.close();
    }
  });

  test("Unavailable when the API is stopped, after the retries", async () => {
    const s = await stack();
    const client = s.client({ maxRetries: 2 });
    try {
      await client.credentials.types(); // a connection is open before the API goes away
      await s.stopApi();
      try {
        const err = await client.credentials.list().toArray().catch((e) => e);
        assert.ok(err instanceof Unavailable, String(err));
        assert.equal(err.code, "UNAVAILABLE");
        assert.equal(err.attempts, 3, "one attempt and maxRetries retries");
      } finally {
        await s.startApi();
      }
      assert.ok((await client.credentials.types()).length > 0, "the same client works again");
    } finally {
      await client.close();
    }
  });
});
