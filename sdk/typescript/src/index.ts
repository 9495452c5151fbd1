/**
 * credvault: the TypeScript client of the credentials vault.
 *
 * - {@link Client}: the connection, `client.credentials` (management), `client.auditEvents`
 *   (the audit log), `client.access()` (plaintext) and `client.keyProvider()` (a cached key
 *   function for provider SDKs).
 * - Results: {@link Credential}, {@link ValidationResult}, {@link SchemaDiscovery},
 *   {@link Schema}, {@link CredentialType}, {@link AuditEvent}; secrets: {@link Secret};
 *   listings: {@link Listing} ({@link CredentialList}, {@link AuditEventList}).
 * - Errors: {@link VaultError} and one subclass per gRPC status.
 */
export { AuditEventList, AuditEvents } from "./auditEvents.js";
export { Client, type ClientOptions } from "./client.js";
export { CredentialList, Credentials } from "./credentials.js";
export { DEFAULT_KEY_TTL, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, PROBE_TIMEOUT } from "./defaults.js";
export {
  AlreadyExists,
  Cancelled,
  DataLoss,
  DeadlineExceeded,
  EtagMismatch,
  FailedPrecondition,
  type FieldViolation,
  Internal,
  InvalidArgument,
  NotFound,
  OutOfRange,
  PermissionDenied,
  ResourceExhausted,
  type StatusCode,
  Unauthenticated,
  Unavailable,
  Unimplemented,
  Unknown,
  VaultError,
  type VaultErrorOptions,
} from "./errors.js";
export type { KeyProvider, KeyProviderOptions } from "./keyProvider.js";
export { Listing, type PageToken } from "./listing.js";
export { Secret, SecretFields } from "./secret.js";
export {
  type AccessOptions,
  type AuditAction,
  AuditEvent,
  type AuditEventListOptions,
  type AuditEventPage,
  type AuditOutcome,
  type CallOptions,
  type Column,
  type CreateOptions,
  Credential,
  type CredentialFieldSpec,
  type CredentialPage,
  CredentialType,
  type CredentialValueInput,
  type DeleteOptions,
  type DiscoverSchemaOptions,
  type ListOptions,
  type Namespace,
  Result,
  Schema,
  SchemaDiscovery,
  type Table,
  type TableKind,
  type TestOptions,
  type TypesOptions,
  type UpdateOptions,
  type Validation,
  type ValidationOutcome,
  ValidationResult,
  type ValidationState,
} from "./types.js";
export { VERSION } from "./version.js";
