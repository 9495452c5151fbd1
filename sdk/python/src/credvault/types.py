"""The SDK's result objects: plain, typed, immutable, with the product document's field names.

Every object also reads like the document's JSON (``credential["has_schema"]``), and, for code
written against its response envelope, ``result["data"]`` is the object itself, so
``result["data"]["is_valid"]`` works as the document writes it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import Any, Optional


class _Record:
    """Mapping-style reads of a dataclass's fields, as the document's examples write them."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        if key == "data":
            return self
        if key in self._field_names():
            return getattr(self, key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key == "data" or key in self._field_names()

    def get(self, key: str, default: Any = None) -> Any:
        """The field's value, or ``default`` when there is no such field."""
        try:
            return self[key]
        except KeyError:
            return default

    def to_dict(self) -> dict[str, Any]:
        """The object as a plain dict (nested objects too)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]

    @classmethod
    def _field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class Validation(_Record):
    """The outcome of a credential's last validation, as stored on it."""

    state: str
    """``"valid"`` or ``"invalid"``."""
    outcome: str
    """Why: ``"valid"``, ``"invalid_credentials"``, ``"unreachable"``, ``"egress_denied"``, ..."""
    message: str
    checked_at: Optional[_dt.datetime]


@dataclasses.dataclass(frozen=True)
class Credential(_Record):
    """A credential's metadata: never its value, only a masked preview."""

    id: str
    workspace_id: str
    name: str
    category: str
    type: str
    description: str
    masked_content: str
    """A preview that cannot reveal the secret, e.g. ``sk-pr...abcd``."""
    is_default: bool
    is_valid: Optional[bool]
    """Whether the last validation passed; ``None`` when it was never validated."""
    validation: Optional[Validation]
    has_schema: bool
    schema_updated_at: Optional[_dt.datetime]
    created_at: Optional[_dt.datetime]
    updated_at: Optional[_dt.datetime]
    deleted_at: Optional[_dt.datetime]
    """When it was deleted; ``None`` for a live credential."""
    etag: str
    """Pass it to ``update`` / ``delete`` to refuse a change made since you read it."""


@dataclasses.dataclass(frozen=True)
class ValidationResult(_Record):
    """What ``validate`` or ``test`` found when it tried the credential against its target."""

    is_valid: bool
    outcome: str
    """``"valid"``, ``"invalid_credentials"``, ``"insufficient_permissions"``, ``"unreachable"``,
    ``"timed_out"``, ``"unsupported_type"``, ``"provider_error"`` or ``"egress_denied"``."""
    message: str
    latency: Optional[float]
    """Seconds the probe took."""
    checked_at: Optional[_dt.datetime]
    credential: Optional[Credential]
    """The credential with the outcome stored on it (``validate``); ``None`` for ``test``."""


@dataclasses.dataclass(frozen=True)
class SchemaDiscovery(_Record):
    """What ``discover_schema`` stored."""

    credential: Optional[Credential]
    table_count: int
    truncated: bool
    truncation: Optional[str]
    """Which budget cut the schema short (``"table_limit"``, ``"row_budget"``, ...), if any."""


@dataclasses.dataclass(frozen=True)
class Column(_Record):
    """One column of a discovered table."""

    name: str
    data_type: str
    nullable: bool
    default_value: Optional[str]
    description: str
    position: int


@dataclasses.dataclass(frozen=True)
class Table(_Record):
    """One table or view of a discovered schema."""

    name: str
    kind: str
    """``"table"`` or ``"view"``."""
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class SchemaNamespace(_Record):
    """A database schema (namespace) and its tables."""

    name: str
    tables: tuple[Table, ...]


@dataclasses.dataclass(frozen=True)
class Schema(_Record):
    """The last discovered schema of a database credential."""

    namespaces: tuple[SchemaNamespace, ...]
    ddl: str
    """The same as ``CREATE TABLE`` statements, for a prompt."""
    discovered_at: Optional[_dt.datetime]
    truncated: bool

    @property
    def tables(self) -> tuple[Table, ...]:
        """Every table of every namespace."""
        return tuple(t for ns in self.namespaces for t in ns.tables)


@dataclasses.dataclass(frozen=True)
class FieldSpec(_Record):
    """One field of a credential type's value."""

    name: str
    description: str
    secret: bool
    required: bool
    allowed_values: tuple[str, ...]
    product_name: str


@dataclasses.dataclass(frozen=True)
class CredentialType(_Record):
    """An entry of the vault's type catalogue."""

    type: str
    category: str
    display_name: str
    description: str
    product_name: str
    primary_field: str
    primary_secret_field: str
    supports_validation: bool
    supports_schema_discovery: bool
    fields: tuple[FieldSpec, ...]


@dataclasses.dataclass(frozen=True)
class AuditEvent(_Record):
    """One entry of a workspace's audit log: who did what to which credential, never a value."""

    id: str
    workspace_id: str
    credential_id: str
    actor: str
    action: str
    """``"create"``, ``"update"``, ``"delete"``, ``"set_default"``, ``"access"``, ``"validate"``, ..."""
    outcome: str
    """``"succeeded"``, ``"failed"`` or ``"started"``."""
    status_code: str
    request_id: str
    time: Optional[_dt.datetime]
