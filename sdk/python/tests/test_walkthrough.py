"""The product document's Python walk-through, as written, against the real stack."""

from __future__ import annotations

import datetime as dt

import credvault
from conftest import VaultStack


def test_the_documents_walk_through_runs_as_written(stack: VaultStack, capsys: object) -> None:
    client = credvault.Client(stack.grpc, token=stack.token_for("walkthrough"))

    # LLM credential
    credential = client.credentials.create(
        name="OpenAI Production",
        category="llm",
        type="openai",
        value="sk-proj-your-openai-api-key",
        description="Production OpenAI API key",
    )
    # Data warehouse credential
    db_credential = client.credentials.create(
        name="Analytics Database",
        category="data_warehouse",
        type="postgresql",
        value="postgresql://user:password@host:5432/analytics",
        description="Read-only analytics database",
    )
    # Speech credential
    speech_credential = client.credentials.create(
        name="ElevenLabs Production",
        category="speech",
        type="elevenlabs",
        value="your-elevenlabs-api-key",
        description="ElevenLabs TTS API key",
    )
    # Tool credential
    tool_credential = client.credentials.create(
        name="Slack Bot Token",
        category="tools",
        type="api_key",
        value="xoxb-your-slack-bot-token",
        description="Slack bot for notifications",
    )

    # The credential response: the document's fields, never the value.
    assert credential.masked_content == "sk-pr...-key"
    assert (credential.name, credential.type, credential.category) == ("OpenAI Production", "openai", "llm")
    assert credential.description == "Production OpenAI API key"
    assert credential.is_default is False and credential.has_schema is False
    assert credential.is_valid is None and credential.schema_updated_at is None
    assert credential.created_at is not None and credential.created_at.tzinfo is not None
    assert abs(credential.created_at - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
    assert "user:password" not in db_credential.masked_content
    assert db_credential.masked_content.startswith("postgresql://host:5432")
    assert speech_credential.category == "speech" and tool_credential.category == "tools"
    for c in (credential, db_credential, speech_credential, tool_credential):
        assert "your" not in repr(c).replace("your-", "")  # masked previews only

    # Default credentials
    client.credentials.set_default(credential_id=credential.id)
    assert client.credentials.get(credential_id=credential.id).is_default is True
    assert client.access(type="openai").reveal() == "sk-proj-your-openai-api-key"

    # Connection validation (no provider is reachable from here: the key cannot be valid)
    result = client.credentials.validate(credential_id=credential.id)
    print(f"Valid: {result['data']['is_valid']}")
    assert result["data"]["is_valid"] is False
    assert result.outcome in {"unreachable", "egress_denied", "timed_out", "invalid_credentials"}
    assert client.credentials.get(credential_id=credential.id).is_valid is False

    # Updating credentials: point the database credential at a real database.
    client.credentials.update(
        credential_id=db_credential.id,
        value=stack.analytics_url,
        name="Updated Name",
    )
    updated = client.credentials.get(credential_id=db_credential.id)
    assert updated.name == "Updated Name" and updated.etag != db_credential.etag
    assert client.credentials.check_connection(credential_id=db_credential.id)["data"]["is_valid"] is True

    # Schema discovery
    client.credentials.discover_schema(credential_id=db_credential.id)
    credential = client.credentials.get(credential_id=db_credential.id)
    if credential["data"]["has_schema"]:
        print(f"Schema updated: {credential['data']['schema_updated_at']}")
    assert credential.has_schema is True
    assert isinstance(credential.schema_updated_at, dt.datetime)
    assert credential.schema_updated_at.tzinfo is not None
    schema = client.credentials.get_schema(credential_id=db_credential.id)
    tables = {t.name: t for t in schema.tables}
    assert {"customers", "orders", "revenue_by_region"} <= set(tables)
    assert tables["revenue_by_region"].kind == "view"
    assert tables["customers"].description == "One row per paying customer"
    orders = {c.name: c for c in tables["orders"].columns}
    assert orders["total"].data_type.startswith("numeric") and orders["total"].nullable is False
    assert orders["total"].default_value == "0"
    assert tables["orders"].primary_key == ("id",)
    assert "CREATE TABLE" in schema.ddl

    # Deleting credentials: soft, so the metadata stays readable.
    deleted = client.credentials.delete(credential_id=db_credential.id)
    assert deleted.deleted_at is not None and deleted.masked_content == ""
    assert client.credentials.get(credential_id=db_credential.id).deleted_at is not None
    live = {c.id for c in client.credentials.list()}
    assert db_credential.id not in live and tool_credential.id in live

    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "Valid: False" in out and "Schema updated: 20" in out
    client.close()
