"""Render a kustomization the way ``kubectl kustomize`` does, for the subset deploy/k8s uses.

CI and operators without kubectl still get the exact manifests an overlay produces, so
the overlays can be validated (tests/deploy/test_k8s.py checks this output against
``kubectl kustomize`` where kubectl is installed). Supported fields: ``resources`` (files
and directories), ``patches`` / ``patchesStrategicMerge`` (strategic merge, matched by
kind and name), ``namespace``, ``labels`` (``pairs``, ``includeSelectors``,
``includeTemplates``), ``commonLabels``, ``images`` and ``replicas``. Any other field is
refused with its name rather than silently ignored: the output would be wrong.

Usage: ``python -m brightkitchen.kustomize deploy/k8s/overlays/province > province.yaml``
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from bkcommon.errors import ConfigError

Resource = dict[str, Any]

_KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_SUPPORTED = {
    "apiVersion",
    "kind",
    "resources",
    "patches",
    "patchesStrategicMerge",
    "namespace",
    "labels",
    "commonLabels",
    "images",
    "replicas",
}
_CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
}
_POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
_REPLICA_KINDS = {"Deployment", "StatefulSet", "ReplicaSet"}
# Lists whose items are merged by this key in a strategic-merge patch (as Kubernetes does).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "volumeClaimTemplates": "metadata.name",
}


class KustomizeError(ConfigError):
    """A kustomization this renderer cannot render faithfully (the message names why)."""


def render(directory: str | Path) -> list[Resource]:
    """Return the resources the kustomization in ``directory`` produces, in load order."""
    root = Path(directory)
    kfile = next((root / n for n in _KUSTOMIZATION_FILES if (root / n).is_file()), None)
    if kfile is None:
        raise KustomizeError(f"{root}: no kustomization.yaml")
    spec = yaml.safe_load(kfile.read_text()) or {}
    if not isinstance(spec, dict):
        raise KustomizeError(f"{kfile}: not a mapping")
    unknown = sorted(set(spec) - _SUPPORTED)
    if unknown:
        raise KustomizeError(f"{kfile}: unsupported field(s) {', '.join(unknown)}")
    resources: list[Resource] = []
    for entry in spec.get("resources") or []:
        path = root / str(entry)
        if path.is_dir():
            resources.extend(render(path))
        elif path.is_file():
            resources.extend(_load_documents(path))
        else:
            raise KustomizeError(f"{kfile}: resources: {entry} does not exist")
    _check_unique(resources, kfile)
    for patch, origin in _patches(spec, root, kfile):
        _apply_patch(resources, patch, origin)
    if "namespace" in spec:
        _set_namespace(resources, str(spec["namespace"]))
    for pairs, selectors, templates in _label_sets(spec, kfile):
        for res in resources:
            _add_labels(res, pairs, selectors=selectors, templates=templates)
    for image in spec.get("images") or []:
        _set_image(resources, image, kfile)
    for rep in spec.get("replicas") or []:
        _set_replicas(resources, rep, kfile)
    return resources


def render_yaml(directory: str | Path) -> str:
    """The rendered resources as one multi-document YAML stream."""
    return yaml.safe_dump_all(render(directory), sort_keys=True, default_flow_style=False)


def _load_documents(path: Path) -> list[Resource]:
    docs = []
    for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
        if doc is None:
            continue
        if not isinstance(doc, dict) or "kind" not in doc or "metadata" not in doc:
            raise KustomizeError(f"{path}: document {i + 1} is not a Kubernetes resource")
        docs.append(doc)
    return docs


def _key(res: Resource) -> tuple[str, str]:
    return str(res["kind"]), str(res["metadata"].get("name", ""))


def _check_unique(resources: list[Resource], kfile: Path) -> None:
    seen: set[tuple[str, str]] = set()
    for res in resources:
        key = _key(res)
        if key in seen:
            raise KustomizeError(f"{kfile}: {key[0]} {key[1]} is defined twice")
        seen.add(key)


def _patches(spec: dict[str, Any], root: Path, kfile: Path) -> Iterator[tuple[Resource, str]]:
    for i, entry in enumerate(spec.get("patches") or []):
        if not isinstance(entry, dict) or set(entry) - {"path", "patch"}:
            raise KustomizeError(
                f"{kfile}: patches[{i}]: only strategic-merge patches with 'path' or 'patch'"
            )
        if "path" in entry:
            path = root / str(entry["path"])
            for doc in _load_documents(path):
                yield doc, str(path)
        else:
            for doc in yaml.safe_load_all(str(entry["patch"])):
                if doc:
                    yield doc, f"{kfile}: patches[{i}]"
    for entry in spec.get("patchesStrategicMerge") or []:
        path = root / str(entry)
        for doc in _load_documents(path):
            yield doc, str(path)


def _apply_patch(resources: list[Resource], patch: Resource, origin: str) -> None:
    key = _key(patch)
    for i, res in enumerate(resources):
        if _key(res) == key:
            resources[i] = strategic_merge(res, patch)
            return
    raise KustomizeError(f"{origin}: patch target {key[0]} {key[1]} is not among the resources")


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """Merge ``patch`` into ``base`` as a Kubernetes strategic-merge patch (subset).

    Mappings merge key by key (a ``null`` value deletes the key); lists named in
    ``_MERGE_KEYS`` merge item by item on their key; any other list is replaced.
    """
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = strategic_merge(out[k], v, k)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and field in _MERGE_KEYS:
        key = _MERGE_KEYS[field]
        merged = copy.deepcopy(base)
        for item in patch:
            ident = _dig(item, key)
            for j, existing in enumerate(merged):
                if ident is not None and _dig(existing, key) == ident:
                    merged[j] = strategic_merge(existing, item)
                    break
            else:
                merged.append(copy.deepcopy(item))
        return merged
    return copy.deepcopy(patch)


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _set_namespace(resources: list[Resource], namespace: str) -> None:
    for res in resources:
        if res["kind"] not in _CLUSTER_SCOPED:
            res["metadata"]["namespace"] = namespace


def _label_sets(spec: dict[str, Any], kfile: Path) -> Iterator[tuple[dict[str, str], bool, bool]]:
    if spec.get("commonLabels"):
        yield _str_map(spec["commonLabels"], kfile, "commonLabels"), True, True
    for i, entry in enumerate(spec.get("labels") or []):
        extra = set(entry) - {"pairs", "includeSelectors", "includeTemplates"}
        if extra:
            raise KustomizeError(f"{kfile}: labels[{i}]: unsupported {', '.join(sorted(extra))}")
        pairs = _str_map(entry.get("pairs") or {}, kfile, f"labels[{i}].pairs")
        yield pairs, bool(entry.get("includeSelectors")), bool(entry.get("includeTemplates"))


def _str_map(value: Any, kfile: Path, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise KustomizeError(f"{kfile}: {where} must be a mapping")
    return {str(k): str(v) for k, v in value.items()}


def _merge_into(obj: dict[str, Any], path: tuple[str, ...], pairs: dict[str, str]) -> None:
    for part in path:
        obj = obj.setdefault(part, {})
    obj.update(pairs)


def _add_labels(res: Resource, pairs: dict[str, str], *, selectors: bool, templates: bool) -> None:
    kind = res["kind"]
    _merge_into(res, ("metadata", "labels"), pairs)
    spec = res.get("spec")
    if not isinstance(spec, dict):
        return
    if templates or selectors:
        if kind in _POD_TEMPLATE_KINDS and isinstance(spec.get("template"), dict):
            _merge_into(spec["template"], ("metadata", "labels"), pairs)
        if kind == "StatefulSet":
            for claim in spec.get("volumeClaimTemplates") or []:
                _merge_into(claim, ("metadata", "labels"), pairs)
        if kind == "CronJob" and isinstance(spec.get("jobTemplate"), dict):
            job = spec["jobTemplate"]
            _merge_into(job, ("metadata", "labels"), pairs)
            _merge_into(job, ("spec", "template", "metadata", "labels"), pairs)
    if selectors:
        if kind in _REPLICA_KINDS or kind in {"DaemonSet", "PodDisruptionBudget"}:
            _merge_into(spec, ("selector", "matchLabels"), pairs)
        elif kind == "Service":
            _merge_into(spec, ("selector",), pairs)


def _containers(res: Resource) -> Iterator[dict[str, Any]]:
    spec = res.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec")
    if res["kind"] == "CronJob":
        pod = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get(
            "spec"
        )
    if not isinstance(pod, dict):
        return
    for field in ("initContainers", "containers"):
        yield from pod.get(field) or []


def _set_image(resources: list[Resource], image: dict[str, Any], kfile: Path) -> None:
    name = image.get("name")
    if not name or set(image) - {"name", "newName", "newTag", "digest"}:
        raise KustomizeError(f"{kfile}: images: each entry needs name and newName/newTag/digest")
    for res in resources:
        for container in _containers(res):
            current = str(container.get("image", ""))
            repo, _, _tag = current.partition("@")[0].rpartition(":")
            if not repo or "/" in _tag:  # no tag: the colon was a registry port
                repo = current.partition("@")[0]
            if repo != name:
                continue
            new_repo = str(image.get("newName", repo))
            if "digest" in image:
                container["image"] = f"{new_repo}@{image['digest']}"
            elif "newTag" in image:
                container["image"] = f"{new_repo}:{image['newTag']}"
            else:
                container["image"] = current.replace(repo, new_repo, 1)


def _set_replicas(resources: list[Resource], rep: dict[str, Any], kfile: Path) -> None:
    name, count = rep.get("name"), rep.get("count")
    if not isinstance(count, int) or count < 0:
        raise KustomizeError(f"{kfile}: replicas: {name}: count must be a whole number >= 0")
    hits = [r for r in resources if r["kind"] in _REPLICA_KINDS and r["metadata"]["name"] == name]
    if not hits:
        raise KustomizeError(f"{kfile}: replicas: no Deployment or StatefulSet named {name}")
    for res in hits:
        res.setdefault("spec", {})["replicas"] = count


def main(argv: list[str] | None = None) -> int:
    """Print the rendered overlay; exit 2 with the reason when it cannot be rendered."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m brightkitchen.kustomize DIRECTORY", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(render_yaml(args[0]))
    except (KustomizeError, yaml.YAMLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
