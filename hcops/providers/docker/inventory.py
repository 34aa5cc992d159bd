"""What exists in the engine for a network (found by label and by name) and how it differs from the plan."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from hcops.errors import EnvironmentProblem
from hcops.plan.desired import NetworkPlan
from hcops.providers.base import Action, Change, Changes, FieldChange
from hcops.providers.docker.containers import (
    LABEL_NETWORK,
    LABEL_NODE,
    LABEL_ORG,
    DesiredContainer,
    container_name,
    live_fields,
    network_name,
    volume_name,
)
from hcops.providers.docker.engine import engine_errors

RUNNING = "running"
INSPECT_WORKERS = 8  # below the client's connection pool (10), which the observe threads share


@dataclass
class Inventory:
    network: Any | None  # docker.models.networks.Network
    containers: dict[str, Container] = field(default_factory=dict)  # by node label
    volumes: dict[str, Any] = field(default_factory=dict)  # by volume name
    strays: list[Container] = field(default_factory=list)  # labelled, but no node label

    def container(self, node: str) -> Container | None:
        return self.containers.get(node)


def scope_labels(plan: NetworkPlan) -> list[str]:
    """The labels of the containers and volumes a plan owns: the network's, and with ``--org`` that
    organization's only (the other members' containers on a shared host are theirs to change)."""
    labels = [f"{LABEL_NETWORK}={plan.name}"]
    if plan.organization is not None:
        labels.append(f"{LABEL_ORG}={plan.organization}")
    return labels


def read_inventory(client: docker.DockerClient, plan: NetworkPlan) -> Inventory:
    """Every object labelled with this network (and organization, see ``scope_labels``), plus unlabelled
    objects that hold our names."""
    label = scope_labels(plan)
    with engine_errors("listing the network's Docker objects"):
        nets = client.networks.list(names=[network_name(plan)])
        net = next((n for n in nets if n.name == network_name(plan)), None)
        if net is not None and (net.attrs.get("Labels") or {}).get(LABEL_NETWORK) != plan.name:
            raise EnvironmentProblem(
                f"a Docker network named {net.name} exists but was not created by hcops for this spec",
                hint=f"remove it (`docker network rm {net.name}`) or change metadata.name")
        inv = Inventory(network=net)
        found = _inspected(client, client.api.containers(all=True, filters={"label": label}))
        # The container with the expected name is the node's; any other one labelled for it is a stray.
        net = network_name(plan)

        def not_expected(c: Container) -> bool:
            return bool(c.name != container_name(net, (c.labels or {}).get(LABEL_NODE, "")))

        for c in sorted(found, key=not_expected):
            node = (c.labels or {}).get(LABEL_NODE)
            if node and node not in inv.containers:
                inv.containers[node] = c
            else:
                inv.strays.append(c)
        for v in client.volumes.list(filters={"label": label}):
            inv.volumes[v.name] = v
    return inv


def _inspected(client: docker.DockerClient, summaries: list[dict[str, Any]]) -> list[Container]:
    """Full containers for a listing's summaries, inspected side by side (the SDK inspects them one after the
    other: at 32 nodes on a busy engine that was most of a sweep). One removed meanwhile is left out."""

    def inspect(summary: dict[str, Any]) -> Container | None:
        try:
            return client.containers.prepare_model(client.api.inspect_container(summary["Id"]))
        except docker.errors.NotFound:
            return None

    if len(summaries) < 2:
        found = [inspect(s) for s in summaries]
    else:
        with ThreadPoolExecutor(max_workers=min(INSPECT_WORKERS, len(summaries))) as pool:
            found = list(pool.map(inspect, summaries))
    return [c for c in found if c is not None]


def check_name_conflicts(client: docker.DockerClient, plan: NetworkPlan, inv: Inventory) -> None:
    """A container or volume with one of our names that hcops did not create stops apply before it starts."""
    wanted = [DesiredContainer(plan, n) for n in plan.nodes]
    containers = {d.name for d in wanted if d.node.name not in inv.containers}
    volumes = {d.volume for d in wanted if d.volume not in inv.volumes}
    if not containers and not volumes:
        return
    with engine_errors("checking for name conflicts"):
        # One listing each (the engine's name filter matches substrings; exact names are compared here).
        found = {c["Names"][0].lstrip("/") for c in client.api.containers(all=True, filters={"name": plan.name})
                 if c.get("Names")} if containers else set()
        vols = {v.name for v in client.volumes.list(filters={"name": plan.name})} if volumes else set()
    for name in sorted(containers & found):
        raise EnvironmentProblem(
            f"a container named {name} exists but was not created by hcops for network {plan.name}",
            hint=f"remove or rename it (`docker rm -f {name}`), or change metadata.name")
    for name in sorted(volumes & vols):
        raise EnvironmentProblem(
            f"a volume named {name} exists but was not created by hcops for network {plan.name}",
            hint=f"remove it (`docker volume rm {name}`) or change metadata.name")


def node_changes(d: DesiredContainer, current: Container | None, network: str,
                 network_present: bool = True) -> Change:
    if current is None:
        return Change("container", d.name, Action.create, node=d.node.name)
    live = live_fields(current.attrs, network)
    want = d.fields()
    diffs = [FieldChange(k, live.get(k), v) for k, v in want.items() if live.get(k) != v]
    if not network_present:  # its network was removed under it: only a new container can join the new one
        diffs.append(FieldChange("network", "absent", network))
    state = (current.attrs.get("State") or {}).get("Status") or current.status
    if state != RUNNING:
        diffs.append(FieldChange("state", state, RUNNING))
    action = Action.update if diffs else Action.unchanged
    return Change("container", d.name, action, tuple(diffs), node=d.node.name)


def needs_replacement(change: Change) -> bool:
    """Only a stopped container can be started as it is; any other difference means a new container."""
    return change.action is Action.update and any(f.field != "state" for f in change.fields)


def diff(plan: NetworkPlan, inv: Inventory, *, prune_volumes: bool = False) -> Changes:
    net = network_name(plan)
    items: list[Change] = []
    if inv.network is None:
        subnet_change = (FieldChange("subnet", None, plan.docker_subnet),)
        items.append(Change("network", net, Action.create, subnet_change))
    else:
        subnet = _subnet(inv.network.attrs)
        fields = () if subnet == plan.docker_subnet else (FieldChange("subnet", subnet, plan.docker_subnet),)
        items.append(Change("network", net, Action.update if fields else Action.unchanged, fields))
    declared = {n.name for n in plan.nodes}
    for n in plan.nodes:
        vol = volume_name(net, n.name)
        vol_action = Action.unchanged if vol in inv.volumes else Action.create
        items.append(Change("volume", vol, vol_action, node=n.name))
        has_net = inv.network is not None
        items.append(node_changes(DesiredContainer(plan, n), inv.container(n.name), net, has_net))
    for node, c in sorted(inv.containers.items()):
        if node not in declared:
            items.append(Change("container", c.name, Action.delete, node=node))
    items.extend(Change("container", c.name, Action.delete) for c in inv.strays)
    if prune_volumes:
        wanted = {volume_name(net, n) for n in declared}
        for name, v in sorted(inv.volumes.items()):
            if name not in wanted:
                owner = (v.attrs.get("Labels") or {}).get(LABEL_NODE)
                items.append(Change("volume", name, Action.delete, node=owner))
    return Changes(tuple(items))


def _subnet(attrs: Mapping[str, Any]) -> str | None:
    configs = ((attrs.get("IPAM") or {}).get("Config")) or []
    return configs[0].get("Subnet") if configs else None
