"""The one place that converts between the generated messages and the SDK's objects."""

from __future__ import annotations

import datetime as _dt
from typing import Mapping, Optional, Sequence, Union

from google.protobuf import duration_pb2, timestamp_pb2

from ._gen.credentials.v1 import access_service_pb2 as access_pb
from ._gen.credentials.v1 import credentials_service_pb2 as service_pb
from ._gen.credentials.v1 import resources_pb2 as pb
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

Value = Union[str, Mapping[str, str]]
"""A credential's value: one secret string (the type's primary field) or named fields."""


def _enum_name(enum: object, number: int, prefix: str) -> str:
    name: str = enum.Name(number)  # type: ignore[attr-defined]
    return name.removeprefix(prefix).lower()


def _time(message: object, field: str) -> Optional[_dt.datetime]:
    if not message.HasField(field):  # type: ignore[attr-defined]
        return None
    ts: timestamp_pb2.Timestamp = getattr(message, field)
    return ts.ToDatetime(tzinfo=_dt.timezone.utc)


def _seconds(d: duration_pb2.Duration) -> float:
    return d.seconds + d.nanos / 1e9


def value(v: Value) -> pb.CredentialValue:
    """A ``CredentialValue`` from a string or a mapping of field names to strings."""
    if isinstance(v, str):
        return pb.CredentialValue(secret=v)
    if isinstance(v, Mapping):
        for name, field in v.items():
            if not isinstance(name, str) or not isinstance(field, str):
                raise TypeError(f"value[{name!r}] must be a str (fields map names to strings)")
        return pb.CredentialValue(fields=pb.CredentialFields(values=dict(v)))
    raise TypeError("value must be a str or a mapping of field names to str")


def credential(c: pb.Credential) -> Credential:
    validation = None
    is_valid = None
    if c.HasField("validation") and c.validation.state != pb.VALIDATION_STATE_UNSPECIFIED:
        v = c.validation
        validation = Validation(
            state=_enum_name(pb.ValidationState, v.state, "VALIDATION_STATE_"),
            outcome=_enum_name(pb.ValidationOutcome, v.outcome, "VALIDATION_OUTCOME_"),
            message=v.message,
            checked_at=_time(v, "checked_at"),
        )
        is_valid = v.state == pb.VALIDATION_STATE_VALID
    return Credential(
        id=c.id,
        workspace_id=c.workspace_id,
        name=c.name,
        category=c.category,
        type=c.type,
        description=c.description,
        masked_content=c.masked_content,
        is_default=c.is_default,
        is_valid=is_valid,
        validation=validation,
        has_schema=c.has_schema,
        schema_updated_at=_time(c, "schema_updated_at"),
        created_at=_time(c, "created_at"),
        updated_at=_time(c, "updated_at"),
        deleted_at=_time(c, "deleted_at"),
        etag=c.etag,
    )


def validation_result(
    r: pb.ValidationResult, stored: Optional[pb.Credential]
) -> ValidationResult:
    return ValidationResult(
        is_valid=r.outcome == pb.VALIDATION_OUTCOME_VALID,
        outcome=_enum_name(pb.ValidationOutcome, r.outcome, "VALIDATION_OUTCOME_"),
        message=r.message,
        latency=_seconds(r.latency) if r.HasField("latency") else None,
        checked_at=_time(r, "checked_at"),
        credential=credential(stored) if stored is not None else None,
    )


def discovery(r: service_pb.DiscoverSchemaResponse) -> SchemaDiscovery:
    return SchemaDiscovery(
        credential=credential(r.credential) if r.HasField("credential") else None,
        table_count=r.table_count,
        truncated=r.truncated,
        truncation=(
            _enum_name(pb.SchemaTruncation, r.truncation, "SCHEMA_TRUNCATION_")
            if r.truncation
            else None
        ),
    )


def schema(r: service_pb.GetSchemaResponse) -> Schema:
    return Schema(
        namespaces=tuple(
            SchemaNamespace(
                name=ns.name,
                tables=tuple(
                    Table(
                        name=t.name,
                        kind=_enum_name(pb.TableKind, t.kind, "TABLE_KIND_"),
                        description=t.description,
                        columns=tuple(
                            Column(
                                name=col.name,
                                data_type=col.data_type,
                                nullable=col.nullable,
                                default_value=(
                                    col.default_value if col.HasField("default_value") else None
                                ),
                                description=col.description,
                                position=col.position,
                            )
                            for col in t.columns
                        ),
                        primary_key=tuple(t.primary_key),
                    )
                    for t in ns.tables
                ),
            )
            for ns in r.schema.namespaces
        ),
        ddl=r.ddl,
        discovered_at=_time(r, "discovered_at"),
        truncated=r.schema.truncated,
    )


def credential_type(t: pb.CredentialType) -> CredentialType:
    return CredentialType(
        type=t.type,
        category=t.category,
        display_name=t.display_name,
        description=t.description,
        product_name=t.product_name,
        primary_field=t.primary_field,
        primary_secret_field=t.primary_secret_field,
        supports_validation=t.supports_validation,
        supports_schema_discovery=t.supports_schema_discovery,
        fields=tuple(
            FieldSpec(
                name=f.name,
                description=f.description,
                secret=f.secret,
                required=f.required,
                allowed_values=tuple(f.allowed_values),
                product_name=f.product_name,
            )
            for f in t.fields
        ),
    )


def audit_event(e: pb.AuditEvent) -> AuditEvent:
    return AuditEvent(
        id=e.id,
        workspace_id=e.workspace_id,
        credential_id=e.credential_id,
        actor=e.actor,
        action=_enum_name(pb.AuditAction, e.action, "AUDIT_ACTION_"),
        outcome=_enum_name(pb.AuditOutcome, e.outcome, "AUDIT_OUTCOME_"),
        status_code=e.status_code,
        request_id=e.request_id,
        time=_time(e, "time"),
    )


def create_request(
    workspace: str,
    name: str,
    type: str,
    value_: Value,
    category: Optional[str],
    description: Optional[str],
    make_default: bool,
) -> service_pb.CreateCredentialRequest:
    return service_pb.CreateCredentialRequest(
        workspace_id=workspace,
        name=name,
        type=type,
        category=category or "",
        description=description or "",
        value=value(value_),
        make_default=make_default,
    )


def update_request(
    workspace: str,
    credential_id: str,
    name: Optional[str],
    description: Optional[str],
    value_: Optional[Value],
    etag: Optional[str],
) -> service_pb.UpdateCredentialRequest:
    request = service_pb.UpdateCredentialRequest(
        workspace_id=workspace, id=credential_id, etag=etag or ""
    )
    # Only the fields given change: name and description are proto3 `optional`.
    if name is not None:
        request.name = name
    if description is not None:
        request.description = description
    if value_ is not None:
        request.value.CopyFrom(value(value_))
    return request


def test_request(
    workspace: str,
    type: Optional[str],
    value_: Optional[Value],
    credential_id: Optional[str],
) -> service_pb.TestCredentialRequest:
    request = service_pb.TestCredentialRequest(
        workspace_id=workspace, type=type or "", credential_id=credential_id or ""
    )
    if value_ is not None:
        request.value.CopyFrom(value(value_))
    return request


def discover_request(
    workspace: str,
    credential_id: str,
    include_schemas: Sequence[str],
    exclude_schemas: Sequence[str],
    max_tables: Optional[int],
) -> service_pb.DiscoverSchemaRequest:
    return service_pb.DiscoverSchemaRequest(
        workspace_id=workspace,
        id=credential_id,
        include_schemas=list(include_schemas),
        exclude_schemas=list(exclude_schemas),
        max_tables=max_tables or 0,
    )


def access_request(
    workspace: str, credential_id: Optional[str], type: Optional[str]
) -> access_pb.AccessCredentialRequest:
    if (credential_id is None) == (type is None):
        raise TypeError("access() takes exactly one of id= (a credential id) or type= (its default)")
    if credential_id is not None:
        return access_pb.AccessCredentialRequest(workspace_id=workspace, id=credential_id)
    return access_pb.AccessCredentialRequest(workspace_id=workspace, default_for_type=type)


def get_request(workspace: str, credential_id: str) -> service_pb.GetCredentialRequest:
    return service_pb.GetCredentialRequest(workspace_id=workspace, id=credential_id)


def list_request(
    workspace: str,
    type: Optional[str],
    category: Optional[str],
    show_deleted: bool,
    page_size: Optional[int],
    page_token: str,
) -> service_pb.ListCredentialsRequest:
    return service_pb.ListCredentialsRequest(
        workspace_id=workspace,
        type=type or "",
        category=category or "",
        page_size=page_size or 0,
        page_token=page_token,
        show_deleted=show_deleted,
    )


def delete_request(
    workspace: str, credential_id: str, etag: Optional[str]
) -> service_pb.DeleteCredentialRequest:
    return service_pb.DeleteCredentialRequest(workspace_id=workspace, id=credential_id, etag=etag or "")


def set_default_request(workspace: str, credential_id: str) -> service_pb.SetDefaultCredentialRequest:
    return service_pb.SetDefaultCredentialRequest(workspace_id=workspace, id=credential_id)


def validate_request(workspace: str, credential_id: str) -> service_pb.ValidateCredentialRequest:
    return service_pb.ValidateCredentialRequest(workspace_id=workspace, id=credential_id)


def schema_request(workspace: str, credential_id: str) -> service_pb.GetSchemaRequest:
    return service_pb.GetSchemaRequest(workspace_id=workspace, id=credential_id)


def types_request(category: Optional[str]) -> service_pb.ListCredentialTypesRequest:
    return service_pb.ListCredentialTypesRequest(category=category or "")


def audit_request(
    workspace: str, credential_id: Optional[str], page_size: Optional[int], page_token: str
) -> service_pb.ListAuditEventsRequest:
    return service_pb.ListAuditEventsRequest(
        workspace_id=workspace,
        credential_id=credential_id or "",
        page_size=page_size or 0,
        page_token=page_token,
    )
