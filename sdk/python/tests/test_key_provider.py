"""Key providers fetch the key at call time, keep it for their ttl, and drop it on refresh()."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Iterator

import openai
import pytest

import credvault
from conftest import VaultStack, unique

OLD = "sk-proj-" + "o" * 24
NEW = "sk-proj-" + "n" * 24


def accesses(client: credvault.Client, credential_id: str) -> int:
    return sum(e.action == "access" for e in client.audit_events.list(credential_id=credential_id))


def test_the_key_is_cached_for_its_ttl_and_refresh_drops_it(client: credvault.Client) -> None:
    created = client.credentials.create(name=unique("cached"), type="openai", value=OLD, make_default=True)
    provider = client.key_provider("openai", ttl=600)
    assert [provider() for _ in range(5)] == [OLD] * 5
    assert accesses(client, created.id) == 1  # one audited access for five calls

    client.credentials.update(created.id, value=NEW)
    assert provider() == OLD  # still cached
    provider.refresh()
    assert provider() == NEW and provider() == NEW
    assert accesses(client, created.id) == 2

    by_id = client.key_provider(credential_id=created.id, ttl=0)  # ttl 0: every call fetches
    assert by_id() == NEW and by_id() == NEW
    assert accesses(client, created.id) == 4
    with pytest.raises(TypeError):
        client.key_provider("openai", credential_id=created.id)


async def test_the_async_provider_shares_one_fetch(stack: VaultStack, workspace: str) -> None:
    import asyncio

    async with credvault.AsyncClient(stack.grpc, token=stack.token_for(workspace)) as client:
        created = await client.credentials.create(name="async", type="anthropic", value="sk-ant-" + "a" * 30,
                                                  make_default=True)
        provider = client.key_provider("anthropic", ttl=600)
        keys = await asyncio.gather(*(provider() for _ in range(10)))
        assert set(keys) == {"sk-ant-" + "a" * 30}
        events = [e async for e in client.audit_events.list(credential_id=created.id)]
        assert sum(e.action == "access" for e in events) == 1


class _FakeOpenAI(http.server.BaseHTTPRequestHandler):
    """OpenAI's documented chat completions endpoint, answering one canned completion."""

    seen: list[str] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(self.headers["Authorization"])
        answer = json.dumps({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "pong"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_openai() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _FakeOpenAI.seen = []
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_the_openai_sdk_takes_the_provider_as_its_api_key(client: credvault.Client, fake_openai: str) -> None:
    created = client.credentials.create(name=unique("openai"), type="openai", value=OLD, make_default=True)
    provider = client.key_provider("openai", ttl=600)
    llm = openai.OpenAI(api_key=provider, base_url=fake_openai, max_retries=0)

    def ask() -> str | None:
        r = llm.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "ping"}])
        return r.choices[0].message.content

    assert ask() == "pong"
    client.credentials.update(created.id, value=NEW)
    provider.refresh()  # after a rotation: the next request carries the new key
    assert ask() == "pong"
    assert _FakeOpenAI.seen == [f"Bearer {OLD}", f"Bearer {NEW}"]


async def test_the_async_openai_sdk_takes_the_async_provider(
    stack: VaultStack, workspace: str, fake_openai: str
) -> None:
    async with credvault.AsyncClient(stack.grpc, token=stack.token_for(workspace)) as client:
        await client.credentials.create(name="openai", type="openai", value=OLD, make_default=True)
        llm = openai.AsyncOpenAI(api_key=client.key_provider("openai"), base_url=fake_openai, max_retries=0)
        r = await llm.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "ping"}])
        assert r.choices[0].message.content == "pong"
        assert _FakeOpenAI.seen == [f"Bearer {OLD}"]


def test_langchain_chat_openai_takes_the_provider(client: credvault.Client, fake_openai: str) -> None:
    from langchain_openai import ChatOpenAI

    client.credentials.create(name=unique("lc"), type="openai", value=OLD, make_default=True)
    chat = ChatOpenAI(model="gpt-4o-mini", api_key=client.key_provider("openai"), base_url=fake_openai,
                      max_retries=0)
    assert chat.invoke("ping").content == "pong"
    assert _FakeOpenAI.seen == [f"Bearer {OLD}"]
