"""The SDK's version is the vault's, whose protos it is built from."""

from __future__ import annotations

import importlib.metadata
import re

import credvault
from conftest import REPO


def test_the_version_is_the_workspace_version() -> None:
    cargo = (REPO / "Cargo.toml").read_text()
    section = cargo.split("[workspace.package]", 1)[1]
    match = re.search(r'^version\s*=\s*"([^"]+)"', section, re.M)
    assert match, "Cargo.toml has a workspace version"
    assert credvault.__version__ == match.group(1)
    assert importlib.metadata.version("credvault") == match.group(1)
    assert credvault.PROTO_PACKAGE == "credentials.v1"
