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
INSPECT_WORKERS = 16  # within the client's connection pool (engine.POOL_SIZE), which the observe threads share


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
    objects that hold our names.

    Every request goes out at once: the three listings and an inspection of each node's container by its
    expected name. On a busy engine each answer waits for the engine to be scheduled, so one wave of requests
    costs about one wait where a listing followed by the inspections costs two or more. The labelled listing
    is what decides membership: a container found by name but not listed is left out, and a listed one not
    found by name (a stray, or one recreated meanwhile) is inspected after."""
    label = scope_labels(plan)
    net_name = network_name(plan)
    names = [container_name(net_name, n.name) for n in plan.nodes]
    with engine_errors("listing the network's Docker objects"), \
            ThreadPoolExecutor(max_workers=min(INSPECT_WORKERS, len(names) + 3)) as pool:
        nets_f = pool.submit(client.networks.list, names=[net_name])
        listed_f = pool.submit(client.api.containers, all=True, filters={"label": label})
        vols_f = pool.submit(client.volumes.list, filters={"label": label})
        by_name = list(pool.map(_inspect, [client] * len(names), names))
        listed = listed_f.result()
        known = {c.id: c for c in by_name if c is not None}
        unknown = [s["Id"] for s in listed if s["Id"] not in known]
        found = [known[s["Id"]] for s in listed if s["Id"] in known]
        found += [c for c in pool.map(_inspect, [client] * len(unknown), unknown) if c is not None]  # None: removed
        nets = nets_f.result()
        net = next((n for n in nets if n.name == net_name), None)
        if net is not None and (net.attrs.get("Labels") or {}).get(LABEL_NETWORK) != plan.name:
            raise EnvironmentProblem(
                f"a Docker network named {net.name} exists but was not created by hcops for this spec",
                hint=f"remove it (`docker network rm {net.name}`) or change metadata.name")
        inv = Inventory(network=net)

        # The container with the expected name is the node's; any other one labelled for it is a stray.
        def not_expected(c: Container) -> bool:
            return bool(c.name != container_name(net_name, (c.labels or {}).get(LABEL_NODE, "")))

        for c in sorted(found, key=not_expected):
            node = (c.labels or {}).get(LABEL_NODE)
            if node and node not in inv.containers:
                inv.containers[node] = c
            else:
                inv.strays.append(c)
        for v in vols_f.result():
            inv.volumes[v.name] = v
    return inv


def _inspect(client: docker.DockerClient, ref: str) -> Container | None:
    """The container ``ref`` (an id or a name) as the engine has it now; None when there is none."""
    try:
        return client.containers.prepare_model(client.api.inspect_container(ref))
    except docker.errors.NotFound:
        return None


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
