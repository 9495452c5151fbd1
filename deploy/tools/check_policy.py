#!/usr/bin/env python3
"""Policy checks on a rendered manifest stream (what the schema validation cannot see).

Every pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod):
- no service-account token, no host namespaces, no hostPath volumes;
- every container and init container: runAsNonRoot (its own or the pod's),
  readOnlyRootFilesystem, allowPrivilegeEscalation: false, capabilities drop ALL and add none,
  not privileged, a RuntimeDefault or Localhost seccomp profile (its own or the pod's);
- the keyring (Secret credentials-kms-keyring, and the kms-keyring copy, which must be a
  memory-backed emptyDir) is mounted only into the kms containers (kms, kms-keyring);
- every volumeMount names a volume of the pod (an overlay that drops a volume must drop its mounts).
Every `credentials-api serve` container: serves TLS (CREDENTIALS_TLS_CERT and CREDENTIALS_TLS_KEY
set, through its env or an envFrom ConfigMap of the rendering, to files under a mount of a Secret
volume), sets CREDENTIALS_HTTP_LISTEN (the binary's default is the health port's 8080), and the
NetworkPolicies selecting its pods admit the gRPC and HTTP/JSON ports (50051, 8443) only from pods
labelled credentials-vault/client=true (at least one such policy, no ipBlock, no rule open to
all sources or all ports).
Anywhere (container env/args, ConfigMaps): none of the development switches (the kms's and the
API's plaintext); and, unless --allow-dev-tokens, no HS256 token secret.

Usage: check_policy.py [--allow-dev-tokens] RENDERED.yaml   (exit 1 listing every violation)
"""

import sys

import yaml

KEYRING_SECRET = "credentials-kms-keyring"
KEYRING_COPY_VOLUME = "kms-keyring"
KMS_CONTAINERS = {"kms", "kms-keyring"}
FORBIDDEN = [
    "--allow-insecure-keyring-permissions", "KMS_ALLOW_INSECURE_KEYRING_PERMISSIONS",
    "--insecure-plaintext-tcp", "KMS_INSECURE_PLAINTEXT_TCP",
    "--insecure-plaintext", "CREDENTIALS_INSECURE_PLAINTEXT",
]
API_PORTS = (50051, "grpc", 8443, "https")
CLIENT_LABEL = ("credentials-vault/client", "true")
DEV_TOKENS = ["--jwt-hs256-secret-file", "CREDENTIALS_JWT_HS256_SECRET_FILE"]


def pod_specs(obj):
    """(pod spec, names of volumes the workload adds: a StatefulSet's claim templates)"""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        yield spec, set()
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []}
        yield (spec.get("template") or {}).get("spec") or {}, claims
    elif kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        yield (job.get("template") or {}).get("spec") or {}, set()


def strings(node):
    """Every key and scalar string under node."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)
    elif isinstance(node, str):
        yield node


def check_pod(spec, claims, problem):
    pod_sc = spec.get("securityContext") or {}
    if spec.get("automountServiceAccountToken") is not False:
        problem("automountServiceAccountToken is not false")
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            problem(f"{host} is set")

    keyring_volumes = set()
    volume_names = {vol["name"] for vol in spec.get("volumes") or []} | claims
    for vol in spec.get("volumes") or []:
        if "hostPath" in vol:
            problem(f"volume {vol['name']}: hostPath")
        sources = [vol.get("secret") or {}] + [
            s.get("secret") or {} for s in (vol.get("projected") or {}).get("sources") or []]
        if any(s.get("secretName", s.get("name")) == KEYRING_SECRET for s in sources):
            keyring_volumes.add(vol["name"])
        if vol["name"] == KEYRING_COPY_VOLUME:
            keyring_volumes.add(vol["name"])
            if (vol.get("emptyDir") or {}).get("medium") != "Memory":
                problem(f"volume {vol['name']}: the keyring copy must be an emptyDir with medium Memory")

    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        def bad(msg, name=c.get("name")):
            problem(f"container {name}: {msg}")
        sc = c.get("securityContext") or {}
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            bad("runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            bad("runAsUser is 0")
        if sc.get("readOnlyRootFilesystem") is not True:
            bad("readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad("allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            bad("privileged")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            bad("capabilities do not drop ALL")
        if caps.get("add"):
            bad(f"capabilities add {caps['add']}")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            bad(f"seccompProfile is {seccomp!r}, not RuntimeDefault")
        for mount in c.get("volumeMounts") or []:
            if mount["name"] not in volume_names:
                bad(f"mounts {mount['name']}, which is not a volume of the pod")
            if mount["name"] in keyring_volumes and c.get("name") not in KMS_CONTAINERS:
                bad(f"mounts the keyring volume {mount['name']}; only {sorted(KMS_CONTAINERS)} may")


def pod_template(obj):
    """(labels, spec) of a workload's pod template."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        return (obj.get("metadata") or {}).get("labels") or {}, spec
    template = spec.get("template") or {}
    return (template.get("metadata") or {}).get("labels") or {}, template.get("spec") or {}


def is_api_server(container):
    command = (container.get("command") or []) + (container.get("args") or [])
    return any(str(c).endswith("credentials-api") for c in command) and "serve" in command


def container_env(container, configmaps):
    """The container's environment: envFrom ConfigMaps of the rendering, then env values."""
    env = {}
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef") or {}
        env.update((configmaps.get(ref.get("name")) or {}).get("data") or {})
    for var in container.get("env") or []:
        if "value" in var:
            env[var["name"]] = var["value"]
    return env


def check_api_tls(container, spec, configmaps, bad):
    env = container_env(container, configmaps)
    secret_volumes = {v["name"] for v in spec.get("volumes") or [] if "secret" in v or "projected" in v}
    mounts = [m["mountPath"].rstrip("/") + "/" for m in container.get("volumeMounts") or []
              if m["name"] in secret_volumes]
    for var in ("CREDENTIALS_TLS_CERT", "CREDENTIALS_TLS_KEY"):
        path = env.get(var)
        if not path:
            bad(f"serves the gRPC port without TLS: {var} is not set")
        elif not any(str(path).startswith(m) for m in mounts):
            bad(f"{var}={path} is not under a mounted Secret volume")
    if "CREDENTIALS_HTTP_LISTEN" not in env:
        bad("CREDENTIALS_HTTP_LISTEN is not set: the default (127.0.0.1:8080) collides with the health port")


def selects(selector, labels):
    """Whether a label selector may select pods with `labels` (expressions: assume it does)."""
    if selector.get("matchExpressions"):
        return True
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def admits_api_port(rule):
    ports = rule.get("ports") or []
    return not ports or any(p.get("port") in API_PORTS for p in ports)


def check_api_ingress(labels, policies, bad):
    guarding = [p for p in policies
                if selects((p.get("spec") or {}).get("podSelector") or {}, labels)
                and "Ingress" in ((p.get("spec") or {}).get("policyTypes") or ["Ingress"])]
    if not guarding:
        bad(f"no NetworkPolicy restricts ingress to the API pods ({labels})")
    key, value = CLIENT_LABEL
    for policy in guarding:
        name = policy["metadata"]["name"]
        for rule in (policy.get("spec") or {}).get("ingress") or []:
            if not admits_api_port(rule):
                continue
            peers = rule.get("from") or []
            if not peers:
                bad(f"NetworkPolicy {name} admits an API port from everywhere")
            for peer in peers:
                pod = (peer.get("podSelector") or {}).get("matchLabels") or {}
                if "ipBlock" in peer or pod.get(key) != value:
                    bad(f"NetworkPolicy {name} admits an API port from {peer}, not only pods labelled {key}={value}")


def main(argv):
    allow_dev = "--allow-dev-tokens" in argv
    files = [a for a in argv if a != "--allow-dev-tokens"]
    if len(files) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(files[0], encoding="utf-8") as f:
        objects = [o for o in yaml.safe_load_all(f) if o]
    problems = []
    configmaps = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "ConfigMap"}
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    for obj in objects:
        where = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"

        def problem(msg, where=where):
            problems.append(f"{where}: {msg}")

        for spec, claims in pod_specs(obj):
            check_pod(spec, claims, problem)
            labels, _ = pod_template(obj)
            for c in spec.get("containers") or []:
                if is_api_server(c):
                    def bad(msg, name=c.get("name")):
                        problem(f"container {name}: {msg}")
                    check_api_tls(c, spec, configmaps, bad)
                    check_api_ingress(labels, policies, bad)
        if obj.get("kind") in ("Secret",):
            continue  # generated dev secrets are data, not configuration
        words = set(strings(obj.get("data") if obj.get("kind") == "ConfigMap" else
                            [spec for spec, _ in pod_specs(obj)]))
        for word in FORBIDDEN + ([] if allow_dev else DEV_TOKENS):
            if any(w == word or w.startswith(word + "=") for w in words):
                problem(f"sets {word}")
    for p in problems:
        print(f"POLICY {files[0]}: {p}")
    if not problems:
        print(f"policy ok: {files[0]} ({len(objects)} objects)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
