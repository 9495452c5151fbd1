/**
 * The SDK's result objects and option types: plain, typed, with the product document's field
 * names in camelCase. Timestamps are `Date`s (or null when unset); enums are lower-case strings
 * (`"valid"`, `"invalid_credentials"`, `"table"`). Every result carries a `data` getter returning
 * itself, so the document's `result.data.isValid` reads the same as `result.isValid`.
 */

/** Options every call takes. */
export interface CallOptions {
  /** The workspace to act in; defaults to the client's (or the token's single workspace). */
  workspace?: string;
  /** Deadline of each attempt, in seconds (default: the client's; probes 130 s). */
  timeout?: number;
  /** Cancels the call (and its retries); the call then fails with `Cancelled`. */
  signal?: AbortSignal;
}

/**
 * A credential value: one string (the type's primary secret field: an API key, a connection
 * string) or named fields (e.g. bedrock's `access_key_id`, `secret_access_key`, `region`).
 */
export type CredentialValueInput = string | Readonly<Record<string, string>>;

/** Whether a credential is known to work. */
export type ValidationState = "unspecified" | "valid" | "invalid";

/** The typed outcome of a validation probe. */
export type ValidationOutcome =
  | "unspecified"
  | "valid"
  | "invalid_credentials"
  | "insufficient_permissions"
  | "unreachable"
  | "timed_out"
  | "unsupported_type"
  | "provider_error"
  | "egress_denied";

/** Whether a relation is a table or a view. */
export type TableKind = "unspecified" | "table" | "view";

/** The fields of a result class, without its methods and its `data` getter. */
export type Fields<T> = { readonly [K in keyof T as T[K] extends (...args: never[]) => unknown ? never : K extends "data" ? never : K]: T[K] };

/** The common base of results: the `data` getter of the product document's examples. */
export abstract class Result {
  /** The object itself: `result.data.isValid` is `result.isValid`. */
  get data(): this {
    return this;
  }
}

/** The last validation of a credential. */
export interface Validation {
  readonly state: ValidationState;
  readonly outcome: ValidationOutcome;
  /** User-facing explanation; never contains the secret. */
  readonly message: string;
  readonly checkedAt: Date | null;
}

/** A stored credential: metadata and a masked preview, never the secret. */
export class Credential extends Result {
  declare readonly id: string;
  declare readonly workspaceId: string;
  declare readonly name: string;
  /** llm, speech, image, video, data_warehouse, vector_store or tools. */
  declare readonly category: string;
  /** The provider or database type, e.g. openai, postgresql. */
  declare readonly type: string;
  declare readonly description: string;
  /** A preview safe to show, e.g. `sk-pr...abcd`. */
  declare readonly maskedContent: string;
  declare readonly isDefault: boolean;
  /** Whether the last validation passed; null when never validated since the value was written. */
  declare readonly isValid: boolean | null;
  declare readonly validation: Validation | null;
  declare readonly hasSchema: boolean;
  declare readonly schemaUpdatedAt: Date | null;
  declare readonly createdAt: Date | null;
  declare readonly updatedAt: Date | null;
  declare readonly deletedAt: Date | null;
  /** Pass it to update/delete to fail with EtagMismatch if the credential changed since. */
  declare readonly etag: string;

  constructor(fields: Fields<Credential>) {
    super();
    Object.assign(this, fields);
  }
}

/** The outcome of a validation or a test. */
export class ValidationResult extends Result {
  /** outcome === "valid". */
  declare readonly isValid: boolean;
  declare readonly outcome: ValidationOutcome;
  /** User-facing explanation; never contains the secret. */
  declare readonly message: string;
  /** How long the probe took, in milliseconds. */
  declare readonly latencyMs: number;
  declare readonly checkedAt: Date | null;
  /** The credential with the outcome stored on it (validate); null for test. */
  declare readonly credential: Credential | null;

  constructor(fields: Fields<ValidationResult>) {
    super();
    Object.assign(this, fields);
  }
}

/** The outcome of a schema discovery. */
export class SchemaDiscovery extends Result {
  /** The credential, with hasSchema and schemaUpdatedAt set. */
  declare readonly credential: Credential | null;
  /** How many tables and views were found. */
  declare readonly tableCount: number;
  /** True when the discovery left tables out. */
  declare readonly truncated: boolean;

  constructor(fields: Fields<SchemaDiscovery>) {
    super();
    Object.assign(this, fields);
  }
}

/** A column of a table or view. */
export interface Column {
  readonly name: string;
  /** The database's name for its type, e.g. varchar(64). */
  readonly dataType: string;
  readonly nullable: boolean;
  /** Its default expression; null when none. */
  readonly defaultValue: string | null;
  readonly description: string;
  /** Ordinal position, from 1. */
  readonly position: number;
}

/** A table or view. */
export interface Table {
  readonly name: string;
  readonly kind: TableKind;
  readonly description: string;
  readonly columns: readonly Column[];
  /** The primary-key columns in key order; empty without one. */
  readonly primaryKey: readonly string[];
}

/** A schema (namespace) of a database. */
export interface Namespace {
  readonly name: string;
  readonly tables: readonly Table[];
}

/** A credential's stored database schema. */
export class Schema extends Result {
  declare readonly namespaces: readonly Namespace[];
  /** The schema as compact DDL-like text, to put in a prompt. */
  declare readonly ddl: string;
  declare readonly discoveredAt: Date | null;
  declare readonly truncated: boolean;

  constructor(fields: Fields<Schema>) {
    super();
    Object.assign(this, fields);
  }
}

/** One field of a credential type's value. */
export interface CredentialFieldSpec {
  readonly name: string;
  readonly description: string;
  /** Whether the field is secret (never shown outside the access API). */
  readonly secret: boolean;
  readonly required: boolean;
  /** Allowed values, when the field is an enumeration. */
  readonly allowedValues: readonly string[];
  /** The field's name in the product API (e.g. openAIApiKey); empty when none. */
  readonly productName: string;
}

/** A credential type of the catalogue. */
export class CredentialType extends Result {
  /** The type identifier, e.g. openai. */
  declare readonly type: string;
  declare readonly category: string;
  declare readonly displayName: string;
  declare readonly description: string;
  /** The type's name in the product API (its credentialName, e.g. openAIApi). */
  declare readonly productName: string;
  /** The field a single secret string fills. */
  declare readonly primaryField: string;
  /** The field `Secret.reveal()` returns. */
  declare readonly primarySecretField: string;
  declare readonly supportsValidation: boolean;
  declare readonly supportsSchemaDiscovery: boolean;
  declare readonly fields: readonly CredentialFieldSpec[];

  constructor(fields: Fields<CredentialType>) {
    super();
    Object.assign(this, fields);
  }
}

/** What an audit event records was done (the enum's name without `AUDIT_ACTION_`, lower-case). */
export type AuditAction =
  | "unspecified"
  | "create"
  | "update"
  | "delete"
  | "set_default"
  | "access"
  | "validate"
  | "discover_schema"
  | "rewrap"
  | "test"
  | "set_workspace_key"
  | "start_rewrap";

/**
 * Whether an audited action succeeded: `"started"` is written before a stored value is sent to
 * its target (a probe); its result, when stored, is a later event.
 */
export type AuditOutcome = "unspecified" | "succeeded" | "failed" | "started";

/** One entry of a workspace's audit log: who did what to which credential, never a value. */
export class AuditEvent extends Result {
  /** Server-assigned, increasing with time. */
  declare readonly id: string;
  declare readonly workspaceId: string;
  /** The credential acted on; empty for actions on no single credential. */
  declare readonly credentialId: string;
  /** The authenticated subject (the token's `sub` claim). */
  declare readonly actor: string;
  /** `"create"`, `"update"`, `"delete"`, `"set_default"`, `"access"`, `"validate"`, ... */
  declare readonly action: AuditAction;
  /** `"succeeded"`, `"failed"` or `"started"`. */
  declare readonly outcome: AuditOutcome;
  /** The gRPC status name of the answer, e.g. `OK`, `NOT_FOUND`. */
  declare readonly statusCode: string;
  /** The call's request id (the SDK's `x-request-id`; the same for every retry of a call). */
  declare readonly requestId: string;
  declare readonly time: Date | null;

  constructor(fields: Fields<AuditEvent>) {
    super();
    Object.assign(this, fields);
  }
}

/** Creates a credential. */
export interface CreateOptions extends CallOptions {
  /** Display name, unique among the workspace's live credentials; 1-128 characters. */
  name: string;
  /** The credential type, e.g. openai (see `client.credentials.types()`). */
  type: string;
  value: CredentialValueInput;
  /** Optional; when given it must be the type's category. */
  category?: string;
  description?: string;
  /** Make it the default for its type at once. */
  makeDefault?: boolean;
}

/** Filters a listing. */
export interface ListOptions extends CallOptions {
  type?: string;
  category?: string;
  /** Include deleted credentials. */
  showDeleted?: boolean;
  /** Credentials per page (1-500; the server's default is 50). */
  pageSize?: number;
}

/** Changes a credential; only the fields given change. */
export interface UpdateOptions extends CallOptions {
  name?: string;
  description?: string;
  /** A new value; replaces the whole value. */
  value?: CredentialValueInput;
  /** The etag of the last read: fail with EtagMismatch if the credential changed since. */
  etag?: string;
}

/** Deletes a credential. */
export interface DeleteOptions extends CallOptions {
  etag?: string;
}

/** Tests a value that is not stored: a type and a value, or a stored credential with some fields replaced. */
export interface TestOptions extends CallOptions {
  type?: string;
  value?: CredentialValueInput;
  credentialId?: string;
}

/** Limits a schema discovery. */
export interface DiscoverSchemaOptions extends CallOptions {
  /** Only these schemas (namespaces). */
  includeSchemas?: readonly string[];
  /** Never these schemas. */
  excludeSchemas?: readonly string[];
  /** At most this many tables and views (1-5000; the server's default is 1000). */
  maxTables?: number;
}

/** Filters the type catalogue. */
export interface TypesOptions extends Omit<CallOptions, "workspace"> {
  category?: string;
}

/** Which credential `client.access()` reads: by id, or the workspace's default for a type. */
export type AccessOptions = CallOptions & ({ id: string; type?: undefined } | { type: string; id?: undefined });

/** A page of a listing. */
export interface CredentialPage {
  readonly credentials: readonly Credential[];
  /** Empty on the last page. */
  readonly nextPageToken: string;
}

/** Filters the audit log. */
export interface AuditEventListOptions extends CallOptions {
  /** Only the events of this credential. */
  credentialId?: string;
  /** Events per page (1-500; the server's default is 50). */
  pageSize?: number;
}

/** A page of the audit log. */
export interface AuditEventPage {
  /** Newest first. */
  readonly events: readonly AuditEvent[];
  /** Empty on the last page. */
  readonly nextPageToken: string;
}
