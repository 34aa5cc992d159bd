"""Waiting for a network's pods to be ready and its validators to sign, with the rule every provider uses
(``hcops.providers.readiness``: ``min_blocks`` committed blocks carrying every validator's signature); and,
when the cluster cannot run the pods in time (no nodes, unschedulable, image not found, crash loop), failing
with the pods' state and the events that say why."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hcops.plan.desired import NetworkPlan
from hcops.progress import Reporter
from hcops.providers.kubernetes.api import KubeApi, Obj
from hcops.providers.kubernetes.objects import Desired, selector_string
from hcops.providers.kubernetes.rpc import ProxiedRpc, pod_tls
from hcops.providers.readiness import SIGNED_TASK, Deadline, NotReady, Progress, Source, signed_blocks

POLL = 1.0
EVENTS_PER_OBJECT = 4
# Container states that will not resolve by waiting: fail at once rather than at the deadline.
FATAL_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


@dataclass(frozen=True)
class PodState:
    node: str
    name: str | None  # None: the StatefulSet made no pod
    phase: str  # Running | Pending | Failed | ... | absent
    ready: bool
    waiting: str | None  # reason a container is waiting, e.g. CrashLoopBackOff
    restarts: int
    image_ids: tuple[str, ...] = ()  # of the running containers, as the kubelet reports them

    def describe(self) -> str:
        what = self.name or "no pod"
        detail = f", {self.waiting}" if self.waiting else ""
        return f"{self.node}: {what} {self.phase}{' ready' if self.ready else ''}{detail}"


def statefulset_of(want: Desired, node: str) -> Obj | None:
    for s in want.of_kind("StatefulSet"):
        if want.node_of(s) == node:
            return s
    return None


def pod_state(node: str, pods: list[Obj]) -> PodState:
    if not pods:
        return PodState(node, None, "absent", False, None, 0)
    pod = sorted(pods, key=lambda p: p["metadata"]["name"])[0]
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ()
    )
    waiting = None
    restarts = 0
    for cs in [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]:
        restarts += int(cs.get("restartCount") or 0)
        w = (cs.get("state") or {}).get("waiting") or {}
        if w.get("reason") and w.get("reason") != "PodInitializing":
            waiting = waiting or str(w["reason"])
    if pod["metadata"].get("deletionTimestamp"):
        waiting = waiting or "Terminating"
    image_ids = tuple(str(cs["imageID"]) for cs in status.get("containerStatuses") or () if cs.get("imageID"))
    return PodState(
        node,
        pod["metadata"]["name"],
        str(status.get("phase") or "Unknown"),
        ready,
        waiting,
        restarts,
        image_ids,
    )


def read_pods(api: KubeApi, want: Desired) -> dict[str, PodState]:
    pods = api.list("v1", "Pod", want.namespace, selector=selector_string(want.selector))
    out: dict[str, PodState] = {}
    for node in sorted(want.nodes):
        sts = statefulset_of(want, node)
        match: Mapping[str, str] = ((sts or {}).get("spec") or {}).get("selector", {}).get(
            "matchLabels"
        ) or {}
        mine = [
            p
            for p in pods
            if match and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in match.items())
        ]
        out[node] = pod_state(node, mine)
    return out


def events_for(
    api: KubeApi, namespace: str, kind: str, name: str, limit: int = EVENTS_PER_OBJECT
) -> list[str]:
    items = api.list(
        "v1", "Event", namespace, field_selector=f"involvedObject.kind={kind},involvedObject.name={name}"
    )
    items.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return [
        f"{e.get('type', '')} {e.get('reason', '')}: {str(e.get('message', '')).strip()}"
        for e in items[-limit:]
    ]


def diagnose(api: KubeApi, want: Desired, states: Mapping[str, PodState]) -> str:
    """The pods' state and the events behind it, one block per node that is not ready."""
    lines: list[str] = []
    nodes = api.list("v1", "Node")
    if not nodes:
        lines.append("the cluster has no Node objects: nothing can run pods")
    for node, st in sorted(states.items()):
        if st.ready:
            continue
        lines.append(st.describe())
        events = events_for(api, want.namespace, "Pod", st.name) if st.name else []
        sts = statefulset_of(want, node)
        if sts is not None:
            events += events_for(api, want.namespace, "StatefulSet", sts["metadata"]["name"])
        lines += [f"  {e}" for e in events] or ["  (no events)"]
    return "\n".join(lines)


class Waiter:
    def __init__(
        self,
        api: KubeApi,
        plan: NetworkPlan,
        want: Desired,
        reporter: Reporter,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api, self.plan, self.want, self.reporter = api, plan, want, reporter
        self.timeout = timeout
        self.deadline = Deadline(timeout, clock, sleep)

    def pods_ready(self) -> dict[str, PodState]:
        total = len(self.want.nodes)
        last: dict[str, PodState] = {}

        def attempt() -> dict[str, PodState] | None:
            states = read_pods(self.api, self.want)
            last.clear()
            last.update(states)
            ready = sum(1 for s in states.values() if s.ready)
            self.reporter.update("pods ready", ready, total)
            if ready == total:
                return states
            fatal = [s for s in states.values() if s.waiting in FATAL_WAITING or s.phase == "Failed"]
            if fatal:
                raise NotReady(
                    f"pod of {', '.join(s.node for s in fatal)} cannot start: "
                    f"{'; '.join(s.describe() for s in fatal)}",
                    hint=diagnose(self.api, self.want, states),
                )
            return None

        def timed_out() -> NotReady:
            return NotReady(
                f"timed out after {self.timeout:g} s waiting for pods to be ready "
                f"({sum(1 for s in last.values() if s.ready)}/{total} ready)",
                hint="why, from the cluster:\n"
                + diagnose(self.api, self.want, last)
                + "\nto apply the objects only, set provider.kubernetes.waitForReady: false",
            )

        return self.deadline.poll(attempt, POLL, timed_out)

    def signed_blocks(self, states: Mapping[str, PodState], min_blocks: int, *,
                      validators: Mapping[str, str] | None = None, since: int = 1, task: str = SIGNED_TASK) -> int:
        """Wait until ``min_blocks`` commits carry the signature of every validator (of the plan's nodes, or
        ``validators``: name -> address), read through the API server from the first of ``states``' pods
        that answers, validators first; the latest height."""
        if validators is None:
            validators = {n.name: n.keys.validator_address for n in self.plan.nodes if n.node.is_validator}
        ns = self.want.namespace
        rpcs = {n: ProxiedRpc(self.api, ns, s.name, tls=pod_tls(self.plan, n, ns)) for n, s in states.items()
                if s.name}
        sources = [Source(rpcs[n]) for n in sorted(rpcs, key=lambda n: n not in validators)]
        progress = Progress()

        def timed_out() -> NotReady:
            return NotReady(
                f"timed out after {self.timeout:g} s waiting for {min_blocks} {task} "
                f"({progress.signed} so far; last: {progress.last})"
            )

        return signed_blocks(lambda: sources, validators, min_blocks, deadline=self.deadline,
                             reporter=self.reporter, timed_out=timed_out, progress=progress, interval=POLL / 2,
                             since=since, task=task)
