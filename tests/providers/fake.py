"""An in-memory provider with the docker provider's semantics, for fast contract and use-case tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.progress import Reporter
from hcops.providers.base import (
    Action,
    ApplyOptions,
    ApplyResult,
    Change,
    Changes,
    DestroyResult,
    FieldChange,
    NodeStatus,
    Observation,
)
from hcops.providers.facts import ContainerFacts, ImageFacts, RpcFacts


def _node_hash(plan: NetworkPlan, name: str) -> str:
    n = plan.node(name)
    return f"{n.node.image}|{n.node.resources}|{sorted(plan.docker_config(n).items())!r}"


@dataclass
class _Net:
    nodes: dict[str, str] = field(default_factory=dict)  # node -> config hash
    volumes: set[str] = field(default_factory=set)
    height: int = 0


class FakeProvider:
    name: ClassVar[str] = "fake"

    def __init__(self) -> None:
        self.networks: dict[str, _Net] = {}
        self.volumes: dict[str, set[str]] = {}
        self.applied: list[str] = []

    def plan(self, plan: NetworkPlan, *, prune_volumes: bool = False) -> Changes:
        net = self.networks.get(plan.name)
        vols = self.volumes.get(plan.name, set())
        items = [Change("network", plan.name, Action.unchanged if net else Action.create)]
        for n in plan.nodes:
            vol = Action.unchanged if n.name in vols else Action.create
            items.append(Change("volume", f"{n.name}-data", vol, node=n.name))
            want = _node_hash(plan, n.name)
            have = net.nodes.get(n.name) if net else None
            if have is None:
                items.append(Change("container", n.name, Action.create, node=n.name))
            elif have != want:
                items.append(Change("container", n.name, Action.update, (FieldChange("config", have, want),),
                                    node=n.name))
            else:
                items.append(Change("container", n.name, Action.unchanged, node=n.name))
        declared = {n.name for n in plan.nodes}
        for name in sorted(set(net.nodes) - declared) if net else ():
            items.append(Change("container", name, Action.delete, node=name))
        if prune_volumes:
            items += [Change("volume", f"{v}-data", Action.delete, node=v) for v in sorted(vols - declared)]
        return Changes(tuple(items))

    def apply(self, plan: NetworkPlan, reporter: Reporter, options: ApplyOptions) -> ApplyResult:
        changes = self.plan(plan, prune_volumes=options.prune_volumes)
        if not changes.pending:
            reporter.step("no changes")
        net = self.networks.setdefault(plan.name, _Net())
        vols = self.volumes.setdefault(plan.name, set())
        net.nodes = {n.name: _node_hash(plan, n.name) for n in plan.nodes}
        vols |= {n.name for n in plan.nodes}
        if options.prune_volumes:
            vols &= {n.name for n in plan.nodes}
        net.height += options.min_blocks
        self.applied.append(plan.name)
        return ApplyResult(changes, self.observe(plan))

    def observe(self, plan: NetworkPlan) -> Observation:
        net = self.networks.get(plan.name)
        nodes = tuple(self._status(plan, n, net.height if net and n.name in net.nodes else None)
                      for n in plan.nodes)
        declared = {n.name for n in plan.nodes}
        extra = sorted(set(net.nodes) - declared) if net else []
        undeclared = tuple({"kind": "container", "name": k} for k in extra)
        return Observation(plan.name, nodes, undeclared)

    @staticmethod
    def _status(plan: NetworkPlan, n: NodePlan, height: int | None) -> NodeStatus:
        running = height is not None
        url = f"http://127.0.0.1:{n.rpc_host_port}"
        return NodeStatus(
            name=n.name, org=n.node.org, role=n.node.role.value, present=running,
            state="running" if running else "absent", height=height, rpc_address=url.removeprefix("http://"),
            resource=n.name,
            container=ContainerFacts(present=running, name=n.name, state="running" if running else None,
                                     image=ImageFacts(reference=n.node.image) if running else None),
            rpc=RpcFacts(reachable=True, url=url, node_id=n.keys.node_id, height=height) if running else None)

    def destroy(self, plan: NetworkPlan, reporter: Reporter, *, prune_volumes: bool = False) -> DestroyResult:
        net = self.networks.pop(plan.name, None)
        removed = [Change("container", n, Action.delete) for n in (net.nodes if net else {})]
        if net:
            removed.append(Change("network", plan.name, Action.delete))
        kept: tuple[str, ...] = ()
        if prune_volumes:
            vols = self.volumes.pop(plan.name, set())
            removed += [Change("volume", f"{v}-data", Action.delete) for v in vols]
        else:
            kept = tuple(sorted(f"{v}-data" for v in self.volumes.get(plan.name, set())))
        return DestroyResult(tuple(removed), kept)

    def leftovers(self, plan: NetworkPlan) -> list[str]:
        return [f"network {plan.name}"] if plan.name in self.networks else []
