/** Pagination: 250 credentials in a workspace of their own, listed in small pages. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Credential } from "../src/index.js";
import { stack } from "./stack.js";

const TOTAL = 250;
const PAGE_SIZE = 7;

describe("pagination", () => {
  test(`${TOTAL} credentials, each seen once across pages of ${PAGE_SIZE}`, async () => {
    const s = await stack();
    const { client } = await s.workspace("pages");
    try {
      // 150 openai and 100 anthropic credentials, 10 creates at a time.
      const created: Credential[] = [];
      const indexes = Array.from({ length: TOTAL }, (_, i) => i);
      for (let i = 0; i < TOTAL; i += 10) {
        created.push(
          ...(await Promise.all(
            indexes.slice(i, i + 10).map((n) =>
              client.credentials.create({
                name: `key ${String(n).padStart(3, "0")}`,
                type: n < 150 ? "openai" : "anthropic",
                value: `sk-test-${String(n).padStart(3, "0")}-0123456789abcdef`,
              }),
            ),
          )),
        );
      }
      const expected = new Set(created.map((c) => c.id));
      assert.equal(expected.size, TOTAL);

      // Every credential once, through the transparent iterator.
      const seen: string[] = [];
      for await (const c of client.credentials.list({ pageSize: PAGE_SIZE })) seen.push(c.id);
      assert.equal(seen.length, TOTAL, "no credential twice, none missing");
      assert.deepEqual(new Set(seen), expected);

      // Newest first.
      const times = (await client.credentials.list({ pageSize: 100 }).toArray()).map((c) => c.createdAt!.getTime());
      assert.deepEqual(times, [...times].sort((a, b) => b - a));

      // The pages themselves.
      let pages = 0;
      let last: string | undefined;
      for await (const page of client.credentials.list({ pageSize: PAGE_SIZE }).pages) {
        pages += 1;
        assert.ok(page.credentials.length <= PAGE_SIZE);
        last = page.nextPageToken;
      }
      assert.equal(pages, Math.ceil(TOTAL / PAGE_SIZE));
      assert.equal(last, "");

      // A filter holds across pages.
      const anthropic: string[] = [];
      for await (const c of client.credentials.list({ type: "anthropic", pageSize: 9 })) {
        assert.equal(c.type, "anthropic");
        anthropic.push(c.id);
      }
      assert.equal(new Set(anthropic).size, 100);

      // Iterating again starts again from the first page.
      const list = client.credentials.list({ type: "openai", pageSize: 50 });
      assert.equal((await list.toArray()).length, 150);
      assert.equal((await list.toArray()).length, 150);
    } finally {
      await client.close();
    }
  });
});
