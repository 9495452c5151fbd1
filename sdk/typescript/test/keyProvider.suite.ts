/** keyProvider: one access per ttl (counted in the audit log), refresh(), and rotation. */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { countAccesses } from "./helpers.js";
import { stack } from "./stack.js";

const OLD = "sk-proj-old-0123456789abcdefghij";
const NEW = "sk-proj-new-0123456789abcdefghij";

describe("keyProvider", () => {
  test("caches within ttl, shares one fetch, and refresh() fetches again", async () => {
    const s = await stack();
    const { client } = await s.workspace("keys");
    try {
      const created = await client.credentials.create({ name: "Rotating", type: "openai", value: OLD, makeDefault: true });
      const accesses = () => countAccesses(client, created.id);
      const provider = client.keyProvider("openai", { ttl: 60 });
      assert.equal(provider.ttl, 60);

      // Concurrent first callers share one fetch; later callers within the ttl fetch nothing.
      const first = await Promise.all([provider(), provider(), provider(), provider(), provider()]);
      assert.deepEqual(first, Array(5).fill(OLD));
      assert.equal(await provider(), OLD);
      assert.equal(await provider(), OLD);
      assert.equal(await accesses(), 1, "seven calls within the ttl made one access");

      // A rotation is seen only after refresh() (or the ttl).
      await client.credentials.update(created.id, { value: NEW });
      assert.equal(await provider(), OLD, "the cached value until refresh");
      assert.equal(await accesses(), 1);
      provider.refresh();
      assert.equal(await provider(), NEW);
      assert.equal(await provider(), NEW);
      assert.equal(await accesses(), 2, "refresh() made one more access");
    } finally {
      await client.close();
    }
  });

  test("by credential id, and a short ttl expires", async () => {
    const s = await stack();
    const { client } = await s.workspace("keys-ttl");
    try {
      const created = await client.credentials.create({ name: "Short lived", type: "anthropic", value: OLD });
      const provider = client.keyProvider({ credentialId: created.id, ttl: 0.3 });
      assert.equal(await provider(), OLD);
      assert.equal(await provider(), OLD);
      assert.equal(await countAccesses(client, created.id), 1);
      await sleep(400);
      assert.equal(await provider(), OLD);
      assert.equal(await countAccesses(client, created.id), 2, "fetched again after the ttl");
    } finally {
      await client.close();
    }
  });

  test("the OpenAI SDK takes the provider as its apiKey and sends the current key", async () => {
    // OpenAI's documented chat completions endpoint, answering one canned completion and
    // recording the Authorization header each request carried.
    const seen: string[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        seen.push(req.headers.authorization ?? "");
        const { model } = JSON.parse(body) as { model: string };
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            id: "chatcmpl-1",
            object: "chat.completion",
            created: 1,
            model,
            choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: "pong" } }],
            usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const s = await stack();
    const { client } = await s.workspace("keys-openai");
    try {
      const created = await client.credentials.create({ name: "OpenAI", type: "openai", value: OLD, makeDefault: true });
      const provider = client.keyProvider("openai", { ttl: 600 });
      const { port } = server.address() as AddressInfo;
      const openai = new OpenAI({ apiKey: provider, baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
      const ask = async () =>
        (await openai.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "ping" }] }))
          .choices[0]?.message.content;

      assert.equal(await ask(), "pong");
      await client.credentials.update(created.id, { value: NEW });
      provider.refresh(); // after a rotation: the next request carries the new key
      assert.equal(await ask(), "pong");
      assert.deepEqual(seen, [`Bearer ${OLD}`, `Bearer ${NEW}`]);
    } finally {
      await client.close();
      server.close();
    }
  });
});
