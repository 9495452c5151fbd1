"""``credvault run``: runs a command with credentials from the vault in its environment.

    credvault run --env OPENAI_API_KEY=type:openai --env DB_URL=id:<uuid> -- python agent.py

Each ``--env NAME=REF`` is resolved through the access API (audited) before the command starts;
``REF`` is ``type:<type>`` (the workspace's default of that type) or ``id:<credential id>``,
optionally followed by ``#<field>`` for one field of a multi-field value
(``type:bedrock#access_key_id``). The values go into the command's environment only: they are
never printed, and ``CREDVAULT_TOKEN`` is removed from that environment unless ``--keep-token``.
The command replaces this process (``exec``), so its exit status and signals are its own.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import NoReturn, Optional, Sequence

from . import errors
from ._client import Client

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REF = re.compile(r"^(type|id):([^#]+)(?:#(.+))?$")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="credvault", description="Credentials vault command line.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run a command with credentials in its environment",
        description="Resolve each --env reference through the vault and run COMMAND with them "
        "in its environment. Reads CREDVAULT_TARGET, CREDVAULT_TOKEN and CREDVAULT_WORKSPACE.",
    )
    run.add_argument("--env", action="append", default=[], metavar="NAME=REF",
                     help="NAME=type:<type>[#field] or NAME=id:<credential id>[#field]; repeatable")
    run.add_argument("--target", help="the vault's gRPC address (default $CREDVAULT_TARGET or localhost:50051)")
    run.add_argument("--workspace", help="the workspace (default $CREDVAULT_WORKSPACE, or the token's only one)")
    run.add_argument("--token-file", help="read the token from this file instead of $CREDVAULT_TOKEN")
    run.add_argument("--ca-file", help="trust this CA bundle (PEM) for the vault's TLS certificate")
    run.add_argument("--keep-token", action="store_true",
                     help="leave CREDVAULT_TOKEN in the command's environment")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    return p


def _fail(message: str, status: int = 1) -> NoReturn:
    print(f"credvault: {message}", file=sys.stderr)
    raise SystemExit(status)


def _references(pairs: Sequence[str]) -> list[tuple[str, str, str, Optional[str]]]:
    refs = []
    for pair in pairs:
        name, sep, ref = pair.partition("=")
        if not sep or not _NAME.match(name):
            _fail(f"--env {name!r}: expected NAME=REF with NAME a variable name", 2)
        m = _REF.match(ref)
        if not m:
            _fail(f"--env {name}: expected type:<type>[#field] or id:<credential id>[#field]", 2)
        refs.append((name, m.group(1), m.group(2), m.group(3)))
    return refs


def run(args: argparse.Namespace) -> NoReturn:
    """Resolves the references and replaces this process with the command."""
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        _fail("no command given: credvault run --env NAME=REF -- COMMAND [ARGS...]", 2)
    refs = _references(args.env)
    token = None
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as e:
            _fail(f"--token-file: {e.strerror}", 2)
    env = dict(os.environ)
    name = ""
    try:
        with Client(args.target, token=token, workspace=args.workspace, tls=args.ca_file) as client:
            for name, kind, selector, field in refs:
                secret = (
                    client.access(selector) if kind == "id" else client.access(type=selector)
                )
                if field is None:
                    env[name] = secret.reveal()
                elif field in secret.fields:
                    env[name] = secret.fields[field]
                else:
                    _fail(f"--env {name}: the credential has no field {field!r} "
                          f"(it has {', '.join(sorted(secret.fields))})", 2)
    except errors.VaultError as e:
        _fail(f"--env {name}: {e}" if name else str(e))
    if not args.keep_token:
        env.pop("CREDVAULT_TOKEN", None)
    try:
        os.execvpe(command[0], command, env)
    except OSError as e:
        _fail(f"cannot run {command[0]!r}: {e.strerror}", 127)


def main(argv: Optional[Sequence[str]] = None) -> NoReturn:
    """The ``credvault`` command."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    run(args)


if __name__ == "__main__":
    main()
