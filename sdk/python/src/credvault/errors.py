"""One exception per gRPC status, all under :class:`VaultError`.

Messages are the server's, which never carry a secret, a key or SQL. The structured details the
server attaches (``google.rpc.BadRequest``, ``RetryInfo``, ``ErrorInfo``) are decoded here, so a
caller reads ``error.field_violations`` instead of parsing trailers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Optional

import grpc
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"


@dataclasses.dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path (``value.secret``, ``name``) and what is wrong."""

    field: str
    description: str


class VaultError(Exception):
    """Base class of every error the SDK raises."""

    code: Optional[str] = None
    """The gRPC status name (``"NOT_FOUND"``); ``None`` for errors raised before any call."""

    def __init__(
        self, message: str, *, details: Iterable[Any] = (), request_id: Optional[str] = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = tuple(details)
        """The decoded ``google.rpc`` detail messages the server attached."""
        self.request_id = request_id
        """The call's ``x-request-id``: its audit events and the server's log lines carry it."""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.code else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigurationError(VaultError):
    """The client is missing something it needs (a token, a CA file) or was given a bad option."""


class InvalidArgument(VaultError):
    """``INVALID_ARGUMENT``: the request was refused and nothing changed; see ``field_violations``."""

    code = "INVALID_ARGUMENT"

    @property
    def field_violations(self) -> tuple[FieldViolation, ...]:
        """Every field the server named, from ``google.rpc.BadRequest``."""
        return tuple(
            FieldViolation(v.field, v.description)
            for d in self.details
            if isinstance(d, error_details_pb2.BadRequest)
            for v in d.field_violations
        )


class NotFound(VaultError):
    """``NOT_FOUND``: no such credential in the workspace (another workspace's id looks the same)."""

    code = "NOT_FOUND"


class AlreadyExists(VaultError):
    """``ALREADY_EXISTS``: a live credential of the workspace already has that name."""

    code = "ALREADY_EXISTS"


class EtagMismatch(VaultError):
    """``ABORTED``: the credential changed since its etag was read; read it again and retry."""

    code = "ABORTED"


class PermissionDenied(VaultError):
    """``PERMISSION_DENIED``: the token lacks the permission or the workspace."""

    code = "PERMISSION_DENIED"


class Unauthenticated(VaultError):
    """``UNAUTHENTICATED``: no token, or one that is malformed, expired or badly signed."""

    code = "UNAUTHENTICATED"


class FailedPrecondition(VaultError):
    """``FAILED_PRECONDITION``: e.g. no default credential for the type, or its key is disabled."""

    code = "FAILED_PRECONDITION"


class ResourceExhausted(VaultError):
    """``RESOURCE_EXHAUSTED``: a rate limit or probe budget; retry after ``retry_after`` seconds."""

    code = "RESOURCE_EXHAUSTED"

    @property
    def retry_after(self) -> Optional[float]:
        """The server's ``google.rpc.RetryInfo`` delay in seconds, when it sent one."""
        for d in self.details:
            if isinstance(d, error_details_pb2.RetryInfo):
                return float(d.retry_delay.seconds + d.retry_delay.nanos / 1e9)
        return None


class Unavailable(VaultError):
    """``UNAVAILABLE``: the vault, its kms or its database is unreachable; retried by the client."""

    code = "UNAVAILABLE"


class DeadlineExceeded(VaultError):
    """``DEADLINE_EXCEEDED``: the call's timeout passed."""

    code = "DEADLINE_EXCEEDED"


class OutOfRange(VaultError):
    """``OUT_OF_RANGE``: a request message over its size limit."""

    code = "OUT_OF_RANGE"


class DataLoss(VaultError):
    """``DATA_LOSS``: a stored value failed its integrity check; an operator must look."""

    code = "DATA_LOSS"


class Internal(VaultError):
    """``INTERNAL``: a fault of the vault itself."""

    code = "INTERNAL"


class Cancelled(VaultError):
    """``CANCELLED``: the call was cancelled."""

    code = "CANCELLED"


class Unimplemented(VaultError):
    """``UNIMPLEMENTED``: the server does not know the RPC (an older vault)."""

    code = "UNIMPLEMENTED"


class Unknown(VaultError):
    """Any other status."""

    code = "UNKNOWN"


_BY_CODE: dict[grpc.StatusCode, type[VaultError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.ABORTED: EtagMismatch,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRange,
    grpc.StatusCode.DATA_LOSS: DataLoss,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
}

_DETAIL_TYPES = (
    error_details_pb2.BadRequest,
    error_details_pb2.RetryInfo,
    error_details_pb2.ErrorInfo,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.ResourceInfo,
    error_details_pb2.QuotaFailure,
)


def _details(trailers: Any) -> list[Any]:
    """Decodes ``google.rpc.Status`` details from a call's trailing metadata."""
    for key, value in trailers or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            found = []
            for any_ in status.details:
                for cls in _DETAIL_TYPES:
                    if any_.Is(cls.DESCRIPTOR):
                        message = cls()
                        any_.Unpack(message)
                        found.append(message)
            return found
    return []


def from_status(
    code: grpc.StatusCode, message: str, trailers: Any, request_id: Optional[str] = None
) -> VaultError:
    """The SDK's exception for a failed call."""
    cls = _BY_CODE.get(code, Unknown)
    return cls(message or code.name, details=_details(trailers), request_id=request_id)
