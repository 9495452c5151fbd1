"""Key providers: callables that fetch a provider key from the vault when a client needs it.

Agent frameworks and provider SDKs accept a function where they take an API key, and call it
before requests. A provider keeps the key for ``ttl`` seconds so a busy agent makes one audited
access per ``ttl``, not one per request; concurrent callers share one fetch; ``refresh()`` drops
the cached key (after a rotation) so the next call fetches the new one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Awaitable, Callable, Optional

from .secret import REDACTED


class KeyProvider:
    """``provider()`` returns the current key (a ``str``), fetching it at most once per ``ttl``."""

    def __init__(self, fetch: Callable[[], str], ttl: float) -> None:
        if ttl < 0:
            raise ValueError("ttl must be 0 or more seconds")
        self._fetch = fetch
        self._ttl = ttl
        self._lock = threading.Lock()
        self._key: Optional[str] = None
        self._expires = 0.0

    def __call__(self) -> str:
        with self._lock:
            if self._key is None or time.monotonic() >= self._expires:
                self._key = self._fetch()
                self._expires = time.monotonic() + self._ttl
            return self._key

    def refresh(self) -> None:
        """Forgets the cached key: the next call fetches it again."""
        with self._lock:
            self._key = None

    def __repr__(self) -> str:
        return f"KeyProvider(ttl={self._ttl}, key={REDACTED!r})"


class AsyncKeyProvider:
    """``await provider()`` returns the current key, fetching it at most once per ``ttl``."""

    def __init__(self, fetch: Callable[[], Awaitable[str]], ttl: float) -> None:
        if ttl < 0:
            raise ValueError("ttl must be 0 or more seconds")
        self._fetch = fetch
        self._ttl = ttl
        self._lock: Optional[asyncio.Lock] = None
        self._key: Optional[str] = None
        self._expires = 0.0

    async def __call__(self) -> str:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._key is None or time.monotonic() >= self._expires:
                self._key = await self._fetch()
                self._expires = time.monotonic() + self._ttl
            return self._key

    def refresh(self) -> None:
        """Forgets the cached key: the next call fetches it again."""
        self._key = None

    def __repr__(self) -> str:
        return f"AsyncKeyProvider(ttl={self._ttl}, key={REDACTED!r})"
