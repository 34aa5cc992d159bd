"""Comparing objects as the API server stores them: drop what the server owns (managedFields,
resourceVersion, status, ...), flatten to field paths, and list what differs. Secret values never leave
this module: they are compared by digest and shown as ``(hidden)``."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from hcops.providers.base import FieldChange

VOLATILE_METADATA = (
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
VOLATILE_ANNOTATIONS = (
    "deprecated.daemonset.template.generation",
    "kubectl.kubernetes.io/last-applied-configuration",
)
SECRET_FIELDS = ("data", "stringData")
HIDDEN = "(hidden)"
ABSENT = None


def normalize(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy without server-owned fields; Secret values replaced by their digests."""
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for k in VOLATILE_METADATA:
            meta.pop(k, None)
        ann = meta.get("annotations")
        if isinstance(ann, dict):
            for k in VOLATILE_ANNOTATIONS:
                ann.pop(k, None)
            if not ann:
                meta.pop("annotations", None)
    if out.get("kind") == "Secret":
        for f in SECRET_FIELDS:
            if isinstance(out.get(f), dict):
                out[f] = {k: _digest(v) for k, v in out[f].items()}
    return out


def _digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, leaf)`` pairs; list items with a ``name`` are addressed by it (``containers[cometbft]``)."""
    if isinstance(value, Mapping):
        if not value and prefix:
            yield prefix, {}
        for k in sorted(value):
            yield from flatten(value[k], f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list):
        if not value:
            yield prefix, []
        keyed = all(isinstance(v, Mapping) and isinstance(v.get("name"), str) for v in value)
        names = [v["name"] for v in value] if keyed else []
        unique = keyed and len(set(names)) == len(names)
        for i, v in enumerate(value):
            yield from flatten(v, f"{prefix}[{v['name'] if unique else i}]")
    else:
        yield prefix, value


def field_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> tuple[FieldChange, ...]:
    """What differs between two normalized objects, path by path (secret values hidden)."""
    a = dict(flatten(old or {}))
    b = dict(flatten(new or {}))
    secret = (old or new or {}).get("kind") == "Secret"
    out = []
    for path in sorted(a.keys() | b.keys()):
        va, vb = a.get(path, ABSENT), b.get(path, ABSENT)
        if va != vb:
            if secret and path.split(".", 1)[0] in SECRET_FIELDS:
                va = HIDDEN if va is not None else None
                vb = HIDDEN if vb is not None else None
            out.append(FieldChange(path, va, vb))
    return tuple(out)
