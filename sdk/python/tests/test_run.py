"""`credvault run` puts the values in the child's environment only, and never prints them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import credvault
from conftest import VaultStack

CHILD = """
import json, os, sys
names = ["OPENAI_API_KEY", "DB_URL", "AWS_ACCESS_KEY_ID", "CREDVAULT_TOKEN"]
json.dump({n: os.environ.get(n) for n in names}, open(sys.argv[1], "w"))
"""


def credvault_cli() -> str:
    found = shutil.which("credvault", path=str(Path(sys.executable).parent))
    assert found, "the credvault command is installed beside the interpreter"
    return found


def run(stack: VaultStack, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CREDVAULT_TARGET": stack.grpc, "CREDVAULT_TOKEN": token}
    return subprocess.run([credvault_cli(), "run", *args], env=env, capture_output=True, text=True, timeout=60)


def test_run_passes_the_values_to_the_child_only(stack: VaultStack, workspace: str, tmp_path: Path) -> None:
    token = stack.token_for(workspace)
    key, password = f"sk-MARKER-{uuid.uuid4().hex}", f"MARKER{uuid.uuid4().hex[:12]}"
    db_url = f"postgresql://app:{password}@db.internal:5432/app"
    with credvault.Client(stack.grpc, token=token) as client:
        client.credentials.create(name="llm", type="openai", value=key, make_default=True)
        db = client.credentials.create(name="db", type="postgresql", value=db_url)
        client.credentials.create(name="aws", type="bedrock", make_default=True, value={
            "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "MARKER-aws", "region": "eu-west-1"})

    out = tmp_path / "child.json"
    done = run(stack, token, "--env", "OPENAI_API_KEY=type:openai", "--env", f"DB_URL=id:{db.id}",
               "--env", "AWS_ACCESS_KEY_ID=type:bedrock#access_key_id",
               "--", sys.executable, "-c", CHILD, str(out))
    assert done.returncode == 0, done.stderr
    import json

    seen = json.loads(out.read_text())
    assert seen == {"OPENAI_API_KEY": key, "DB_URL": db_url, "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
                    "CREDVAULT_TOKEN": None}
    assert "MARKER" not in done.stdout + done.stderr
    assert "OPENAI_API_KEY" not in os.environ or os.environ["OPENAI_API_KEY"] != key


def test_run_exits_with_the_childs_status_and_fails_clearly(stack: VaultStack, workspace: str) -> None:
    token = stack.token_for(workspace)
    assert run(stack, token, "--", sys.executable, "-c", "raise SystemExit(7)").returncode == 7

    missing = run(stack, token, "--env", "KEY=type:anthropic", "--", "true")
    assert missing.returncode == 1
    assert missing.stderr.startswith("credvault: --env KEY: FAILED_PRECONDITION")

    bad = run(stack, token, "--env", "KEY=openai", "--", "true")
    assert bad.returncode == 2 and "type:<type>" in bad.stderr
    assert run(stack, token, "--env", "KEY=type:openai").returncode == 2  # no command

    denied = run(stack, stack.token_for(workspace, "read"), "--env", "KEY=type:openai", "--", "true")
    assert denied.returncode == 1 and "PERMISSION_DENIED" in denied.stderr
