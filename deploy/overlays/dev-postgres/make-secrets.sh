#!/usr/bin/env bash
# Writes the files the dev-postgres overlay turns into Secrets, into ./secrets/ (git-ignored):
#   keyring.json       a fresh kms keyring (`kms keyring create`)
#   jwt-hs256-secret   an HS256 token secret (development only)
#   postgres-password  the dev Postgres password
#   database-url       DATABASE_URL for the API, pointing at the dev Postgres
#   tls-ca.crt         a development CA (its key, tls-ca.key, stays here), for grpcurl -cacert
#   tls.crt, tls.key   the API's certificate from it, for localhost and the Service names
# Existing files are kept: a new keyring would make every stored credential unreadable.
# Uses $KMS_BIN, else target/{release,debug}/kms, else builds the kms with cargo.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=$here/secrets
mkdir -p "$out"
umask 077

if [ ! -f "$out/keyring.json" ]; then
  kms=${KMS_BIN:-}
  for candidate in "$root/target/release/kms" "$root/target/debug/kms"; do
    if [ -z "$kms" ] && [ -x "$candidate" ]; then kms=$candidate; fi
  done
  if [ -z "$kms" ]; then
    echo "building the kms binary..." >&2
    (cd "$root" && cargo build --quiet --bin kms)
    kms=$root/target/debug/kms
  fi
  "$kms" keyring create --file "$out/keyring.json" >&2
  echo "created $out/keyring.json (back it up if the data matters to you)" >&2
else
  echo "keeping the existing $out/keyring.json" >&2
fi
[ -f "$out/jwt-hs256-secret" ] || head -c 48 /dev/urandom | base64 >"$out/jwt-hs256-secret"
[ -f "$out/postgres-password" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$out/postgres-password"
if [ ! -f "$out/tls.crt" ]; then
  command -v openssl >/dev/null || { echo "make-secrets.sh: openssl is needed for the TLS files" >&2; exit 1; }
  ns=${NAMESPACE:-credentials-vault-dev}
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj "/CN=credentials-vault development CA" -keyout "$out/tls-ca.key" -out "$out/tls-ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=credentials-api" \
    -keyout "$out/tls.key" -out "$out/tls.csr" 2>/dev/null
  openssl x509 -req -in "$out/tls.csr" -CA "$out/tls-ca.crt" -CAkey "$out/tls-ca.key" -CAcreateserial \
    -days 90 -out "$out/tls.crt" 2>/dev/null -extfile <(printf \
    'subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:credentials-api,DNS:credentials-api.%s.svc,DNS:credentials-api.%s.svc.cluster.local\nextendedKeyUsage=serverAuth\n' "$ns" "$ns")
  rm -f "$out/tls.csr" "$out/tls-ca.srl"
  echo "created a development CA ($out/tls-ca.crt) and the API's certificate" >&2
fi
if [ ! -f "$out/database-url" ]; then
  printf 'postgres://credentials:%s@postgres:5432/credentials' "$(cat "$out/postgres-password")" \
    >"$out/database-url"
fi

cat >&2 <<TXT
secrets written to $out. Next:
  kubectl create namespace credentials-vault-dev
  kubectl -n credentials-vault-dev apply -k deploy/overlays/dev-postgres
  kubectl -n credentials-vault-dev port-forward svc/credentials-api 50051:50051
  TOKEN=\$(target/debug/credentials-api dev-token --hs256-secret-file $out/jwt-hs256-secret \\
            --workspace dev --permissions read,write,access)
  grpcurl -cacert $out/tls-ca.crt -H "authorization: Bearer \$TOKEN" localhost:50051 list
TXT
