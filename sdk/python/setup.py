"""Build hook: compiles the vault's protos into ``credvault/_gen`` before the package is built.

The generated modules import each other as top-level ``credentials.v1``; they are rewritten to
``credvault._gen.credentials.v1`` so the SDK never claims a bare top-level ``credentials`` package
in the user's environment. ``google.api`` comes from googleapis-common-protos, as for every Google
gRPC client, so the descriptor pool holds one copy of it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PROTOS = ("credentials/v1/resources.proto", "credentials/v1/credentials_service.proto",
          "credentials/v1/access_service.proto")


def proto_root() -> Path:
    """The repository's proto/ (or $CREDVAULT_PROTO_DIR, or a copy shipped in an sdist)."""
    for candidate in (os.environ.get("CREDVAULT_PROTO_DIR"), HERE / "proto", HERE.parent.parent / "proto"):
        if candidate and (Path(candidate) / PROTOS[0]).is_file():
            return Path(candidate)
    raise SystemExit("credvault build: cannot find the vault's proto/ directory (set CREDVAULT_PROTO_DIR)")


def generate(out: Path) -> None:
    from grpc_tools import protoc  # build requirement

    import grpc_tools

    root = proto_root()
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    out.mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"-I{root}", f"-I{root / 'third_party'}", f"-I{well_known}",
            f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *PROTOS]
    if protoc.main(args) != 0:
        raise SystemExit("credvault build: protoc failed")
    for path in (out / "credentials" / "v1").iterdir():
        if path.suffix in (".py", ".pyi"):
            text = re.sub(r"^from credentials\.v1 import", "from credvault._gen.credentials.v1 import",
                          path.read_text(), flags=re.M)
            path.write_text(text)
    for package in (out, out / "credentials", out / "credentials" / "v1"):
        (package / "__init__.py").write_text('"""Generated from the vault\'s protos; do not edit."""\n')


class BuildWithProtos(build_py):
    """build_py that first generates credvault/_gen into the build tree."""

    def run(self) -> None:
        super().run()
        generate(Path(self.build_lib) / "credvault" / "_gen")


setup(cmdclass={"build_py": BuildWithProtos})
