/** Retries: a call started while the API is down succeeds once it is back on the same port. */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";
import { stack } from "./stack.js";

describe("retries", () => {
  test("a call made while the API restarts succeeds", async () => {
    const s = await stack();
    const { client } = await s.workspace("retries", ["read", "write", "access"], { maxRetries: 40 });
    try {
      const created = await client.credentials.create({
        name: "Survivor",
        type: "openai",
        value: "sk-proj-0123456789abcdefghijklmnop",
      });
      await s.stopApi();
      let outcome: string | undefined;
      const call = client.credentials.get(created.id).then(
        (c) => {
          outcome = "resolved";
          return c;
        },
        (e: unknown) => {
          outcome = `rejected: ${String(e)}`;
          throw e;
        },
      );
      call.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
      await sleep(1_000);
      assert.equal(outcome, undefined, "the call is still retrying while the API is down");
      await s.startApi();
      const got = await call;
      assert.equal(got.id, created.id);
      assert.equal((await client.access({ id: created.id })).reveal(), "sk-proj-0123456789abcdefghijklmnop");
    } finally {
      await client.close();
    }
  });
});
