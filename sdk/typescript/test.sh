#!/usr/bin/env bash
# The TypeScript SDK's checks: installs the locked packages from npm (npm ci), generates the code
# from ../../proto (buf + protoc-gen-es), type-checks in strict mode and runs the node --test
# suite against the real stack (target/debug/test-stack: run `cargo build --workspace --bins`
# first).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --silent --no-audit --no-fund
npm run --silent typecheck
npm test --silent
