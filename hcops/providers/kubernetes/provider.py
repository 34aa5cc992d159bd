"""The Kubernetes provider: the rendered objects (Namespace, per node StatefulSet + headless Service +
ConfigMap + key Secret, NetworkPolicies, PodDisruptionBudget) applied server-side as field manager
``hcops``; plan by server-side dry-run; status and audit through ``observe``; destroy by label.

Each namespace of the plan (``NetworkPlan.kube_scopes``: the network's, or one per organization that declares
its own) is read and written through its own kube context, one client per context. One organization's share
(``hcops apply --org``) is its own namespace only: the other members' namespaces are never listed (their
Namespace objects carry the network's labels too, and are skipped, ``Desired.foreign``), and apply waits for
what the power its nodes see online allows (``member.py``).

Readiness (``waitForReady``, the default): every pod ready, then ``min_blocks`` commits signed by every
validator, read through the API server's pod proxy. ``waitForReady: false`` applies the objects only,
for clusters that cannot run the pods (an API server without nodes, a review cluster).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hcops.clock import format_time, now
from hcops.plan.desired import KubeScope, NetworkPlan
from hcops.progress import Reporter
from hcops.providers.base import (
    ApplyOptions,
    ApplyResult,
    Change,
    Changes,
    DestroyResult,
    Observation,
    register,
)
from hcops.providers.kubernetes import objects as kobj
from hcops.providers.kubernetes.api import KubeApi, Ref
from hcops.providers.kubernetes.connect import connect
from hcops.providers.kubernetes.member import wait_member
from hcops.providers.kubernetes.objects import Desired, Live, read_live
from hcops.providers.kubernetes.observe import merge, observe
from hcops.providers.kubernetes.readiness import Waiter
from hcops.providers.kubernetes.reconcile import apply_objects, delete_objects, plan_changes
from hcops.providers.state import NodeRecord, StateStore

Renderer = Callable[[NetworkPlan, KubeScope], Desired]
NAMESPACE_GONE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Part:
    """One namespace of the plan (``KubeScope``) as the cluster shows it, through the scope's context."""

    scope: KubeScope
    api: KubeApi
    want: Desired
    live: Live


class KubernetesProvider:
    name: ClassVar[str] = "kubernetes"

    def __init__(
        self, api: KubeApi | None = None, *, kubeconfig: Path | None = None, renderer: Renderer = kobj.desired
    ) -> None:
        self._api = api  # given: used for every namespace (tests); else one client per kube context
        self._apis: dict[str | None, KubeApi] = {}
        self._kubeconfig = kubeconfig
        self._render = renderer

    def api(self, plan: NetworkPlan) -> KubeApi:
        """The client of the plan's first namespace's kube context."""
        return self._client(plan, plan.kube_scopes()[0].context)

    def node_place(self, plan: NetworkPlan, node: str) -> tuple[KubeApi, str]:
        """The client (its organization's context) and namespace through which a node's pod is reached."""
        context, namespace = plan.consortium.kube_place(plan.consortium.node(node).org)
        return self._client(plan, context), namespace

    def _client(self, plan: NetworkPlan, context: str | None) -> KubeApi:
        """The client of a kube context (None: the kubeconfig's current one), made once."""
        if self._api is not None:
            return self._api
        if context not in self._apis:
            self._apis[context] = KubeApi(connect(context, self._kubeconfig, plan.settings))
        return self._apis[context]

    def _parts(self, plan: NetworkPlan) -> list[Part]:
        """Every namespace of the plan, each read through its own context: with ``--org``, the
        organization's only; a whole network's one per place its organizations declare."""
        out = []
        for scope in plan.kube_scopes():
            api = self._client(plan, scope.context)
            want = self._render(plan, scope)
            out.append(Part(scope, api, want, read_live(api, want)))
        return out

    # ------------------------------------------------------------------ plan / observe
    def plan(self, plan: NetworkPlan, *, prune_volumes: bool = False) -> Changes:
        items: list[Change] = []
        for p in self._parts(plan):
            items += plan_changes(p.api, p.want, p.live, prune_volumes=prune_volumes).items
        return Changes(tuple(items))

    def observe(self, plan: NetworkPlan) -> Observation:
        return merge(plan, [observe(p.api, plan, p.want, p.live, detail=True) for p in self._parts(plan)])

    # ------------------------------------------------------------------ apply
    def apply(self, plan: NetworkPlan, reporter: Reporter, options: ApplyOptions) -> ApplyResult:
        settings = plan.consortium.spec.provider.kubernetes
        parts = self._parts(plan)
        store = StateStore(plan.state_dir)
        state = store.load(plan.name, self.name)
        state.phase, state.spec_hash, state.started_at, state.finished_at = (
            "applying",
            plan.spec_hash(),
            format_time(now()),
            None,
        )
        state.extra = {**state.extra, "server": parts[0].api.server, "namespace": parts[0].want.namespace}
        state.extra.pop("namespaces", None)
        if len(parts) > 1:
            state.extra["namespaces"] = [p.want.namespace for p in parts]
        store.save(state)

        items: list[Change] = []
        for i, p in enumerate(parts):
            changes, live = apply_objects(p.api, p.want, p.live, reporter, revert_drift=settings.revert_drift,
                                          prune_volumes=options.prune_volumes)
            items += changes.items
            parts[i] = dataclasses.replace(p, live=live)
        all_changes = Changes(tuple(items))
        if not all_changes.pending:
            reporter.step("no changes: the cluster already matches the spec")
        wait = settings.wait_for_ready and getattr(options, "wait", True)
        if wait and plan.remote:
            wait_member(parts[0].api, plan, parts[0].want, reporter, options)
        elif wait:
            reporter.step("waiting for the pods to be ready")
            waiters = [Waiter(p.api, plan, p.want, reporter, options.timeout) for p in parts]
            pods = [w.pods_ready() for w in waiters]
            if options.min_blocks > 0:
                reporter.step(f"waiting for {options.min_blocks} blocks signed by every validator")
                # Every commit carries every validator's signature: one namespace's pods can tell.
                waiters[0].signed_blocks(pods[0], options.min_blocks)
        else:
            reporter.step("objects applied; not waiting for pods (provider.kubernetes.waitForReady: false)")

        state.nodes = {
            n.name: NodeRecord(container=f"{_sts_name(p.want, n.name)}-0", resource_id=_uid(p.live, p.want, n.name))
            for p in parts for n in p.scope.nodes
        }
        state.phase, state.finished_at = "applied", format_time(now())
        store.save(state)
        return ApplyResult(all_changes, merge(plan, [observe(p.api, plan, p.want, p.live, detail=False)
                                                     for p in parts]))

    # ------------------------------------------------------------------ destroy
    def destroy(self, plan: NetworkPlan, reporter: Reporter, *, prune_volumes: bool = False) -> DestroyResult:
        removed: list[Change] = []
        kept: list[str] = []
        for p in self._parts(plan):
            r, k = self._destroy_part(plan, p, reporter, prune_volumes)
            removed += r
            kept += k
        store = StateStore(plan.state_dir)
        state = store.load(plan.name, self.name)
        state.phase, state.finished_at = "destroyed", format_time(now())
        state.nodes = (
            {} if prune_volumes else {k: NodeRecord(volume=v.volume) for k, v in state.nodes.items()}
        )
        store.save(state)
        return DestroyResult(tuple(removed), tuple(kept))

    def _destroy_part(self, plan: NetworkPlan, part: Part, reporter: Reporter, prune_volumes: bool
                      ) -> tuple[list[Change], list[str]]:
        api, want, live = part.api, part.want, part.live
        doomed: list[dict[str, Any]] = []
        kept: list[str] = []
        for ref, obj in sorted(live.objects.items()):
            if kobj.owned(obj):
                continue  # pods, revisions: the garbage collector follows their owners
            if not prune_volumes and (kobj.is_storage(ref) or ref.kind == "Namespace"):
                kept.append(str(ref))  # deleting the namespace would delete the storage in it
                continue
            doomed.append(obj)
        namespaces = [o for o in doomed if o.get("kind") == "Namespace"]
        inner = [o for o in doomed if o.get("kind") != "Namespace"]
        if inner:
            reporter.step(f"deleting {len(inner)} object(s) labelled for network {plan.name} in {want.namespace}")
        removed: list[Change] = delete_objects(api, inner, want)
        if namespaces:
            reporter.step(f"deleting namespace {want.namespace} (and the claims and secrets in it)")
            removed += delete_objects(api, namespaces, want)
            kept += self._wait_namespaces_gone(api, [Ref.of(o) for o in namespaces])
        return removed, kept

    def _wait_namespaces_gone(
        self, api: KubeApi, refs: Sequence[Ref], timeout: float = NAMESPACE_GONE_TIMEOUT
    ) -> list[str]:
        """Namespaces are finalised by the cluster's namespace controller; report those still there."""
        deadline = time.monotonic() + timeout
        left = list(refs)
        while left and time.monotonic() < deadline:
            left = [r for r in left if api.get(r) is not None]
            if left:
                time.sleep(0.5)
        return [f"{r} (still terminating after {timeout:g} s)" for r in left]


def _sts_name(want: Desired, node: str) -> str:
    for s in want.of_kind("StatefulSet"):
        if want.node_of(s) == node:
            return str(s["metadata"]["name"])
    return node


def _uid(live: Live, want: Desired, node: str) -> str | None:
    for s in want.of_kind("StatefulSet"):
        if want.node_of(s) == node:
            obj = live.get(Ref.of(s))
            return str(obj["metadata"]["uid"]) if obj else None
    return None


register("kubernetes", KubernetesProvider)
