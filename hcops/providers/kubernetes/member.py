"""What one organization's apply waits for on Kubernetes (``hcops apply --org``), by the rule every provider
shares (``hcops.providers.members``): its pods ready, then, from its own pods' ``net_info``, the voting power
online; blocks signed by every validator when all of it is, by its own validators above 2/3, none below.

Only the organization's own namespace is read, through its own kube context: the other members' nodes are
seen as the peers its nodes are connected to, never by reading their namespaces."""

from __future__ import annotations

import time

from hcops.plan.desired import NetworkPlan
from hcops.progress import Reporter
from hcops.providers.base import ApplyOptions
from hcops.providers.kubernetes.api import KubeApi
from hcops.providers.kubernetes.objects import Desired
from hcops.providers.kubernetes.readiness import PodState, Waiter
from hcops.providers.kubernetes.rpc import ProxiedRpc, pod_tls
from hcops.providers.members import Online, Reach, chain_validators, online
from hcops.providers.rpc import RpcUnavailable

# How long a member's new pods get to connect to the other members' running nodes before the power online is
# taken as it is (peers dial each other with backoff; a pod's DNS name resolves once it has an address).
PEER_GRACE = 20.0


def wait_member(api: KubeApi, plan: NetworkPlan, want: Desired, reporter: Reporter, options: ApplyOptions,
                grace: float = PEER_GRACE) -> Online:
    waiter = Waiter(api, plan, want, reporter, options.timeout)
    reporter.step(f"waiting for {plan.organization}'s {len(want.nodes)} node(s) to be ready and connect to the "
                  "other members' nodes")
    pods = waiter.pods_ready()
    rpcs = [ProxiedRpc(api, want.namespace, s.name, tls=pod_tls(plan, n, want.namespace))
            for n, s in sorted(pods.items()) if s.name]
    seen = power_online(plan, pods, rpcs, reporter, grace)
    reporter.step(seen.describe())
    if seen.reach is Reach.short or options.min_blocks <= 0:
        if seen.reach is Reach.short:
            reporter.step("no block commits before more than 2/3 of the voting power is online: the chain "
                          "starts once enough members have applied their nodes (not waiting for blocks)")
        return seen
    since = max((_height(r) for r in rpcs), default=0) or 1
    if seen.reach is Reach.everyone:
        reporter.step(f"waiting for {options.min_blocks} blocks signed by every validator")
        waiter.signed_blocks(pods, options.min_blocks, validators=chain_validators(plan), since=since)
        return seen
    mine = {n.name for n in plan.nodes}
    own = {n: a for n, a in chain_validators(plan).items() if n in mine}
    task = f"blocks signed by {', '.join(own)}" if own else "blocks committed"
    reporter.step(f"waiting for {options.min_blocks} {task} (more than 2/3 online)")
    waiter.signed_blocks(pods, options.min_blocks, validators=own, since=since, task=task)
    return seen


def power_online(plan: NetworkPlan, pods: dict[str, PodState], rpcs: list[ProxiedRpc], reporter: Reporter,
                 grace: float) -> Online:
    """The power this member's pods see online, once every validator is seen or ``grace`` has passed."""
    end = time.monotonic() + grace
    running = [n for n, s in pods.items() if s.ready]
    while True:
        ids: set[str] = set()
        for rpc in rpcs:
            try:
                ids.update(p.node_id for p in rpc.net_info())
            except RpcUnavailable:
                continue
        seen = online(plan, running, ids)
        reporter.update("voting power online", seen.power, seen.total)
        if seen.reach is Reach.everyone or time.monotonic() > end:
            return seen
        time.sleep(0.5)


def _height(rpc: ProxiedRpc) -> int:
    try:
        return rpc.status().height
    except RpcUnavailable:
        return 0
