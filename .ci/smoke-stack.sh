#!/usr/bin/env bash
# Runs the README's run command (scripts/dev.sh), then, with grpcurl alone, walks the user's path:
# list services, create an OpenAI and a Bedrock credential, see only masked previews, set a
# default, read its plaintext with an access token (and be refused without one), update it,
# delete it. Then stops the stack, starts it again, and checks the data is still there.
set -euo pipefail
cd "$(dirname "$0")/.."
port=50151
out=$(mktemp)
dev_pid=
fail() { echo "FAIL: $*"; echo "--- dev.sh output:"; cat "$out"; echo "--- api log:"; tail -20 .dev/api.log || true; exit 1; }
stop_stack() {
  [ -n "$dev_pid" ] || return 0
  kill -TERM "$dev_pid" 2>/dev/null || true
  wait "$dev_pid" 2>/dev/null || true
  dev_pid=
}
trap stop_stack EXIT

start_stack() {
  : >"$out"
  PORT=$port scripts/dev.sh >"$out" 2>&1 &
  dev_pid=$!
  for _ in $(seq 600); do
    grep -q 'Press Ctrl-C' "$out" && break
    kill -0 "$dev_pid" 2>/dev/null || fail "scripts/dev.sh exited"
    sleep 0.5
  done
  grep -q 'Press Ctrl-C' "$out" || fail "the stack did not start"
  TOKEN=$(sed -n 's/^export TOKEN=//p' "$out")
  [ -n "$TOKEN" ] || fail "no token printed"
}

g() { grpcurl -plaintext -H "authorization: Bearer $TOKEN" "$@" "localhost:$port" "${rpc}"; }
call() { rpc=$1; shift; g "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
C=credentials.v1.CredentialsService
A=credentials.v1.AccessService

rm -rf .dev
start_stack

services=$(grpcurl -plaintext "localhost:$port" list)
echo "$services"
grep -qx "$C" <<<"$services" || fail "list lacks $C"
grep -qx "$A" <<<"$services" || fail "list lacks $A"
grep -q SERVING <<<"$(grpcurl -plaintext "localhost:$port" grpc.health.v1.Health/Check)" || fail "not SERVING"

openai=$(call $C/CreateCredential -d '{"name":"OpenAI Production","type":"openai","value":{"secret":"sk-proj-smoke-0123456789abcdefwxyz"}}' | json 'd["credential"]["id"]')
call $C/CreateCredential -d '{"name":"Bedrock","type":"bedrock","value":{"fields":{"values":{"access_key_id":"AKIAIOSFODNN7EXAMPLE","secret_access_key":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","region":"us-east-1"}}}}' >/dev/null
listed=$(call $C/ListCredentials)
grep -q '"maskedContent": "sk-pr...wxyz"' <<<"$listed" || fail "no masked preview in list"
if grep -q 'smoke-0123456789\|EXAMPLEKEY' <<<"$listed"; then fail "a secret in a list response"; fi

grep -q '"isDefault": true' <<<"$(call $C/SetDefaultCredential -d "{\"id\":\"$openai\"}")" || fail "set default"
grep -q '"secret": "sk-proj-smoke-0123456789abcdefwxyz"' <<<"$(call $A/AccessCredential -d '{"default_for_type":"openai"}')" \
  || fail "access with the access permission"

reader=$(target/debug/credentials-api dev-token --hs256-secret-file .dev/jwt-secret --workspace dev --permissions read 2>/dev/null)
if grpcurl -plaintext -H "authorization: Bearer $reader" -d '{"default_for_type":"openai"}' "localhost:$port" $A/AccessCredential 2>"$out.err"; then
  fail "access without the access permission succeeded"
fi
grep -q PermissionDenied "$out.err" || fail "no PermissionDenied without the access permission"

grep -q '"etag": "v3"' <<<"$(call $C/UpdateCredential -d "{\"id\":\"$openai\",\"etag\":\"v2\",\"value\":{\"secret\":\"sk-proj-rotated-0123456789abcdef1234\"}}")" || fail "update"
grep -q 'sk-proj-rotated' <<<"$(call $A/AccessCredential -d "{\"id\":\"$openai\"}")" || fail "access after update"

# Bad input: a clear INVALID_ARGUMENT naming the field.
if call $C/CreateCredential -d '{"name":"x","type":"bedrock","value":{"secret":"k"}}' 2>"$out.err"; then fail "bad input accepted"; fi
grep -q 'InvalidArgument' "$out.err" && grep -q 'value.secret' "$out.err" || fail "bad input: $(cat "$out.err")"

# Delete this one; it must be gone from list and access.
grep -q deletedAt <<<"$(call $C/DeleteCredential -d "{\"id\":\"$openai\"}")" || fail "delete"
grep -q "$openai" <<<"$(call $C/ListCredentials)" && fail "deleted credential still listed"
if call $A/AccessCredential -d "{\"id\":\"$openai\"}" 2>"$out.err"; then fail "deleted credential accessible"; fi
grep -q NotFound "$out.err" || fail "deleted credential: $(cat "$out.err")"

# Stop and start again: the Bedrock credential is still there and still decrypts.
stop_stack
pgrep -f "$PWD/target/debug/(kms|credentials-api) serve" && fail "processes left after stopping"
start_stack
bedrock=$(call $C/ListCredentials | json '[c["id"] for c in d["credentials"] if c["type"]=="bedrock"][0]')
grep -q 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' <<<"$(call $A/AccessCredential -d "{\"id\":\"$bedrock\"}")" || fail "data lost across restart"

if grep -q '"level":"ERROR"' .dev/api.log .dev/kms.log; then fail "an ERROR was logged"; fi
echo "stack smoke test passed"
