#!/usr/bin/env bash
# Runs the README's run command (scripts/dev.sh), then, with grpcurl alone, walks the user's path:
# list services, create an OpenAI and a Bedrock credential, see only masked previews, set a
# default, read its plaintext with an access token (and be refused without one), update it,
# delete it. Then the same over HTTP/JSON with curl: the product document's examples on
# /api/v1/credentials as written, the JSON mapping on /v1, errors, and the OpenAPI document.
# Then stops the stack, starts it again, and checks the data is still there.
set -euo pipefail
cd "$(dirname "$0")/.."
port=50151
http_port=50152
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
  PORT=$port HTTP_PORT=$http_port scripts/dev.sh >"$out" 2>&1 &
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

# The same over HTTP/JSON, with curl: first the product document's examples as written.
B=http://localhost:$http_port
grep -q "curl -X POST http://localhost:$http_port/api/v1/credentials" "$out" || fail "dev.sh prints no curl example"
hc() { curl -sS -H "Authorization: Bearer $TOKEN" "$@"; }
created=$(hc -X POST $B/api/v1/credentials -H "Content-Type: application/json" \
  -d '{"name": "My OpenAI Key", "credentialName": "openAIApi", "plainDataObj": {"openAIApiKey": "sk-proj-curl-0123456789abcdefqrst"}}')
echo "$created"
id=$(json 'd["id"]' <<<"$created")
[ "$(json 'd["credentialName"], d["maskedContent"]' <<<"$created")" = "openAIApi sk-pr...qrst" ] || fail "create over HTTP: $created"
grep -q 'encryptedData\|curl-0123456789' <<<"$created" && fail "a secret or ciphertext in the HTTP answer"
listed=$(hc "$B/api/v1/credentials?credentialName=openAIApi")
[ "$(json '[c["name"] for c in d]' <<<"$listed")" = "['My OpenAI Key']" ] || fail "list with filter: $listed"
updated=$(hc -X PUT "$B/api/v1/credentials/$id" -H "Content-Type: application/json" \
  -d '{"name": "Updated OpenAI Key", "plainDataObj": {"openAIApiKey": "sk-new-key-curl-0123456789abcdefmnop"}}')
[ "$(json 'd["name"], d["maskedContent"]' <<<"$updated")" = "Updated OpenAI Key sk-ne...mnop" ] || fail "update over HTTP: $updated"
# The JSON mapping of the gRPC API: the same credential, and its plaintext for the access token.
grep -q '"maskedContent":"sk-ne...mnop"' <<<"$(hc "$B/v1/workspaces/dev/credentials/$id")" || fail "GET over the JSON mapping"
grep -q '"secret":"sk-new-key-curl-0123456789abcdefmnop"' <<<"$(hc -X POST "$B/v1/workspaces/dev/credentials/$id:access")" || fail "access over HTTP"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $reader" -X POST "$B/v1/workspaces/dev/credentials/$id:access")" = 403 ] \
  || fail "access over HTTP without the access permission"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$B/api/v1/credentials")" = 401 ] || fail "HTTP without a token"
bad=$(hc -s -w ' %{http_code}' -X POST $B/v1/workspaces/dev/credentials -H "Content-Type: application/json" -d '{"name": 5}')
grep -q '"field":"name".* 400$' <<<"$bad" || fail "bad JSON input: $bad"
[ "$(json 'd["message"]' <<<"$(hc -X DELETE "$B/api/v1/credentials/$id")")" = "Credential deleted successfully" ] || fail "delete over HTTP"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$B/api/v1/credentials/$id")" = 404 ] || fail "deleted credential still found"
[ "$(json 'd["openapi"]' <<<"$(curl -sS $B/openapi.json)")" = 3.1.0 ] || fail "no OpenAPI document"

# Stop and start again: the Bedrock credential is still there and still decrypts.
stop_stack
pgrep -f "$PWD/target/debug/(kms|credentials-api) serve" && fail "processes left after stopping"
start_stack
bedrock=$(call $C/ListCredentials | json '[c["id"] for c in d["credentials"] if c["type"]=="bedrock"][0]')
grep -q 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' <<<"$(call $A/AccessCredential -d "{\"id\":\"$bedrock\"}")" || fail "data lost across restart"

if grep -q '"level":"ERROR"' .dev/api.log .dev/kms.log; then fail "an ERROR was logged"; fi
echo "stack smoke test passed"
