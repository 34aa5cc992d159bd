"""The Kubernetes provider: the rendered objects (Namespace, per node StatefulSet + headless Service +
ConfigMap + key Secret, NetworkPolicies, PodDisruptionBudget) applied server-side as field manager
``hcops``; plan by server-side dry-run; status and audit through ``observe``; destroy by label.

Readiness (``waitForReady``, the default): every pod ready, then ``min_blocks`` commits signed by every
validator, read through the API server's pod proxy. ``waitForReady: false`` applies the objects only,
for clusters that cannot run the pods (an API server without nodes, a review cluster).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from hcops.clock import format_time, now
from hcops.plan.desired import NetworkPlan
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
from hcops.providers.kubernetes.objects import Desired, Live, read_live
from hcops.providers.kubernetes.observe import observe
from hcops.providers.kubernetes.readiness import Waiter
from hcops.providers.kubernetes.reconcile import apply_objects, delete_objects, plan_changes
from hcops.providers.state import NodeRecord, StateStore

Renderer = Callable[[NetworkPlan], Desired]
NAMESPACE_GONE_TIMEOUT = 60.0


class KubernetesProvider:
    name: ClassVar[str] = "kubernetes"

    def __init__(
        self, api: KubeApi | None = None, *, kubeconfig: Path | None = None, renderer: Renderer = kobj.desired
    ) -> None:
        self._api = api
        self._kubeconfig = kubeconfig
        self._render = renderer

    def api(self, plan: NetworkPlan) -> KubeApi:
        if self._api is None:
            settings = plan.consortium.spec.provider.kubernetes
            self._api = KubeApi(connect(settings.context, self._kubeconfig, plan.settings))
        return self._api

    def _read(self, plan: NetworkPlan) -> tuple[KubeApi, Desired, Live]:
        api = self.api(plan)
        want = self._render(plan)
        return api, want, read_live(api, want)

    # ------------------------------------------------------------------ plan / observe
    def plan(self, plan: NetworkPlan, *, prune_volumes: bool = False) -> Changes:
        api, want, live = self._read(plan)
        return plan_changes(api, want, live, prune_volumes=prune_volumes)

    def observe(self, plan: NetworkPlan) -> Observation:
        api, want, live = self._read(plan)
        return observe(api, plan, want, live, detail=True)

    # ------------------------------------------------------------------ apply
    def apply(self, plan: NetworkPlan, reporter: Reporter, options: ApplyOptions) -> ApplyResult:
        settings = plan.consortium.spec.provider.kubernetes
        api, want, live = self._read(plan)
        store = StateStore(plan.state_dir)
        state = store.load(plan.name, self.name)
        state.phase, state.spec_hash, state.started_at, state.finished_at = (
            "applying",
            plan.spec_hash(),
            format_time(now()),
            None,
        )
        state.extra = {**state.extra, "server": api.server, "namespace": want.namespace}
        store.save(state)

        changes, live = apply_objects(
            api, want, live, reporter, revert_drift=settings.revert_drift, prune_volumes=options.prune_volumes
        )
        if not changes.pending:
            reporter.step("no changes: the cluster already matches the spec")
        wait = settings.wait_for_ready and getattr(options, "wait", True)
        if wait:
            reporter.step("waiting for the pods to be ready")
            waiter = Waiter(api, plan, want, reporter, options.timeout)
            pods = waiter.pods_ready()
            if options.min_blocks > 0:
                reporter.step(f"waiting for {options.min_blocks} blocks signed by every validator")
                waiter.signed_blocks(pods, options.min_blocks)
        else:
            reporter.step("objects applied; not waiting for pods (provider.kubernetes.waitForReady: false)")

        state.nodes = {
            n.name: NodeRecord(container=f"{_sts_name(want, n.name)}-0", resource_id=_uid(live, want, n.name))
            for n in plan.nodes
        }
        state.phase, state.finished_at = "applied", format_time(now())
        store.save(state)
        return ApplyResult(changes, observe(api, plan, want, live, detail=False))

    # ------------------------------------------------------------------ destroy
    def destroy(self, plan: NetworkPlan, reporter: Reporter, *, prune_volumes: bool = False) -> DestroyResult:
        api, want, live = self._read(plan)
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
            reporter.step(f"deleting {len(inner)} object(s) labelled for network {plan.name}")
        removed: list[Change] = delete_objects(api, inner, want)
        if namespaces:
            reporter.step(f"deleting namespace {want.namespace} (and the claims and secrets in it)")
            removed += delete_objects(api, namespaces, want)
            kept += self._wait_namespaces_gone(api, [Ref.of(o) for o in namespaces])
        store = StateStore(plan.state_dir)
        state = store.load(plan.name, self.name)
        state.phase, state.finished_at = "destroyed", format_time(now())
        state.nodes = (
            {} if prune_volumes else {k: NodeRecord(volume=v.volume) for k, v in state.nodes.items()}
        )
        store.save(state)
        return DestroyResult(tuple(removed), tuple(kept))

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
