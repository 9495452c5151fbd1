"""The real stack for the suite: ``test-stack`` (built by ``cargo build --workspace --bins``)
starts Postgres, the kms and credentials-api once per run; tests talk to it over gRPC."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

import credvault

REPO = Path(__file__).resolve().parents[3]


class VaultStack:
    """A running ``test-stack`` and its commands."""

    def __init__(self) -> None:
        binary = Path(os.environ.get("CREDVAULT_TEST_STACK", REPO / "target" / "debug" / "test-stack"))
        if not binary.exists():
            pytest.fail(f"{binary} is missing: run `cargo build --workspace --bins` first", pytrace=False)
        self.log = open(REPO / "target" / "sdk-python-stack.log", "wb")
        self.process = subprocess.Popen(
            [str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True
        )
        self._lock = threading.Lock()
        info = self._read()
        self.grpc: str = info["grpc"]
        self.http: str = info["http"]
        self.workspace: str = info["workspace"]
        self.token: str = info["token"]
        self.analytics_url: str = info["analytics_url"]

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"test-stack exited; see {self.log.name}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def command(self, line: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        with self._lock:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
            return self._read()

    def token_for(self, workspaces: str, permissions: str = "read,write,access", subject: str = "") -> str:
        token: str = self.command(f"token {workspaces} {permissions} {subject}".strip())["token"]
        return token

    def stop(self) -> None:
        """Stops the stack; it exits non-zero when a process logged an ERROR no test expected."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        status = self.process.wait(timeout=60)
        self.log.close()
        assert status == 0, f"test-stack exited with {status}: see {self.log.name}"


@pytest.fixture(scope="session")
def stack() -> Iterator[VaultStack]:
    s = VaultStack()
    yield s
    s.stop()


@pytest.fixture
def workspace() -> str:
    """A workspace of the test's own, so tests never see each other's credentials."""
    return f"ws-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(stack: VaultStack, workspace: str) -> Iterator[credvault.Client]:
    with credvault.Client(stack.grpc, token=stack.token_for(workspace), workspace=workspace) as c:
        yield c


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"
