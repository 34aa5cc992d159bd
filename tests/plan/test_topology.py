"""Peer selection: a full mesh for small networks (the plan's own configs), a bounded graph beyond."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import tomli_w

from hcops.plan.desired import NetworkPlan, build_plan
from hcops.plan.topology import FULL_MESH_MAX, Topology
from hcops.providers.docker.containers import DesiredContainer
from hcops.spec.loader import load_spec
from tests.render.helpers import fixture_plan


@dataclass(frozen=True)
class _Node:
    is_validator: bool


@dataclass(frozen=True)
class _NodePlan:
    name: str
    node: _Node


@dataclass(frozen=True)
class _Plan:
    nodes: tuple[_NodePlan, ...]

    @property
    def members(self) -> tuple[_NodePlan, ...]:  # the whole network: no remote member here
        return self.nodes


def topology(validators: int, observers: int) -> Topology:
    nodes = [_NodePlan(f"v{i}", _Node(True)) for i in range(validators)]
    nodes += [_NodePlan(f"o{i}", _Node(False)) for i in range(observers)]
    nodes.sort(key=lambda n: int(n.name[1:]) * 2 + (n.name[0] == "o"))  # interleave, as specs usually do
    return Topology(cast(NetworkPlan, _Plan(tuple(nodes))))


def graph(t: Topology) -> dict[str, set[str]]:
    """Undirected: a connection exists once either side dials."""
    edges: dict[str, set[str]] = {n.name: set() for n in t.nodes}
    for n in t.nodes:
        for p in t.peers(cast(Any, n)):
            edges[n.name].add(p.name)
            edges[p.name].add(n.name)
    return edges


def connected(edges: dict[str, set[str]]) -> bool:
    start = next(iter(edges))
    seen, todo = {start}, deque([start])
    while todo:
        for nxt in edges[todo.popleft()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return len(seen) == len(edges)


def test_small_networks_are_a_full_mesh(tmp_path: Path) -> None:
    plan = fixture_plan(tmp_path)
    for node in plan.nodes:
        assert plan.topology.peers(node) == [p for p in plan.nodes if p is not node]
        peers = plan.docker_config(node)["p2p"]["persistent_peers"].split(",")
        assert peers == [f"{p.keys.node_id}@{p.docker_ip}:26656" for p in plan.nodes if p is not node]


def test_every_target_and_provider_dials_the_bounded_peers_of_a_large_network(tmp_path: Path) -> None:
    orgs = "\n".join(
        f"    - {{name: org-{o}, role: provider, baa: {{signed: true, signedOn: 2026-01-01}}, nodes: ["
        + ", ".join(f"{{name: n-{o}-{i}, role: {'validator, power: 10' if i == 0 else 'observer'}}}" for i in range(8))
        + "]}" for o in range(5))
    spec = tmp_path / "big.yaml"
    spec.write_text(f"apiVersion: hcops/v1alpha1\nkind: Consortium\nmetadata: {{name: big}}\n"
                    f"spec:\n  chain: {{version: '0.38.17', image: 'cometbft/cometbft:v0.38.17', chainId: big-1}}\n"
                    f"  organizations:\n{orgs}\n")
    plan = build_plan(load_spec(spec), tmp_path / "state")
    assert len(plan.nodes) == 40 > FULL_MESH_MAX
    for node in plan.nodes:
        dialed = {p.name for p in plan.topology.peers(node)}
        assert 0 < len(dialed) < len(plan.nodes) - 1
        for config in (plan.docker_config(node), plan.kubernetes_config(node, "ns"), plan.host_config(node)):
            assert len(config["p2p"]["persistent_peers"].split(",")) == len(dialed)
        assert DesiredContainer(plan, node).config_toml() == tomli_w.dumps(plan.docker_config(node)).encode()
    assert connected(graph(plan.topology))


@pytest.mark.parametrize(("validators", "observers"), [
    (4, FULL_MESH_MAX - 4), (4, FULL_MESH_MAX - 3), (7, 60), (24, 300), (25, 25), (100, 900), (500, 4500)])
def test_bounded_connected_graph(validators: int, observers: int) -> None:
    t = topology(validators, observers)
    n = validators + observers
    edges = graph(t)
    assert connected(edges)
    dials = {node.name: len(t.peers(cast(Any, node))) for node in t.nodes}
    if n <= FULL_MESH_MAX:
        assert set(dials.values()) == {n - 1}
        return
    ring = math.ceil(math.log2(n))
    assert max(dials.values()) <= FULL_MESH_MAX - 1 + ring
    assert max(d for name, d in dials.items() if name.startswith("o")) <= ring
    # inbound: every node is dialled by about log2(n) others, validators also by the validator mesh
    inbound = {name: 0 for name in dials}
    for node in t.nodes:
        for p in t.peers(cast(Any, node)):
            inbound[p.name] += 1
    assert max(inbound.values()) <= 40  # CometBFT's default p2p.max_num_inbound_peers


def test_validators_mesh_while_few() -> None:
    t = topology(FULL_MESH_MAX, 200)
    vals = {n.name for n in t.nodes if n.node.is_validator}
    for node in t.nodes:
        if node.node.is_validator:
            assert vals - {node.name} <= {p.name for p in t.peers(cast(Any, node))}


def test_peers_are_deterministic_and_in_spec_order() -> None:
    a, b = topology(30, 400), topology(30, 400)
    order = {n.name: i for i, n in enumerate(a.nodes)}
    for x, y in zip(a.nodes, b.nodes, strict=True):
        names = [p.name for p in a.peers(cast(Any, x))]
        assert names == [p.name for p in b.peers(cast(Any, y))]
        assert names == sorted(names, key=order.__getitem__) and x.name not in names
