/** The audit log through the SDK: a credential's lifecycle, newest first, paged, readable with `read`. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AuditEvent, AuditEventList } from "../src/index.js";
import { stack } from "./stack.js";

/** The harness's token subject: the actor of every event its tokens cause. */
const SUBJECT = "e2e-test";

describe("audit log", () => {
  test("create, update, access and delete are listed newest first, in pages of 2", async () => {
    const s = await stack();
    const { workspace, client } = await s.workspace("audit");
    const reader = s.client({ token: await s.token([workspace], ["read"]) });
    try {
      const created = await client.credentials.create({ name: "Audited", type: "openai", value: "sk-audit-0123456789abcdef" });
      await client.credentials.update(created.id, { description: "rotated", value: "sk-audit-9876543210fedcba" });
      assert.equal((await client.access({ id: created.id })).reveal(), "sk-audit-9876543210fedcba");
      await client.credentials.delete(created.id);

      const list = client.auditEvents.list({ credentialId: created.id, pageSize: 2 });
      assert.ok(list instanceof AuditEventList);
      const pages: AuditEvent[][] = [];
      for await (const page of list.pages) {
        assert.ok(page.events.length <= 2, `a page of ${page.events.length}`);
        pages.push([...page.events]);
      }
      assert.ok(pages.length >= 2, "four events in pages of two");
      const events = pages.flat();
      assert.deepEqual(
        events.map((e) => e.action),
        ["delete", "access", "update", "create"],
        "newest first",
      );
      for (const e of events) {
        assert.ok(e instanceof AuditEvent);
        assert.equal(e.actor, SUBJECT);
        assert.equal(e.outcome, "succeeded");
        assert.equal(e.statusCode, "OK");
        assert.equal(e.credentialId, created.id);
        assert.equal(e.workspaceId, workspace);
        assert.ok(e.id !== "" && e.requestId !== "");
        assert.ok(e.time instanceof Date);
      }
      const times = events.map((e) => e.time!.getTime());
      assert.deepEqual(times, [...times].sort((a, b) => b - a), "times descend");
      assert.equal(new Set(events.map((e) => e.id)).size, 4, "no event twice across pages");
      assert.equal(new Set(events.map((e) => e.requestId)).size, 4, "one request id per call");
      assert.ok(!JSON.stringify(events).includes("sk-audit"), "no event holds a value");

      // The iterator and toArray() give the same events; the workspace's log (no credentialId) holds them too.
      const ids = events.map((e) => e.id);
      const iterated: string[] = [];
      for await (const e of list) iterated.push(e.id);
      assert.deepEqual(iterated, ids);
      assert.deepEqual((await client.auditEvents.list({ pageSize: 2 }).toArray()).map((e) => e.id), ids);

      // The `read` permission is enough to list the log.
      const read = await reader.auditEvents.list({ credentialId: created.id, pageSize: 2 }).toArray();
      assert.deepEqual(read.map((e) => e.id), ids);
    } finally {
      await client.close();
      await reader.close();
    }
  });
});
