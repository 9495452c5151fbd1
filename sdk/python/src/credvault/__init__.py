"""Python client of the credentials vault.

>>> from credvault import Client
>>> client = Client("localhost:50051", token="...")
>>> credential = client.credentials.create(name="OpenAI Production", category="llm",
...     type="openai", value="sk-proj-...", description="Production OpenAI API key")
>>> client.credentials.set_default(credential_id=credential.id)
>>> key = client.access(type="openai").reveal()
"""

from ._client import AsyncClient, AsyncPager, Client, Page, Pager
from ._version import __version__
from .errors import (
    AlreadyExists,
    Cancelled,
    ConfigurationError,
    DataLoss,
    DeadlineExceeded,
    EtagMismatch,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
    VaultError,
)
from .key_provider import AsyncKeyProvider, KeyProvider
from .secret import Secret, SecretFields
from .types import (
    AuditEvent,
    Column,
    Credential,
    CredentialType,
    FieldSpec,
    Schema,
    SchemaDiscovery,
    SchemaNamespace,
    Table,
    Validation,
    ValidationResult,
)

PROTO_PACKAGE = "credentials.v1"
"""The API version this SDK speaks."""

__all__ = [
    "PROTO_PACKAGE",
    "AlreadyExists",
    "AsyncClient",
    "AsyncKeyProvider",
    "AsyncPager",
    "AuditEvent",
    "Cancelled",
    "Client",
    "Column",
    "ConfigurationError",
    "Credential",
    "CredentialType",
    "DataLoss",
    "DeadlineExceeded",
    "EtagMismatch",
    "FailedPrecondition",
    "FieldSpec",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "KeyProvider",
    "NotFound",
    "OutOfRange",
    "Page",
    "Pager",
    "PermissionDenied",
    "ResourceExhausted",
    "Schema",
    "SchemaDiscovery",
    "SchemaNamespace",
    "Secret",
    "SecretFields",
    "Table",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "Validation",
    "ValidationResult",
    "VaultError",
    "__version__",
]
