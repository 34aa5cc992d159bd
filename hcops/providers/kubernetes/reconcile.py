"""plan, apply and delete the objects of a network with server-side apply.

* plan: a server-side dry-run apply of every declared object, compared with the live object (both
  normalized: no managedFields, resourceVersion, status, ...). New objects are validated by a dry-run
  too when their namespace already exists.
* apply: one server-side apply per object (field manager ``hcops``, ``force=False``), kinds in order
  (Namespace ... StatefulSets), objects of one kind in parallel. An unchanged object is not written (its
  resourceVersion stays). A 409 is a field conflict: fields that imperative edits took (``kubectl edit``)
  are reverted when ``revertDrift`` allows it, with a warning per field; fields another server-side-apply
  manager owns fail the apply with :class:`ApplyConflict`.
* objects hcops applied that the spec no longer declares are deleted (claims and Secrets only with
  ``prune_volumes``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from hcops.errors import EnvironmentProblem, HcopsError, InvalidInput
from hcops.progress import Reporter
from hcops.providers.base import Action, Change, Changes, FieldChange
from hcops.providers.kubernetes.api import FIELD_MANAGER, ApiError, KubeApi, Obj, Ref
from hcops.providers.kubernetes.conflicts import Conflict, conflict_error, conflicts
from hcops.providers.kubernetes.diff import field_changes, normalize
from hcops.providers.kubernetes.objects import (
    Desired,
    Live,
    order_key,
    prune_candidates,
)

WORKERS = 8
ADOPTED = "(labelled for this network by hcops)"  # an existing object without the labels, taken over
T = TypeVar("T")
R = TypeVar("R")


def translate(err: ApiError, ref: Ref, verb: str) -> HcopsError:
    """An API error as the error a user can act on."""
    if err.status in (400, 422):
        return InvalidInput(
            f"the API server rejected {ref}: {err.message}",
            hint="a renderer bug or an API version the cluster does not serve",
        )
    if err.status in (401, 403):
        return EnvironmentProblem(
            f"not allowed to {verb} {ref}: {err.message}",
            hint="the kubeconfig user needs rights over the namespace's objects",
        )
    return EnvironmentProblem(f"{verb} {ref}: {err}")


def _parallel(items: Iterable[T], fn: Callable[[T], R]) -> list[R]:
    items = list(items)
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items))) as pool:
        return list(pool.map(fn, items))


def groups(objects: Iterable[Obj]) -> list[list[Obj]]:
    """Objects grouped by kind, in apply order; a group's objects do not depend on each other."""
    ordered = sorted(objects, key=order_key)
    return [list(g) for _, g in itertools.groupby(ordered, key=lambda o: order_key(o)[:2])]


def _change(ref: Ref, action: Action, node: str | None, fields: tuple[FieldChange, ...] = ()) -> Change:
    name = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
    return Change(kind=ref.kind, name=name, action=action, fields=fields, node=node)


def _conflict_fields(found: tuple[Conflict, ...]) -> tuple[FieldChange, ...]:
    return tuple(FieldChange(f"conflict: {c.field}", c.manager, FIELD_MANAGER) for c in found)


# ------------------------------------------------------------------ plan
def dry_run(api: KubeApi, obj: Obj, live: Obj | None) -> tuple[Obj, tuple[Conflict, ...]]:
    """The object as the server would store it after hcops' apply (forced when fields conflict)."""
    ref = Ref.of(obj)
    try:
        return api.apply(obj, dry_run=True), ()
    except ApiError as exc:
        if not exc.conflict:
            raise translate(exc, ref, "dry-run apply") from None
        found = conflicts(exc, live)
    try:
        return api.apply(obj, dry_run=True, force=True), found
    except ApiError as exc:
        raise translate(exc, ref, "dry-run apply") from None


def namespace_ready(api: KubeApi, want: Desired, live: Live) -> bool:
    ns = live.get(Ref("v1", "Namespace", "", want.namespace)) or api.get(
        Ref("v1", "Namespace", "", want.namespace)
    )
    return ns is not None and not (ns.get("metadata") or {}).get("deletionTimestamp")


def plan_changes(api: KubeApi, want: Desired, live: Live, *, prune_volumes: bool = False) -> Changes:
    ns_ready = namespace_ready(api, want, live)

    def one(obj: Obj) -> Change:
        ref = Ref.of(obj)
        # Not found by label: look it up by name, unless its namespace does not even exist.
        cur = live.get(ref) or (api.get(ref) if ns_ready or not ref.namespace else None)
        node = want.node_of(obj)
        if cur is None:
            if ns_ready or not ref.namespace:
                dry_run(api, obj, None)  # server-side validation of the new object
            return _change(ref, Action.create, node)
        result, found = dry_run(api, obj, cur)
        fields = field_changes(normalize(cur), normalize(result)) + _conflict_fields(found)
        return _change(ref, Action.update if fields else Action.unchanged, node, fields)

    items = [c for g in groups(want.objects) for c in _parallel(g, one)]
    items += [
        _change(Ref.of(o), Action.delete, want.node_of(o))
        for o in prune_candidates(want, live, prune_volumes)
    ]
    return Changes(tuple(items))


# ------------------------------------------------------------------ apply
def apply_objects(
    api: KubeApi,
    want: Desired,
    live: Live,
    reporter: Reporter,
    *,
    revert_drift: bool,
    prune_volumes: bool = False,
) -> tuple[Changes, Live]:
    """Apply every declared object and delete stale ones; the changes, and the live objects after."""
    ns = live.get(Ref("v1", "Namespace", "", want.namespace))
    if ns is not None and (ns.get("metadata") or {}).get("deletionTimestamp"):
        raise EnvironmentProblem(
            f"namespace {want.namespace} is being deleted",
            hint="wait until it is gone (`kubectl get ns`), then apply again",
        )
    after = dict(live.objects)

    def one(obj: Obj) -> Change:
        ref = Ref.of(obj)
        cur = live.get(ref)  # None: absent, or present without the network's labels (then adopted)
        try:
            result, created = api.apply_created(obj)
        except ApiError as exc:
            if not exc.conflict:
                raise translate(exc, ref, "apply") from None
            found = conflicts(exc, cur or api.get(ref))
            if not revert_drift or any(not c.imperative for c in found):
                raise conflict_error(ref, found, revert_drift=revert_drift) from None
            for c in found:
                reporter.warn(f"{ref}: reverting {c.field}, changed behind hcops' back by {c.manager}")
            try:
                result, created = api.apply_created(obj, force=True)
            except ApiError as exc2:
                raise translate(exc2, ref, "apply") from None
        after[ref] = result
        node = want.node_of(obj)
        if created:
            return _change(ref, Action.create, node)
        if cur is None:
            return _change(ref, Action.update, node, (FieldChange("metadata.labels", None, ADOPTED),))
        fields = field_changes(normalize(cur), normalize(result))
        return _change(ref, Action.update if fields else Action.unchanged, node, fields)

    items: list[Change] = []
    for group in groups(want.objects):
        kind = group[0]["kind"]
        reporter.step(f"applying {len(group)} {kind} object(s)")
        items += _parallel(group, one)
    stale = prune_candidates(want, live, prune_volumes)
    if stale:
        reporter.step(f"deleting {len(stale)} object(s) the spec no longer declares")
        items += delete_objects(api, stale, want)
        for o in stale:
            after.pop(Ref.of(o), None)
    return Changes(tuple(items)), Live(after)


def delete_objects(api: KubeApi, objects: Iterable[Mapping[str, Any]], want: Desired) -> list[Change]:
    def one(obj: Mapping[str, Any]) -> Change | None:
        ref = Ref.of(obj)
        try:
            gone = api.delete(ref)
        except ApiError as exc:
            raise translate(exc, ref, "delete") from None
        return _change(ref, Action.delete, want.node_of(obj)) if gone else None

    out: list[Change] = []
    by_rank = sorted(objects, key=order_key, reverse=True)
    for _, group in itertools.groupby(by_rank, key=lambda o: order_key(o)[:2]):
        out += [c for c in _parallel(list(group), one) if c is not None]
    return out
