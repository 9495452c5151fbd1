/**
 * The product document's walk-through as written (its JavaScript example, and its Python examples
 * in JavaScript style), in a workspace of its own so the document's names are used as they are.
 * The data warehouse credential's value is the harness's analytics database, which the API's
 * probes can reach, so validation and schema discovery run for real.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Credential, FailedPrecondition, Schema, ValidationResult } from "../src/index.js";
import { stack } from "./stack.js";

describe("the product document's walk-through", () => {
  test("create, setDefault, validate, discoverSchema, get, update, delete", async () => {
    const s = await stack();
    const { client } = await s.workspace("walkthrough");
    try {
      // JavaScript SDK, as the document writes it.
      const credential = await client.credentials.create({
        name: "OpenAI Production",
        category: "llm",
        type: "openai",
        value: "sk-proj-your-openai-api-key",
        description: "Production OpenAI API key",
      });
      assert.ok(credential instanceof Credential);
      assert.equal(credential.name, "OpenAI Production");
      assert.equal(credential.category, "llm");
      assert.equal(credential.type, "openai");
      assert.equal(credential.description, "Production OpenAI API key");
      assert.equal(credential.isDefault, false);
      assert.equal(credential.isValid, null, "never validated");
      assert.equal(credential.validation, null);
      assert.equal(credential.hasSchema, false);
      assert.equal(credential.schemaUpdatedAt, null);
      assert.equal(credential.deletedAt, null);
      assert.ok(credential.createdAt instanceof Date && credential.updatedAt instanceof Date);
      assert.ok(credential.etag !== "");
      assert.ok(!credential.maskedContent.includes("your-openai-api"), credential.maskedContent);
      assert.equal(credential.data, credential, "data is the object itself");

      // The document's other three credentials.
      const dbCredential = await client.credentials.create({
        name: "Analytics Database",
        category: "data_warehouse",
        type: "postgresql",
        value: s.info.analytics_url,
        description: "Read-only analytics database",
      });
      const speechCredential = await client.credentials.create({
        name: "ElevenLabs Production",
        category: "speech",
        type: "elevenlabs",
        value: "your-elevenlabs-api-key",
        description: "ElevenLabs TTS API key",
      });
      const toolCredential = await client.credentials.create({
        name: "Slack Bot Token",
        category: "tools",
        type: "api_key",
        value: "xoxb-your-slack-bot-token",
        description: "Slack bot for notifications",
      });
      assert.equal(dbCredential.category, "data_warehouse");
      assert.equal(speechCredential.type, "elevenlabs");
      assert.equal(toolCredential.category, "tools");
      assert.ok(!dbCredential.maskedContent.includes("@"), "no user or password in the preview");

      // Default credentials.
      await assert.rejects(client.access({ type: "openai" }), FailedPrecondition, "no default yet");
      const byDefault = await client.credentials.setDefault(credential.id);
      assert.equal(byDefault.isDefault, true);
      assert.equal((await client.access({ type: "openai" })).reveal(), "sk-proj-your-openai-api-key");

      // Connection validation: `result.data.isValid`, as the document reads it.
      const result = await client.credentials.validate(dbCredential.id);
      assert.ok(result instanceof ValidationResult);
      assert.equal(result.data.isValid, true, `${result.outcome}: ${result.message}`);
      assert.equal(result.outcome, "valid");
      assert.ok(result.checkedAt instanceof Date);
      assert.ok(result.latencyMs >= 0);
      assert.equal(result.credential?.isValid, true);
      assert.equal(result.credential?.validation?.state, "valid");
      const check = await client.credentials.checkConnection(dbCredential.id);
      assert.equal(check.isValid, true);

      // Schema discovery, then get -> hasSchema / schemaUpdatedAt.
      const discovery = await client.credentials.discoverSchema(dbCredential.id);
      assert.ok(discovery.tableCount > 0, "the analytics database has tables");
      assert.equal(discovery.truncated, false);
      assert.equal(discovery.credential?.hasSchema, true);
      const fetched = await client.credentials.get(dbCredential.id);
      assert.equal(fetched.data.hasSchema, true);
      assert.ok(fetched.data.schemaUpdatedAt instanceof Date, "schemaUpdatedAt is a Date");
      assert.equal(fetched.isValid, true);

      const schema = await client.credentials.getSchema(dbCredential.id);
      assert.ok(schema instanceof Schema);
      assert.ok(schema.ddl.length > 0);
      assert.ok(schema.discoveredAt instanceof Date);
      const tables = schema.namespaces.flatMap((ns) => ns.tables);
      assert.equal(tables.length, discovery.tableCount);
      const column = tables[0]?.columns[0];
      assert.ok(column, "tables have columns");
      assert.equal(typeof column.dataType, "string");
      assert.equal(typeof column.nullable, "boolean");
      assert.ok(column.position >= 1);
      assert.ok(["table", "view"].includes(tables[0]!.kind));

      // Updating: the new value is stored, the old one is gone.
      const updated = await client.credentials.update(credential.id, {
        value: "new-api-key-value",
        name: "Updated Name",
      });
      assert.equal(updated.name, "Updated Name");
      assert.equal(updated.description, "Production OpenAI API key", "fields not given stay");
      assert.notEqual(updated.etag, byDefault.etag);
      assert.equal((await client.access({ id: credential.id })).reveal(), "new-api-key-value");

      // Deleting: soft for metadata, the secret destroyed, no longer the default.
      const deleted = await client.credentials.delete(credential.id);
      assert.ok(deleted.deletedAt instanceof Date);
      assert.equal(deleted.isDefault, false);
      assert.equal(deleted.maskedContent, "");
      assert.equal((await client.credentials.get(credential.id)).name, "Updated Name", "metadata stays");
      await assert.rejects(client.access({ type: "openai" }), FailedPrecondition);

      const live = await client.credentials.list().toArray();
      assert.deepEqual(
        live.map((c) => c.name).sort(),
        ["Analytics Database", "ElevenLabs Production", "Slack Bot Token"],
      );
      const all = await client.credentials.list({ showDeleted: true }).toArray();
      assert.equal(all.length, 4);
      const warehouses = await client.credentials.list({ category: "data_warehouse" }).toArray();
      assert.deepEqual(warehouses.map((c) => c.id), [dbCredential.id]);

      // JSON of a result is its fields (dates as ISO strings).
      const json = JSON.parse(JSON.stringify(fetched)) as Record<string, unknown>;
      assert.equal(json.id, fetched.id);
      assert.equal(json.hasSchema, true);
      assert.equal(json.schemaUpdatedAt, fetched.schemaUpdatedAt?.toISOString());
    } finally {
      await client.close();
    }
  });

  test("the type catalogue", async () => {
    const s = await stack();
    const client = s.client();
    try {
      const types = await client.credentials.types();
      const openai = types.find((t) => t.type === "openai");
      assert.ok(openai, "openai is in the catalogue");
      assert.equal(openai.category, "llm");
      assert.equal(openai.data, openai);
      assert.ok(openai.fields.some((f) => f.name === openai.primaryField && f.secret));
      const warehouses = await client.credentials.types({ category: "data_warehouse" });
      assert.ok(warehouses.length > 0);
      assert.ok(warehouses.every((t) => t.category === "data_warehouse"));
      assert.equal(warehouses.find((t) => t.type === "postgresql")?.supportsSchemaDiscovery, true);
      const bedrock = types.find((t) => t.type === "bedrock");
      assert.equal(bedrock?.primarySecretField, "secret_access_key");
    } finally {
      await client.close();
    }
  });

  test("a structured value (bedrock) and test()", async () => {
    const s = await stack();
    const { client } = await s.workspace("structured");
    try {
      const bedrock = await client.credentials.create({
        name: "Bedrock",
        type: "bedrock",
        value: {
          access_key_id: "AKIAIOSFODNN7EXAMPLE",
          secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
          region: "us-east-1",
        },
        makeDefault: true,
      });
      assert.equal(bedrock.category, "llm");
      assert.equal(bedrock.isDefault, true);
      const secret = await client.access({ type: "bedrock" });
      assert.equal(secret.reveal(), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "the primary secret");
      assert.equal(secret.field("access_key_id"), "AKIAIOSFODNN7EXAMPLE");
      assert.equal(secret.fields.get("region"), "us-east-1");
      assert.equal(secret.field("session_token"), undefined);

      // A value that is not stored, against the analytics database.
      const tested = await client.credentials.test({ type: "postgresql", value: s.info.analytics_url });
      assert.equal(tested.isValid, true, `${tested.outcome}: ${tested.message}`);
      assert.equal(tested.credential, null);
      assert.equal((await client.credentials.list().toArray()).length, 1, "test stores nothing");
    } finally {
      await client.close();
    }
  });
});
