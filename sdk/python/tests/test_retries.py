"""UNAVAILABLE is retried with backoff: a call made while the API restarts completes."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import credvault
from conftest import VaultStack, unique

KEY = "sk-proj-" + "r" * 24


def test_a_call_during_an_api_restart_completes_after_it(stack: VaultStack, workspace: str) -> None:
    token = stack.token_for(workspace)
    with credvault.Client(stack.grpc, token=token, max_retries=10) as client, \
            credvault.Client(stack.grpc, token=token, max_retries=0) as impatient:
        created = client.credentials.create(name=unique("restart"), type="openai", value=KEY)
        stack.command("stop-api")
        try:
            with pytest.raises(credvault.Unavailable):
                impatient.credentials.get(created.id)
            answers: list[object] = []
            caller = threading.Thread(target=lambda: answers.append(client.credentials.get(created.id)))
            caller.start()
            time.sleep(1.0)
            assert caller.is_alive() and not answers, "the call waits while the API is down"
        finally:
            stack.command("start-api")
        caller.join(timeout=30)
        assert [a.id for a in answers] == [created.id]  # type: ignore[attr-defined]
        # The channel reconnected: later calls work without retries.
        assert impatient.credentials.get(created.id).etag == created.etag


async def test_an_async_call_during_an_api_restart_completes_after_it(
    stack: VaultStack, workspace: str
) -> None:
    async with credvault.AsyncClient(stack.grpc, token=stack.token_for(workspace), max_retries=10) as client:
        created = await client.credentials.create(name=unique("restart"), type="openai", value=KEY)
        await asyncio.to_thread(stack.command, "stop-api")
        try:
            call = asyncio.ensure_future(client.access(created.id))
            await asyncio.sleep(1.0)
            assert not call.done()
        finally:
            await asyncio.to_thread(stack.command, "start-api")
        secret = await asyncio.wait_for(call, timeout=30)
        assert secret.reveal() == KEY
