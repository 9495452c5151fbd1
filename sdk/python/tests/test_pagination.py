"""Listings follow page tokens: every credential once, newest first, in pages of the asked size."""

from __future__ import annotations

import credvault
from conftest import VaultStack


def test_list_follows_page_tokens_over_250_credentials(stack: VaultStack, workspace: str) -> None:
    with credvault.Client(stack.grpc, token=stack.token_for(workspace)) as client:
        created = [
            client.credentials.create(name=f"key {i:03}", type="openai", value=f"sk-{i:03}-{'x' * 24}").id
            for i in range(250)
        ]
        listed = [c.id for c in client.credentials.list(page_size=7)]
        assert listed == created[::-1]  # newest first, each once

        pages = list(client.credentials.list(page_size=7).pages)
        assert [len(p) for p in pages] == [7] * 35 + [5]
        assert pages[-1].next_page_token == "" and all(p.next_page_token for p in pages[:-1])

        # The default page size (50) and a filter that matches nothing.
        assert len(list(client.credentials.list())) == 250
        assert list(client.credentials.list(type="anthropic")) == []


async def test_async_list_follows_page_tokens(stack: VaultStack, workspace: str) -> None:
    async with credvault.AsyncClient(stack.grpc, token=stack.token_for(workspace)) as client:
        created = [
            (await client.credentials.create(name=f"k{i}", type="anthropic", value=f"sk-ant-{i:02}-{'y' * 20}")).id
            for i in range(23)
        ]
        listed = [c.id async for c in client.credentials.list(page_size=5)]
        assert listed == created[::-1]
        sizes = [len(page) async for page in client.credentials.list(page_size=5).pages]
        assert sizes == [5, 5, 5, 5, 3]
