/**
 * A secret never prints: not through toString, JSON.stringify, util.inspect, console output, nor
 * an error's message or inspection, whatever object holds it.
 */
import assert from "node:assert/strict";
import { Console } from "node:console";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import { format, inspect } from "node:util";
import { InvalidArgument, NotFound } from "../src/index.js";
import { marker } from "./helpers.js";
import { stack } from "./stack.js";

/** Everything a console writes, for the duration of `fn`. */
async function consoleOutput(fn: (c: Console) => void | Promise<void>): Promise<string> {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  await fn(new Console({ stdout: sink, stderr: sink }));
  return chunks.join("");
}

/** Every way the object can be printed or serialized. */
function renderings(o: unknown): string[] {
  return [
    String(o),
    `${o as string}`,
    JSON.stringify(o) ?? "",
    JSON.stringify({ nested: o, list: [o] }),
    inspect(o),
    inspect(o, { depth: Infinity, showHidden: true, getters: true }),
    inspect({ deep: { deeper: { o } } }, { depth: Infinity }),
    format("%s %o %O %j", o, o, o, o),
    Object.prototype.toString.call(o),
    JSON.stringify(Object.entries(o as object)),
    JSON.stringify({ ...(o as object) }),
  ];
}

describe("secrets", () => {
  test("a Secret, its fields and a key provider never print the value", async () => {
    const s = await stack();
    const { client } = await s.workspace("secrets");
    const value = marker("sk-proj-marker");
    const password = marker("pw");
    try {
      const created = await client.credentials.create({ name: "Marked", type: "openai", value, makeDefault: true });
      const smtp = await client.credentials.create({
        name: "Mail",
        type: "smtp",
        value: { host: "smtp.example.com", port: "587", username: "mailer", password },
      });
      const secret = await client.access({ type: "openai" });
      const fields = (await client.access({ id: smtp.id })).fields;
      const provider = client.keyProvider("openai");
      assert.equal(await provider(), value, "the provider returns the value");
      assert.equal(secret.reveal(), value, "reveal() returns the value");
      assert.equal(fields.get("password"), password);

      for (const o of [secret, fields, provider, created, secret.credential, client]) {
        for (const text of renderings(o)) {
          assert.ok(!text.includes(value) && !text.includes(password), `printed a secret: ${text}`);
        }
      }
      assert.match(String(secret), /\[REDACTED\]/);
      assert.ok(String(secret).includes(created.id) && String(secret).includes("openai"), String(secret));
      assert.deepEqual(JSON.parse(JSON.stringify(secret)), { id: created.id, type: "openai", value: "[REDACTED]" });
      assert.match(inspect(fields), /password/, "field names are shown");

      const out = await consoleOutput((c) => {
        c.log(secret);
        c.log("%s and %o", secret, fields);
        c.error({ secret, fields, provider });
        c.dir(secret, { depth: 10, showHidden: true });
        c.table([secret]);
        c.info(`${secret}`);
      });
      assert.ok(out.includes("[REDACTED]"), out);
      assert.ok(!out.includes(value) && !out.includes(password), `console printed a secret: ${out}`);
    } finally {
      await client.close();
    }
  });

  test("errors of calls that carried a secret do not hold it", async () => {
    const s = await stack();
    const { client } = await s.workspace("secrets-errors");
    const value = marker("postgresql://app:pw-marker");
    const key = marker("sk-proj-errmarker");
    try {
      // A value the server refuses (two raw '@'), and an update of a credential that is not there.
      const refused = await client.credentials
        .create({ name: "Refused", type: "postgresql", value: `${value}@db@example.com:5432/app` })
        .catch((e) => e);
      assert.ok(refused instanceof InvalidArgument, String(refused));
      const missing = await client.credentials
        .update("00000000-0000-4000-8000-000000000000", { value: key })
        .catch((e) => e);
      assert.ok(missing instanceof NotFound, String(missing));

      for (const err of [refused, missing]) {
        const texts = [
          err.message,
          String(err),
          err.stack ?? "",
          JSON.stringify(err),
          inspect(err, { depth: Infinity, showHidden: true }),
          JSON.stringify(err.details),
          JSON.stringify(err instanceof InvalidArgument ? err.fieldViolations : []),
          await consoleOutput((c) => c.error(err)),
        ];
        for (const text of texts) {
          assert.ok(!text.includes("pw-marker") && !text.includes(key), `an error printed a secret: ${text}`);
        }
      }
    } finally {
      await client.close();
    }
  });
});
