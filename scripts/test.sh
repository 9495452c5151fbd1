#!/usr/bin/env bash
# The test command: the workspace's tests, then both SDKs' suites against the real stack
# (they start target/debug/test-stack, hence the build first). Needs Rust, Python 3.10+ and
# Node 20+; the SDK suites install their packages from PyPI and npm into target/ and
# sdk/typescript/node_modules themselves. Arguments are passed to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins
cargo test --workspace "$@"
echo "== Python SDK (sdk/python)"
sdk/python/test.sh
echo "== TypeScript SDK (sdk/typescript)"
sdk/typescript/test.sh
