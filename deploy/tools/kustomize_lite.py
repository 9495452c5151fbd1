#!/usr/bin/env python3
"""A deliberately small kustomize, for CI machines without `kubectl kustomize`.

It renders exactly the features the kustomizations under deploy/ use, and refuses anything else
(an unknown kustomization field is an error, never silently ignored):

- resources: files (multi-document YAML) and directories holding a kustomization.yaml
- images: name -> newName / newTag / digest, on containers and initContainers
- secretGenerator: files (key=path or path) and literals, type; only with
  generatorOptions.disableNameSuffixHash: true (no name-hash rewriting is implemented);
  generatorOptions.labels
- patches: `- path: FILE` holding strategic-merge patches, each naming its target by apiVersion,
  kind and metadata.name. Merge semantics: maps merge recursively, a null value deletes a key,
  lists of the known keyed kinds (containers, volumes, volumeMounts, env, ports, ...) merge by
  their key and honour `$patch: delete` on an item; every other list is replaced, as in
  Kubernetes' strategic merge patch for these types.

Real operators use `kubectl apply -k` / `kubectl kustomize`; .ci/validate-manifests.sh renders
with this file and, where kubectl is installed, checks that both renderings are identical.

Usage: kustomize_lite.py DIR                 print the rendered stream
       kustomize_lite.py --compare DIR FILE  exit 1 unless FILE renders the same objects
"""

import base64
import copy
import os
import sys

import yaml

KNOWN_FIELDS = {
    "apiVersion", "kind", "resources", "images", "patches", "secretGenerator", "generatorOptions",
}

# List fields merged by key in a strategic merge patch (the Kubernetes patchMergeKey of each).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "env": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "tolerations": None,  # atomic in Kubernetes: replaced
}


class RenderError(Exception):
    pass


def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def ident(obj):
    meta = obj.get("metadata") or {}
    return (obj.get("apiVersion"), obj.get("kind"), meta.get("namespace"), meta.get("name"))


def show(obj):
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def build(directory):
    kfile = os.path.join(directory, "kustomization.yaml")
    if not os.path.isfile(kfile):
        raise RenderError(f"{directory}: no kustomization.yaml")
    (k,) = load_docs(kfile)
    unknown = set(k) - KNOWN_FIELDS
    if unknown:
        raise RenderError(f"{kfile}: unsupported field(s) {sorted(unknown)}; use kubectl kustomize")

    objects = []
    for res in k.get("resources") or []:
        path = os.path.join(directory, res)
        objects.extend(build(path) if os.path.isdir(path) else load_docs(path))

    objects.extend(generate_secrets(directory, k))

    for patch in k.get("patches") or []:
        if set(patch) != {"path"}:
            raise RenderError(f"{kfile}: only `- path: FILE` patches are supported, got {patch}")
        for doc in load_docs(os.path.join(directory, patch["path"])):
            targets = [o for o in objects if ident(o)[:2] == ident(doc)[:2]
                       and ident(o)[3] == ident(doc)[3]]
            if len(targets) != 1:
                raise RenderError(f"{patch['path']}: {len(targets)} targets for {show(doc)}")
            target = targets[0]
            merged = merge(target, {key: val for key, val in doc.items()
                                    if key not in ("apiVersion", "kind")})
            target.clear()
            target.update(merged)

    for image in k.get("images") or []:
        set_image(objects, image)

    seen = set()
    for obj in objects:
        if ident(obj) in seen:
            raise RenderError(f"{directory}: {show(obj)} defined twice")
        seen.add(ident(obj))
    return objects


def generate_secrets(directory, k):
    generators = k.get("secretGenerator") or []
    options = k.get("generatorOptions") or {}
    if generators and options.get("disableNameSuffixHash") is not True:
        raise RenderError(f"{directory}: secretGenerator needs generatorOptions.disableNameSuffixHash: true")
    if set(options) - {"disableNameSuffixHash", "labels"}:
        raise RenderError(f"{directory}: unsupported generatorOptions {sorted(options)}")
    out = []
    for gen in generators:
        if set(gen) - {"name", "files", "literals", "type"}:
            raise RenderError(f"{directory}: unsupported secretGenerator fields {sorted(gen)}")
        data = {}
        for spec in gen.get("files") or []:
            key, _, path = spec.rpartition("=")
            key = key or os.path.basename(path)
            with open(os.path.join(directory, path), "rb") as f:
                data[key] = base64.b64encode(f.read()).decode()
        for spec in gen.get("literals") or []:
            key, _, value = spec.partition("=")
            data[key] = base64.b64encode(value.encode()).decode()
        meta = {"name": gen["name"]}
        if options.get("labels"):
            meta["labels"] = dict(options["labels"])
        out.append({"apiVersion": "v1", "kind": "Secret", "metadata": meta,
                    "type": gen.get("type", "Opaque"), "data": data})
    return out


def merge(base, patch, field=None):
    """Strategic merge of `patch` into `base` (both already plain YAML data)."""
    if isinstance(patch, dict) and isinstance(base, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if key == "$patch":
                raise RenderError(f"`$patch: {value}` is supported only on keyed list items")
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value, key)
            else:
                out[key] = strip_directives(value)
        return out
    if isinstance(patch, list) and isinstance(base, list):
        keys = list_key(field, base + patch)
        if keys is None:
            return strip_directives(patch)

        def key_of(item):
            return tuple(item.get(k) for k in keys)

        # As kustomize (kyaml) orders it: the patch's items first, in patch order (merged into
        # the original item of the same key, if any; `$patch: delete` items dropped), then the
        # original items the patch does not mention, in their order.
        originals = {key_of(item): item for item in base}
        mentioned = {key_of(item) for item in patch}
        out = []
        for item in patch:
            if item.get("$patch") == "delete":
                continue
            original = originals.get(key_of(item))
            out.append(merge(original, item) if original is not None else strip_directives(item))
        return out + [copy.deepcopy(item) for item in base if key_of(item) not in mentioned]
    return strip_directives(patch)


def list_key(field, items):
    """The key fields of a keyed list, or None for a list that a patch replaces."""
    if field == "ports":  # list-map keys: containerPort+protocol in a pod, port+protocol in a Service
        return ("containerPort" if any("containerPort" in i for i in items) else "port", "protocol")
    key = MERGE_KEYS.get(field)
    return (key,) if key else None


def strip_directives(value):
    if isinstance(value, dict):
        if "$patch" in value:
            raise RenderError(f"`$patch` on an item with nothing to merge into: {value}")
        return {k: strip_directives(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_directives(v) for v in value]
    return value


def split_image(ref):
    """'reg:5000/a/b:tag@sha256:..' -> ('reg:5000/a/b', ':tag@sha256:..')"""
    name, at, digest = ref.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon:] + at + digest
    return name, at + digest


def set_image(objects, image):
    if set(image) - {"name", "newName", "newTag", "digest"}:
        raise RenderError(f"unsupported images fields {sorted(image)}")

    def visit(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("containers", "initContainers") and isinstance(value, list):
                    for c in value:
                        name, suffix = split_image(c.get("image", ""))
                        if name == image["name"]:
                            name = image.get("newName", name)
                            if "digest" in image:
                                suffix = "@" + image["digest"]
                            elif "newTag" in image:
                                suffix = ":" + image["newTag"]
                            c["image"] = name + suffix
                else:
                    visit(value)
        elif isinstance(node, list):
            for v in node:
                visit(v)

    visit(objects)


def canonical(objects):
    """Comparable form. kustomize wraps long base64 Secret data at 76 columns; Kubernetes ignores
    the line breaks when decoding, so they are dropped here."""
    out = []
    for o in objects:
        if o.get("kind") == "Secret" and o.get("data"):
            o = {**o, "data": {k: "".join(str(v).split()) for k, v in o["data"].items()}}
        out.append(yaml.safe_dump(o, sort_keys=True))
    return sorted(out)


def main(argv):
    try:
        if len(argv) == 3 and argv[0] == "--compare":
            mine, theirs = canonical(build(argv[1])), canonical(load_docs(argv[2]))
            if mine != theirs:
                import difflib
                sys.stdout.writelines(difflib.unified_diff(
                    "".join(theirs).splitlines(True), "".join(mine).splitlines(True),
                    "kubectl kustomize", "kustomize_lite"))
                return 1
            return 0
        if len(argv) != 1:
            print(__doc__, file=sys.stderr)
            return 2
        yaml.safe_dump_all(build(argv[0]), sys.stdout, sort_keys=False)
        return 0
    except (RenderError, OSError, yaml.YAMLError, ValueError) as e:
        print(f"kustomize_lite: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
