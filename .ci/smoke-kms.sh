#!/usr/bin/env bash
# Starts the real kms on a Unix socket and checks, with grpcurl, that reflection lists the kms
# service, that health answers SERVING, and that a data key round-trips.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
kms_pid=
cleanup() { [ -n "$kms_pid" ] && kill "$kms_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

target/debug/kms keyring create --file "$dir/keyring.json"
target/debug/kms serve --keyring "$dir/keyring.json" --socket "$dir/kms.sock" 2>"$dir/kms.log" &
kms_pid=$!
for _ in $(seq 100); do [ -S "$dir/kms.sock" ] && break; sleep 0.05; done

g() { grpcurl -plaintext -unix -authority localhost "$@"; }
fail() { echo "FAIL: $*"; cat "$dir/kms.log"; exit 1; }

g "$dir/kms.sock" list | tee "$dir/list"
grep -qx 'kms.v1.KeyManagementService' "$dir/list" || fail "list does not show kms.v1.KeyManagementService"

g "$dir/kms.sock" grpc.health.v1.Health/Check | tee "$dir/health"
grep -q '"SERVING"' "$dir/health" || fail "health is not SERVING"

ctx='"encryption_context":{"workspace_id":"ws-1","credential_id":"c1"}'
wrapped=$(g -d "{$ctx}" "$dir/kms.sock" kms.v1.KeyManagementService/GenerateDataKey \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["wrappedKey"])')
g -d "{\"wrapped_key\":\"$wrapped\",$ctx}" "$dir/kms.sock" kms.v1.KeyManagementService/UnwrapDataKey \
  | grep -q plaintextKey || fail "unwrap failed"
if g -d "{\"wrapped_key\":\"$wrapped\",\"encryption_context\":{\"workspace_id\":\"ws-2\"}}" \
  "$dir/kms.sock" kms.v1.KeyManagementService/UnwrapDataKey 2>"$dir/err"; then
  fail "a wrong context was accepted"
fi
grep -q PermissionDenied "$dir/err" || fail "a wrong context did not give PermissionDenied"

if grep -q '"level":"ERROR"' "$dir/kms.log"; then fail "the kms logged an ERROR"; fi
echo "kms smoke test passed"
