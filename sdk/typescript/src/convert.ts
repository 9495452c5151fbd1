/**
 * The one place that converts between the generated messages (src/gen) and the SDK's types.
 */
import { create } from "@bufbuild/protobuf";
import { type Duration, type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import * as pb from "./gen/credentials/v1/resources_pb.js";
import type { GetSchemaResponse } from "./gen/credentials/v1/credentials_service_pb.js";
import {
  AuditEvent,
  type AuditAction,
  type AuditOutcome,
  Credential,
  CredentialType,
  Schema,
  type CredentialValueInput,
  type TableKind,
  type ValidationOutcome,
  type ValidationState,
  ValidationResult,
} from "./types.js";

/** A Timestamp as a Date; null when unset. */
export function toDate(ts: Timestamp | undefined): Date | null {
  return ts ? timestampDate(ts) : null;
}

/** A Duration in milliseconds; 0 when unset. */
export function toMillis(d: Duration | undefined): number {
  return d ? Number(d.seconds) * 1000 + d.nanos / 1e6 : 0;
}

/** An enum value as the lower-case suffix of its name (VALIDATION_OUTCOME_EGRESS_DENIED -> egress_denied). */
function enumName<T extends string>(e: Record<number, string>, value: number): T {
  return (e[value] ?? "UNSPECIFIED").toLowerCase() as T;
}

/** A credential message as a {@link Credential}. */
export function toCredential(c: pb.Credential): Credential {
  const v = c.validation;
  const validated =
    v !== undefined &&
    (v.state !== pb.ValidationState.UNSPECIFIED ||
      v.outcome !== pb.ValidationOutcome.UNSPECIFIED ||
      v.checkedAt !== undefined);
  return new Credential({
    id: c.id,
    workspaceId: c.workspaceId,
    name: c.name,
    category: c.category,
    type: c.type,
    description: c.description,
    maskedContent: c.maskedContent,
    isDefault: c.isDefault,
    isValid:
      v?.state === pb.ValidationState.VALID ? true : v?.state === pb.ValidationState.INVALID ? false : null,
    validation: validated
      ? {
          state: enumName<ValidationState>(pb.ValidationState, v.state),
          outcome: enumName<ValidationOutcome>(pb.ValidationOutcome, v.outcome),
          message: v.message,
          checkedAt: toDate(v.checkedAt),
        }
      : null,
    hasSchema: c.hasSchema,
    schemaUpdatedAt: toDate(c.schemaUpdatedAt),
    createdAt: toDate(c.createdAt),
    updatedAt: toDate(c.updatedAt),
    deletedAt: toDate(c.deletedAt),
    etag: c.etag,
  });
}

/** A credential message that the API promises to send; refuses a response without it. */
export function requireCredential(c: pb.Credential | undefined): Credential {
  if (!c) throw new TypeError("credvault: the server's response has no credential");
  return toCredential(c);
}

/** A probe result as a {@link ValidationResult}. */
export function toValidationResult(r: pb.ValidationResult | undefined, credential: Credential | null): ValidationResult {
  const outcome = enumName<ValidationOutcome>(pb.ValidationOutcome, r?.outcome ?? 0);
  return new ValidationResult({
    isValid: outcome === "valid",
    outcome,
    message: r?.message ?? "",
    latencyMs: toMillis(r?.latency),
    checkedAt: toDate(r?.checkedAt),
    credential,
  });
}

/** A stored schema as a {@link Schema}. */
export function toSchema(r: GetSchemaResponse): Schema {
  return new Schema({
    namespaces: (r.schema?.namespaces ?? []).map((ns) => ({
      name: ns.name,
      tables: ns.tables.map((t) => ({
        name: t.name,
        kind: enumName<TableKind>(pb.TableKind, t.kind),
        description: t.description,
        columns: t.columns.map((col) => ({
          name: col.name,
          dataType: col.dataType,
          nullable: col.nullable,
          defaultValue: col.defaultValue ?? null,
          description: col.description,
          position: col.position,
        })),
        primaryKey: [...t.primaryKey],
      })),
    })),
    ddl: r.ddl,
    discoveredAt: toDate(r.discoveredAt),
    truncated: r.schema?.truncated ?? false,
  });
}

/** An audit log entry as an {@link AuditEvent}. */
export function toAuditEvent(e: pb.AuditEvent): AuditEvent {
  return new AuditEvent({
    id: e.id,
    workspaceId: e.workspaceId,
    credentialId: e.credentialId,
    actor: e.actor,
    action: enumName<AuditAction>(pb.AuditAction, e.action),
    outcome: enumName<AuditOutcome>(pb.AuditOutcome, e.outcome),
    statusCode: e.statusCode,
    requestId: e.requestId,
    time: toDate(e.time),
  });
}

/** A catalogue entry as a {@link CredentialType}. */
export function toCredentialType(t: pb.CredentialType): CredentialType {
  return new CredentialType({
    type: t.type,
    category: t.category,
    displayName: t.displayName,
    description: t.description,
    productName: t.productName,
    primaryField: t.primaryField,
    primarySecretField: t.primarySecretField,
    supportsValidation: t.supportsValidation,
    supportsSchemaDiscovery: t.supportsSchemaDiscovery,
    fields: t.fields.map((f) => ({
      name: f.name,
      description: f.description,
      secret: f.secret,
      required: f.required,
      allowedValues: [...f.allowedValues],
      productName: f.productName,
    })),
  });
}

/**
 * A value as the wire's CredentialValue. Checked here because JavaScript callers are not held to
 * the types; the messages name the shape, never the value.
 */
export function toCredentialValue(value: CredentialValueInput): pb.CredentialValue {
  if (typeof value === "string") {
    return create(pb.CredentialValueSchema, { kind: { case: "secret", value } });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TypeError("credvault: value must be a string or an object of field name -> string");
  }
  const values: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) {
    if (typeof v !== "string") {
      throw new TypeError(`credvault: value field ${JSON.stringify(name)} must be a string`);
    }
    values[name] = v;
  }
  return create(pb.CredentialValueSchema, {
    kind: { case: "fields", value: create(pb.CredentialFieldsSchema, { values }) },
  });
}
