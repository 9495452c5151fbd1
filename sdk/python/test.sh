#!/usr/bin/env bash
# The Python SDK's checks: builds the package from ../../proto into a venv of its own
# (target/sdk-python), type-checks the public surface with mypy --strict, and runs the pytest
# suite against the real stack (target/debug/test-stack: run `cargo build --workspace --bins`
# first). Only PyPI is needed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/target/sdk-python"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/pip" install --quiet --disable-pip-version-check)
# The package itself, built as a user would (not editable: the build generates the protos), and
# what the tests need: pytest, mypy with the grpc/protobuf stubs, and the OpenAI SDK the
# key-provider tests hand a provider to, and LangChain's ChatOpenAI.
"${pip[@]}" "$here[test]" "openai==3.57.0" "langchain-openai==1.7.4"
cd "$here"
echo "mypy --strict on the installed package"
"$venv/bin/mypy" --strict --config-file "$here/pyproject.toml" -p credvault
echo "pytest against the real stack"
cd "$here/tests"
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
