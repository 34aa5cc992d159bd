"""``read_inventory`` against a fake engine: membership comes from the labelled listing even though the
containers are inspected by name before the listing is back."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest
from docker.models.containers import ContainerCollection

from hcops.plan.desired import NetworkPlan, build_plan
from hcops.providers.docker.containers import LABEL_NETWORK, LABEL_NODE, container_name, network_name
from hcops.providers.docker.inventory import read_inventory
from hcops.spec.loader import load_spec
from tests.conftest import EXAMPLE


@pytest.fixture
def plan(tmp_path: Path) -> NetworkPlan:
    return build_plan(load_spec(EXAMPLE), tmp_path / "state")


class FakeEngine:
    """Containers by id; ``listed`` ids are the ones carrying the network's label."""

    def __init__(self, plan: NetworkPlan) -> None:
        self.plan = plan
        self.by_id: dict[str, dict[str, Any]] = {}
        self.listed: list[str] = []
        self.inspected: list[str] = []
        self.lock = threading.Lock()
        self.api = SimpleNamespace(containers=self._list, inspect_container=self._inspect)
        self.containers = ContainerCollection(client=self)
        self.networks = SimpleNamespace(list=lambda names: [])
        self.volumes = SimpleNamespace(list=lambda filters: [])

    def add(self, cid: str, name: str, node: str | None, *, labelled: bool = True, gone: bool = False) -> None:
        labels = {LABEL_NETWORK: self.plan.name} if labelled else {}
        if node is not None and labelled:
            labels[LABEL_NODE] = node
        if not gone:
            self.by_id[cid] = {"Id": cid, "Name": "/" + name, "Config": {"Labels": labels},
                               "State": {"Status": "running"}}
        if labelled:
            self.listed.append(cid)

    def _list(self, all: bool, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"Id": cid} for cid in self.listed]

    def _inspect(self, ref: str) -> dict[str, Any]:
        with self.lock:
            self.inspected.append(ref)
        found = self.by_id.get(ref) or next(
            (a for a in self.by_id.values() if a["Name"] == "/" + ref), None)
        if found is None:
            raise docker.errors.NotFound(f"no container {ref}")
        return found


def test_membership_comes_from_the_labelled_listing(plan: NetworkPlan) -> None:
    net = network_name(plan)
    first, second, third = (n.name for n in plan.nodes[:3])
    engine = FakeEngine(plan)
    engine.add("a1", container_name(net, first), first)
    engine.add("a2", f"{net}-copy-of-{first}", first)  # labelled for the same node: a stray
    engine.add("b1", container_name(net, second), second, labelled=False)  # our name, not ours
    engine.add("c1", container_name(net, third), third, gone=True)  # listed, removed before inspection

    inv = read_inventory(engine, plan)

    assert {n: c.id for n, c in inv.containers.items()} == {first: "a1"}
    assert [c.id for c in inv.strays] == ["a2"]
    # Every node's expected name went out at once; only the stray needed a second inspection.
    assert set(engine.inspected) >= {container_name(net, n.name) for n in plan.nodes}
    assert engine.inspected.count("a2") == 1 and "a1" not in engine.inspected


def test_a_container_recreated_between_inspection_and_listing_is_inspected_again(plan: NetworkPlan) -> None:
    net = network_name(plan)
    first = plan.nodes[0].name
    engine = FakeEngine(plan)
    engine.add("old", container_name(net, first), first)
    engine.listed = ["new"]  # by the time the listing answers, another container holds the name
    engine.by_id["new"] = {**engine.by_id["old"], "Id": "new"}

    inv = read_inventory(engine, plan)

    assert inv.container(first) is not None and inv.container(first).id == "new"  # type: ignore[union-attr]
    assert not inv.strays
