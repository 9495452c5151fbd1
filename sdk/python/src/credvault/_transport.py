"""Channels, call metadata and the retry policy, shared by the sync and async clients."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar, Union

import grpc
import grpc.aio

from . import errors
from ._version import __version__

TLS = Union[bool, str, os.PathLike[str], None]
"""``None``: plaintext to loopback, TLS elsewhere; ``True``: TLS with the system's roots;
``False``: plaintext; a path: TLS trusting that CA bundle (PEM)."""

DEFAULT_TARGET = "localhost:50051"
DEFAULT_TIMEOUT = 30.0
# Validation, test and discovery may take up to the server's 125 s minimum.
PROBE_TIMEOUT = 130.0
BACKOFF_BASE = 0.1
BACKOFF_CAP = 2.0
_OPTIONS = [("grpc.primary_user_agent", f"credvault-python/{__version__}")]

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """What both clients are configured with."""

    target: str
    token: str
    workspace: str
    tls: bool
    root_certificates: Optional[bytes]
    timeout: float
    max_retries: int

    @classmethod
    def resolve(
        cls,
        target: Optional[str],
        token: Optional[str],
        workspace: Optional[str],
        tls: TLS,
        timeout: float,
        max_retries: int,
    ) -> "Settings":
        target = target or os.environ.get("CREDVAULT_TARGET") or DEFAULT_TARGET
        token = token if token is not None else os.environ.get("CREDVAULT_TOKEN")
        if not token:
            raise errors.ConfigurationError(
                "no token: pass token=... or set CREDVAULT_TOKEN (a JWT for the vault)"
            )
        workspace = workspace if workspace is not None else os.environ.get("CREDVAULT_WORKSPACE", "")
        if target.startswith("https://"):
            target, tls = target.removeprefix("https://"), True if tls is None else tls
        elif target.startswith("http://"):
            target, tls = target.removeprefix("http://"), False if tls is None else tls
        if max_retries < 0:
            raise errors.ConfigurationError("max_retries must be 0 or more")
        roots = None
        if tls is None:
            tls = not _is_loopback(target)
        elif isinstance(tls, (str, os.PathLike)):
            path = Path(tls)
            try:
                roots = path.read_bytes()
            except OSError as e:
                raise errors.ConfigurationError(f"tls: cannot read the CA file {path}: {e.strerror}") from None
            tls = True
        return cls(target, token, workspace, bool(tls), roots, timeout, max_retries)

    def metadata(self, request_id: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"), ("x-request-id", request_id))

    def channel(self) -> grpc.Channel:
        if self.tls:
            creds = grpc.ssl_channel_credentials(root_certificates=self.root_certificates)
            return grpc.secure_channel(self.target, creds, options=_OPTIONS)
        return grpc.insecure_channel(self.target, options=_OPTIONS)

    def aio_channel(self) -> grpc.aio.Channel:
        if self.tls:
            creds = grpc.ssl_channel_credentials(root_certificates=self.root_certificates)
            return grpc.aio.secure_channel(self.target, creds, options=_OPTIONS)
        return grpc.aio.insecure_channel(self.target, options=_OPTIONS)

    def __repr__(self) -> str:
        return f"Settings(target={self.target!r}, workspace={self.workspace!r}, tls={self.tls})"


def _is_loopback(target: str) -> bool:
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    host = target.removeprefix("dns:///").removeprefix("ipv4:").removeprefix("ipv6:")
    if host.startswith("["):
        host = host[1 : host.find("]")]
    elif host.count(":") == 1:
        host = host.split(":")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def backoff(attempt: int) -> float:
    """Equal jitter: half of ``min(cap, base * 2**attempt)`` for sure, the other half at random,
    so retries spread out but their total wait has a floor an outage can be sized against."""
    delay: float = min(BACKOFF_CAP, BACKOFF_BASE * 2.0**attempt)
    return delay / 2 + random.uniform(0, delay / 2)


def _code(e: grpc.RpcError) -> grpc.StatusCode:
    return e.code()


def request_id() -> str:
    """A fresh id for one call, sent on each of its attempts: the server's logs and audit events
    carry it, so an error's ``request_id`` finds them."""
    return secrets.token_hex(12)


def call(settings: Settings, method: Callable[..., T], request: Any, timeout: Optional[float]) -> T:
    """Calls ``method``, retrying ``UNAVAILABLE`` only, and raises the SDK's exceptions."""
    attempt, rid = 0, request_id()
    while True:
        try:
            return method(request, timeout=timeout or settings.timeout, metadata=settings.metadata(rid))
        except grpc.RpcError as e:
            if _code(e) == grpc.StatusCode.UNAVAILABLE and attempt < settings.max_retries:
                time.sleep(backoff(attempt))
                attempt += 1
                continue
            # `from None`: the RpcError's debug string adds nothing a caller can act on.
            raise errors.from_status(_code(e), e.details() or "", e.trailing_metadata(), rid) from None


async def acall(settings: Settings, method: Callable[..., Any], request: Any, timeout: Optional[float]) -> Any:
    """The async form of :func:`call`."""
    attempt, rid = 0, request_id()
    while True:
        try:
            return await method(request, timeout=timeout or settings.timeout, metadata=settings.metadata(rid))
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.UNAVAILABLE and attempt < settings.max_retries:
                await asyncio.sleep(backoff(attempt))
                attempt += 1
                continue
            raise errors.from_status(e.code(), e.details() or "", e.trailing_metadata(), rid) from None
