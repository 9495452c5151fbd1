"""The AsyncClient: the same calls, awaited, with the same objects and errors."""

from __future__ import annotations

import pytest

import credvault
from conftest import VaultStack


async def test_the_async_client_walks_the_document(stack: VaultStack, workspace: str) -> None:
    async with credvault.AsyncClient(stack.grpc, token=stack.token_for(workspace)) as client:
        credential = await client.credentials.create(
            name="OpenAI Production", category="llm", type="openai",
            value="sk-proj-your-openai-api-key", description="Production OpenAI API key",
        )
        assert (await client.credentials.set_default(credential_id=credential.id)).is_default
        db = await client.credentials.create(name="Analytics", category="data_warehouse",
                                             type="postgresql", value=stack.analytics_url)
        assert (await client.credentials.validate(credential_id=db.id))["data"]["is_valid"] is True
        found = await client.credentials.discover_schema(credential_id=db.id)
        assert found.table_count == 3 and found.truncated is False
        got = await client.credentials.get(credential_id=db.id)
        assert got["data"]["has_schema"] and got.schema_updated_at is not None
        schema = await client.credentials.get_schema(db.id)
        assert {t.name for t in schema.tables} == {"customers", "orders", "revenue_by_region"}
        updated = await client.credentials.update(credential_id=credential.id, value="sk-proj-" + "2" * 24,
                                                  name="Updated Name")
        assert updated.name == "Updated Name" and updated.masked_content == "sk-pr...2222"
        assert (await client.access(type="openai")).reveal() == "sk-proj-" + "2" * 24
        tested = await client.credentials.test(type="postgresql", value="postgresql://u:p@127.0.0.1:9/db")
        assert tested.is_valid is False and tested.outcome == "unreachable" and tested.credential is None
        types = await client.credentials.types(category="vector_store")
        assert {t.type for t in types} >= {"pinecone", "qdrant"}
        deleted = await client.credentials.delete(credential_id=credential.id)
        assert deleted.deleted_at is not None
        with pytest.raises(credvault.FailedPrecondition):
            await client.access(type="openai")
        with pytest.raises(credvault.NotFound):
            await client.credentials.get("00000000-0000-4000-8000-000000000000")


def test_the_catalogue_lists_types_with_their_fields(client: credvault.Client) -> None:
    types = {t.type: t for t in client.credentials.types()}
    assert len(types) >= 56
    bedrock = types["bedrock"]
    assert bedrock.category == "llm" and bedrock.primary_secret_field == "secret_access_key"
    assert {f.name for f in bedrock.fields} >= {"access_key_id", "secret_access_key", "region"}
    assert types["openai"].product_name == "openAIApi"
    assert types["postgresql"].supports_schema_discovery is True
