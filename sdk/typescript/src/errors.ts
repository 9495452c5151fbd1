/**
 * Errors: one class per gRPC status under one base, {@link VaultError}.
 *
 * The server's message is kept as is (it never contains a secret); details come from the
 * `google.rpc.Status` details the server attached: `google.rpc.BadRequest` gives
 * {@link InvalidArgument.fieldViolations}, `google.rpc.RetryInfo` gives
 * {@link ResourceExhausted.retryAfter}. Transport failures that never reached a server (connection
 * refused or reset, a dead HTTP/2 session) are {@link Unavailable}, as in gRPC.
 */
import { createRegistry, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type BadRequest,
  BadRequestSchema,
  type RetryInfo,
  RetryInfoSchema,
  file_google_rpc_error_details,
} from "./gen/google/rpc/error_details_pb.js";

/** The canonical gRPC status names, as the audit log writes them. */
export type StatusCode =
  | "CANCELLED"
  | "UNKNOWN"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "OUT_OF_RANGE"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "DATA_LOSS"
  | "UNAUTHENTICATED";

const CODE_NAMES: Record<Code, StatusCode> = {
  [Code.Canceled]: "CANCELLED",
  [Code.Unknown]: "UNKNOWN",
  [Code.InvalidArgument]: "INVALID_ARGUMENT",
  [Code.DeadlineExceeded]: "DEADLINE_EXCEEDED",
  [Code.NotFound]: "NOT_FOUND",
  [Code.AlreadyExists]: "ALREADY_EXISTS",
  [Code.PermissionDenied]: "PERMISSION_DENIED",
  [Code.ResourceExhausted]: "RESOURCE_EXHAUSTED",
  [Code.FailedPrecondition]: "FAILED_PRECONDITION",
  [Code.Aborted]: "ABORTED",
  [Code.OutOfRange]: "OUT_OF_RANGE",
  [Code.Unimplemented]: "UNIMPLEMENTED",
  [Code.Internal]: "INTERNAL",
  [Code.Unavailable]: "UNAVAILABLE",
  [Code.DataLoss]: "DATA_LOSS",
  [Code.Unauthenticated]: "UNAUTHENTICATED",
};

/** A field the server refused, from `google.rpc.BadRequest`. */
export interface FieldViolation {
  /** The field's path in the request, e.g. `name` or `value.fields[region]`. */
  readonly field: string;
  /** Why it was refused. */
  readonly description: string;
}

/** Extra context of an error. */
export interface VaultErrorOptions {
  /** The underlying error (the transport's ConnectError). */
  cause?: unknown;
  /** How many attempts the call made (more than 1 only for retried UNAVAILABLE). */
  attempts?: number;
  /** The server's `x-request-id` for the call, to find it in the server's logs. */
  requestId?: string | null;
}

/** The base of every error the vault's API answers with. */
export class VaultError extends Error {
  /** The gRPC status, e.g. `NOT_FOUND`. */
  readonly code: StatusCode;
  /** The decoded `google.rpc` error details the server attached (BadRequest, RetryInfo, ...). */
  readonly details: readonly Message[];
  /** How many attempts the call made. */
  readonly attempts: number;
  /** The server's request id, when it answered with one. */
  readonly requestId: string | null;

  constructor(
    code: StatusCode,
    message: string,
    details: readonly Message[] = [],
    options: VaultErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = details;
    this.attempts = options.attempts ?? 1;
    this.requestId = options.requestId ?? null;
  }

}

/** A request field was refused (INVALID_ARGUMENT); {@link fieldViolations} names it. */
export class InvalidArgument extends VaultError {
  /** The refused fields, from `google.rpc.BadRequest`. */
  readonly fieldViolations: readonly FieldViolation[];
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("INVALID_ARGUMENT", message, details, options);
    this.fieldViolations = details
      .filter(isBadRequest)
      .flatMap((d) => d.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
  }
}

/** No such credential in the workspace (also another workspace's credential). */
export class NotFound extends VaultError {
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("NOT_FOUND", message, details, options);
  }
}

/** A live credential of the workspace already has the name. */
export class AlreadyExists extends VaultError {
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("ALREADY_EXISTS", message, details, options);
  }
}

/** ABORTED: the etag given is stale; read the credential again and retry. */
export class EtagMismatch extends VaultError {
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("ABORTED", message, details, options);
  }
}

/** The token lacks the permission (or the workspace) the call needs. */
export class PermissionDenied extends VaultError {
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("PERMISSION_DENIED", message, details, options);
  }
}

/** No token, or one that does not verify or has expired. */
export class Unauthenticated extends VaultError {
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("UNAUTHENTICATED", message, details, options);
  }
}

/** The system is not in the state the call needs, e.g. no default credential for a type. */
export class FailedPrecondition extends VaultError {
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("FAILED_PRECONDITION", message, details, options);
  }
}

/** A rate limit or probe budget; retry after {@link retryAfter} seconds. */
export class ResourceExhausted extends VaultError {
  /** Seconds to wait before retrying, from `google.rpc.RetryInfo`; null when not given. */
  readonly retryAfter: number | null;
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("RESOURCE_EXHAUSTED", message, details, options);
    const info = details.find(isRetryInfo);
    const delay = info?.retryDelay;
    this.retryAfter = delay ? Number(delay.seconds) + delay.nanos / 1e9 : null;
  }
}

/** The service (or a dependency) is unavailable; the client already retried it. */
export class Unavailable extends VaultError {
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("UNAVAILABLE", message, details, options);
  }
}

/** The call's deadline passed. */
export class DeadlineExceeded extends VaultError {
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("DEADLINE_EXCEEDED", message, details, options);
  }
}

/** A request message over its limit. */
export class OutOfRange extends VaultError {
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("OUT_OF_RANGE", message, details, options);
  }
}

/** A stored value fails its integrity check; an operator must look. */
export class DataLoss extends VaultError {
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("DATA_LOSS", message, details, options);
  }
}

/** The server failed. */
export class Internal extends VaultError {
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("INTERNAL", message, details, options);
  }
}

/** The call was cancelled (e.g. its AbortSignal fired). */
export class Cancelled extends VaultError {
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("CANCELLED", message, details, options);
  }
}

/** UNIMPLEMENTED: the server does not know the RPC (an older vault). */
export class Unimplemented extends VaultError {
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("UNIMPLEMENTED", message, details, options);
  }
}

/** An error without a known status. */
export class Unknown extends VaultError {
  constructor(message: string, details: readonly Message[] = [], options: VaultErrorOptions = {}) {
    super("UNKNOWN", message, details, options);
  }
}

type Subclass = new (
  message: string,
  details?: readonly Message[],
  options?: VaultErrorOptions,
) => VaultError;

const CLASSES: Partial<Record<Code, Subclass>> = {
  [Code.InvalidArgument]: InvalidArgument,
  [Code.NotFound]: NotFound,
  [Code.AlreadyExists]: AlreadyExists,
  [Code.Aborted]: EtagMismatch,
  [Code.PermissionDenied]: PermissionDenied,
  [Code.Unauthenticated]: Unauthenticated,
  [Code.FailedPrecondition]: FailedPrecondition,
  [Code.ResourceExhausted]: ResourceExhausted,
  [Code.Unavailable]: Unavailable,
  [Code.DeadlineExceeded]: DeadlineExceeded,
  [Code.OutOfRange]: OutOfRange,
  [Code.DataLoss]: DataLoss,
  [Code.Internal]: Internal,
  [Code.Canceled]: Cancelled,
  [Code.Unimplemented]: Unimplemented,
  [Code.Unknown]: Unknown,
};

// `err.name` and stack traces say the class (on the prototype: not an own property that
// util.inspect would list, and not lost to a minifier's renaming).
const NAMED = {
  VaultError,
  InvalidArgument,
  NotFound,
  AlreadyExists,
  EtagMismatch,
  PermissionDenied,
  Unauthenticated,
  FailedPrecondition,
  ResourceExhausted,
  Unavailable,
  DeadlineExceeded,
  OutOfRange,
  DataLoss,
  Internal,
  Cancelled,
  Unimplemented,
  Unknown,
};
for (const [name, cls] of Object.entries(NAMED)) {
  Object.defineProperty(cls.prototype, "name", { value: name, writable: true, configurable: true });
}

const ERROR_DETAILS = createRegistry(file_google_rpc_error_details);

function isBadRequest(m: Message): m is BadRequest {
  return m.$typeName === BadRequestSchema.typeName;
}

function isRetryInfo(m: Message): m is RetryInfo {
  return m.$typeName === RetryInfoSchema.typeName;
}

// Node's codes for a connection that broke or never opened: the server never answered, so the
// call is UNAVAILABLE (gRPC's meaning), whatever code the transport guessed (it reports a reset
// as ABORTED, which would read as a stale etag here).
const TRANSPORT_FAILURES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ERR_HTTP2_GOAWAY_SESSION",
  "ERR_HTTP2_INVALID_SESSION",
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_STREAM_CANCEL",
  "ERR_HTTP2_ERROR",
  "ERR_STREAM_PREMATURE_CLOSE",
]);

function isTransportFailure(err: ConnectError): boolean {
  const seen = new Set<unknown>();
  let reason: unknown = err.cause;
  while (reason instanceof Error && !seen.has(reason)) {
    seen.add(reason);
    const code = (reason as { code?: unknown }).code;
    if (typeof code === "string" && TRANSPORT_FAILURES.has(code)) return true;
    reason = (reason as { cause?: unknown }).cause;
  }
  return false;
}

function isEmpty(headers: Headers): boolean {
  for (const _ of headers.keys()) return false;
  return true;
}

/**
 * Maps any error of a call to the matching {@link VaultError} subclass. `callerCancelled` says
 * whether the caller cancelled the call (its AbortSignal, or closing the client): otherwise a
 * CANCELLED that no server answered (no response metadata at all) is the HTTP/2 session being
 * torn down under the call, i.e. the connection was lost: UNAVAILABLE.
 */
export function fromConnectError(reason: unknown, attempts = 1, callerCancelled = false): VaultError {
  if (reason instanceof VaultError) return reason;
  const err = ConnectError.from(reason);
  let code = err.code;
  if ((code === Code.Aborted || code === Code.Internal || code === Code.Unknown) && isTransportFailure(err)) {
    code = Code.Unavailable;
  }
  if (code === Code.Canceled && !callerCancelled && isEmpty(err.metadata)) {
    code = Code.Unavailable;
  }
  let details: Message[] = [];
  try {
    details = err.findDetails(ERROR_DETAILS);
  } catch {
    // Undecodable details are left out; the code and message still say what happened.
  }
  const options: VaultErrorOptions = {
    cause: err,
    attempts,
    requestId: err.metadata.get("x-request-id"),
  };
  const message = err.rawMessage || CODE_NAMES[code].toLowerCase().replaceAll("_", " ");
  const cls = CLASSES[code];
  return cls ? new cls(message, details, options) : new VaultError(CODE_NAMES[code], message, details, options);
}
