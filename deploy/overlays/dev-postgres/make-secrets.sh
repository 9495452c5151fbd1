#!/usr/bin/env bash
# Writes the files the dev-postgres overlay turns into Secrets, into ./secrets/ (git-ignored):
#   keyring.json       a fresh kms keyring (`kms keyring create`)
#   jwt-hs256-secret   an HS256 token secret (development only)
#   postgres-password  the dev Postgres password
#   database-url       DATABASE_URL for the API, pointing at the dev Postgres
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
TXT
