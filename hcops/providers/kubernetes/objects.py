"""The desired objects of a network (rendered by ``hcops.render``) and the live objects that carry its
labels: apply order, the label selector that finds them, which node an object belongs to, and which
live objects are storage (PersistentVolumeClaims, Secrets) that only ``prune_volumes`` removes."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hcops.errors import InternalError
from hcops.plan.desired import KubeScope, NetworkPlan
from hcops.providers.kubernetes.api import FIELD_MANAGER, KubeApi, Obj, Ref

KIND_ORDER = (
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "Role",
    "ClusterRoleBinding",
    "RoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "StatefulSet",
)
# Kinds searched for objects with the network's labels, besides the rendered ones.
SCANNED: tuple[tuple[str, str], ...] = (
    ("v1", "Namespace"),
    ("v1", "ServiceAccount"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Pod"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("networking.k8s.io/v1", "Ingress"),
    ("policy/v1", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
)
CLUSTER_SCOPED = frozenset(
    {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass", "PriorityClass"}
)
STORAGE_KINDS = frozenset({"PersistentVolumeClaim", "Secret"})
SPEC_HASH_ANNOTATION = "hcops.spec-hash"


def order_key(obj: Mapping[str, Any]) -> tuple[int, str, str]:
    kind = str(obj.get("kind", ""))
    rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    return rank, kind, str((obj.get("metadata") or {}).get("name", ""))


def labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def selector_string(sel: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(sel.items()))


@dataclass(frozen=True)
class Desired:
    """What the spec declares, in apply order (Namespace first, StatefulSets last)."""

    namespace: str
    objects: tuple[Obj, ...]
    selector: Mapping[str, str]  # labels every object of the network carries
    nodes: frozenset[str]
    # The other members' namespaces: they carry the network's labels too, but are not this scope's to change.
    foreign: frozenset[str] = frozenset()

    @property
    def refs(self) -> dict[Ref, Obj]:
        return {Ref.of(o): o for o in self.objects}

    def node_of(self, obj: Mapping[str, Any]) -> str | None:
        for _, value in sorted(labels(obj).items()):
            if value in self.nodes:
                return value
        return None

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o.get("kind") == kind]

    def kinds(self) -> list[tuple[str, str]]:
        seen = dict.fromkeys(SCANNED)
        for o in self.objects:
            seen.setdefault((str(o["apiVersion"]), str(o["kind"])), None)
        return list(seen)


def desired(plan: NetworkPlan, scope: KubeScope | None = None) -> Desired:
    """The objects of one namespace of the plan (``scope``; default: the first, the only one unless
    organizations declare namespaces of their own)."""
    from hcops.render.kubernetes import kubernetes_objects  # late: render imports the providers' settings

    scope = scope or plan.kube_scopes()[0]
    objects = [_without_spec_hash(o) for o in kubernetes_objects(plan, secrets=True, scope=scope)]
    if not objects:
        raise InternalError("the Kubernetes renderer produced no objects")
    ns_objs = [o for o in objects if o.get("kind") == "Namespace"]
    namespace = (
        str(ns_objs[0]["metadata"]["name"])
        if ns_objs
        else scope.namespace
    )
    common = _common_labels(objects)
    if not common:
        raise InternalError("the rendered Kubernetes objects share no label: hcops could not find them again")
    for o in objects:
        if o.get("kind") not in CLUSTER_SCOPED:
            o.setdefault("metadata", {}).setdefault("namespace", namespace)
    objects.sort(key=order_key)
    return Desired(
        namespace=namespace,
        objects=tuple(objects),
        selector=common,
        nodes=frozenset(n.name for n in scope.nodes),
        foreign=frozenset(plan.kube_namespaces()) - {namespace},
    )


def _without_spec_hash(obj: Mapping[str, Any]) -> Obj:
    """The spec hash is kept on the Namespace only: on every object it would make any spec change
    rewrite every object, where apply is to patch only what changed."""
    out = copy.deepcopy(dict(obj))
    meta = out.get("metadata") or {}
    ann = meta.get("annotations")
    if out.get("kind") != "Namespace" and isinstance(ann, dict) and SPEC_HASH_ANNOTATION in ann:
        ann = {k: v for k, v in ann.items() if k != SPEC_HASH_ANNOTATION}
        if ann:
            meta["annotations"] = ann
        else:
            meta.pop("annotations")
    return out


def _common_labels(objects: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    common: dict[str, str] | None = None
    for o in objects:
        lab = labels(o)
        common = dict(lab) if common is None else {k: v for k, v in common.items() if lab.get(k) == v}
    return common or {}


# ------------------------------------------------------------------ live objects
@dataclass(frozen=True)
class Live:
    """Every object of the scanned kinds that carries the network's labels."""

    objects: Mapping[Ref, Obj]

    def get(self, ref: Ref) -> Obj | None:
        return self.objects.get(ref)

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for r, o in sorted(self.objects.items()) if r.kind == kind]


def read_live(api: KubeApi, want: Desired) -> Live:
    sel = selector_string(want.selector)
    found: dict[Ref, Obj] = {}
    for api_version, kind in want.kinds():
        ns = None if kind in CLUSTER_SCOPED else want.namespace
        for obj in api.list(api_version, kind, ns, selector=sel):
            # With several namespaces, only this scope's own: another member's (also one this copy of the spec
            # does not know, moved or left over) is never listed, pruned or deleted from here.
            if kind == "Namespace" and want.foreign and (obj.get("metadata") or {}).get("name") != want.namespace:
                continue
            found[Ref.of(obj)] = obj
    return Live(found)


def owned(obj: Mapping[str, Any]) -> bool:
    """Made by a controller (a StatefulSet's pods, ...): its owner is what hcops manages."""
    return bool((obj.get("metadata") or {}).get("ownerReferences"))


def applied_by_hcops(obj: Mapping[str, Any]) -> bool:
    return any(
        m.get("manager") == FIELD_MANAGER and m.get("operation") == "Apply"
        for m in (obj.get("metadata") or {}).get("managedFields") or ()
    )


def claim_names(want: Desired) -> dict[str, str]:
    """PersistentVolumeClaim name -> node, for claims the StatefulSets' volumeClaimTemplates make."""
    out: dict[str, str] = {}
    for sts in want.of_kind("StatefulSet"):
        name = sts["metadata"]["name"]
        node = want.node_of(sts) or name
        replicas = int((sts.get("spec") or {}).get("replicas", 1) or 1)
        for tmpl in (sts.get("spec") or {}).get("volumeClaimTemplates") or ():
            for i in range(replicas):
                out[f"{tmpl['metadata']['name']}-{name}-{i}"] = node
    return out


def is_storage(ref: Ref) -> bool:
    return ref.kind in STORAGE_KINDS


def prune_candidates(want: Desired, live: Live, prune_volumes: bool) -> list[Obj]:
    """Objects hcops applied earlier that the spec no longer declares (storage only when asked)."""
    declared = want.refs
    out = [
        o
        for r, o in live.objects.items()
        if r not in declared and applied_by_hcops(o) and not owned(o) and (prune_volumes or not is_storage(r))
    ]
    return sorted(out, key=order_key, reverse=True)


def undeclared(want: Desired, live: Live) -> list[Obj]:
    """Labelled objects the spec does not declare: not rendered, not made by a controller, not storage."""
    declared = want.refs
    claims = claim_names(want)
    out = []
    for ref, obj in sorted(live.objects.items()):
        if ref in declared or owned(obj):
            continue
        if ref.kind == "PersistentVolumeClaim" and ref.name in claims:
            continue
        out.append(obj)
    return out


def summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    ref = Ref.of(obj)
    managers = sorted({str(m.get("manager")) for m in (obj.get("metadata") or {}).get("managedFields") or ()})
    return {
        "apiVersion": ref.api_version,
        "kind": ref.kind,
        "namespace": ref.namespace or None,
        "name": ref.name,
        "labels": labels(obj),
        "managers": managers,
    }
