#!/usr/bin/env bash
# Renders deploy/base and every overlay and checks each rendered object:
#   1. schema: kubernetes-validate --strict (unknown fields are errors), against the newest
#      Kubernetes it knows and the oldest the manifests support (1.30: native sidecars, preStop
#      sleep, ContainerResource autoscaling);
#   2. policy: deploy/tools/check_policy.py (non-root, read-only, drop ALL, seccomp, the keyring
#      mounted into kms containers only, no development switches outside dev-postgres).
# The example Secret files, which no kustomization includes, get the schema check too.
#
# Rendering: with deploy/tools/kustomize_lite.py, a minimal kustomize (kubectl is not on every CI
# machine and no standalone kustomize package is reachable). Where `kubectl kustomize` exists,
# the script also renders with it and fails if the two renderings differ.
# Exits non-zero on any failure, naming the target and the object.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=target/ci-tools
if [ ! -x "$tools/bin/kubernetes-validate" ]; then
  echo "installing kubernetes-validate into $tools" >&2
  [ -x "$tools/bin/pip" ] || python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate
fi
py=$tools/bin/python
validate=$tools/bin/kubernetes-validate
k8s_versions=(1.37.0 1.30.0)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Render from a copy: dev-postgres's secretGenerator reads files that make-secrets.sh writes
# (git-ignored); CI uses placeholders for the missing ones and never touches the tree.
cp -R deploy "$work/deploy"
for f in keyring.json jwt-hs256-secret postgres-password database-url tls.crt tls.key tls-ca.crt; do
  secret=$work/deploy/overlays/dev-postgres/secrets/$f
  [ -f "$secret" ] || echo "ci-placeholder" >"$secret"
done

have_kubectl=false
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  have_kubectl=true
else
  echo "kubectl not found: rendering with deploy/tools/kustomize_lite.py only"
fi

failures=()
fail() { echo "FAIL: $*" >&2; failures+=("$*"); }

schema() { # name file...
  local name=$1; shift
  local v out
  for v in "${k8s_versions[@]}"; do
    if ! out=$("$validate" --strict --quiet -k "$v" "$@" 2>&1); then
      printf '%s\n' "$out" >&2
      fail "$name: schema validation against Kubernetes $v"
    elif [ -n "$out" ]; then
      printf '%s\n' "$out" >&2   # warnings
    fi
  done
}

for target in base overlays/central-kms overlays/dev-postgres; do
  echo "== $target"
  out=$work/rendered-${target//\//-}.yaml
  if ! "$py" deploy/tools/kustomize_lite.py "$work/deploy/$target" >"$out"; then
    fail "$target: rendering"
    continue
  fi
  echo "rendered $(grep -c '^kind:' "$out") objects"
  if $have_kubectl; then
    if kubectl kustomize "$work/deploy/$target" >"$work/kubectl.yaml" 2>"$work/kubectl.err"; then
      if "$py" deploy/tools/kustomize_lite.py --compare "$work/deploy/$target" "$work/kubectl.yaml"; then
        echo "kubectl kustomize renders the same objects"
      else
        fail "$target: kustomize_lite and kubectl kustomize differ (diff above)"
      fi
    else
      cat "$work/kubectl.err" >&2
      fail "$target: kubectl kustomize"
    fi
  fi
  schema "$target" "$out"
  policy_args=()
  [ "$target" = overlays/dev-postgres ] && policy_args=(--allow-dev-tokens)
  "$py" deploy/tools/check_policy.py "${policy_args[@]}" "$out" || fail "$target: policy"
done

echo "== example Secrets"
schema "example Secrets" deploy/base/secrets.example.yaml deploy/overlays/central-kms/secrets.example.yaml

echo
if [ ${#failures[@]} -gt 0 ]; then
  echo "manifest validation FAILED:" >&2
  printf '  %s\n' "${failures[@]}" >&2
  exit 1
fi
echo "manifests: all renderings valid (kubernetes-validate --strict ${k8s_versions[*]}) and policy clean"
