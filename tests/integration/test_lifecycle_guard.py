"""The foreign-state guard on the real engine, without running a chain: a kept volume is judged by the genesis
it holds, through its label, or, for a volume hcops created before it labelled them, through the file
itself (read from a container that is created and never started)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from hcops.plan.desired import build_plan
from hcops.providers.docker import guard
from hcops.providers.docker.containers import HOME, DesiredContainer, make_tar, node_labels
from hcops.providers.docker.inventory import read_inventory
from hcops.spec.loader import load_spec
from tests.providers import docker_support

pytestmark = pytest.mark.integration


def test_a_kept_volume_is_judged_by_its_genesis(make_network: Any, docker_engine: Any) -> None:
    net = make_network("guard")
    plan = build_plan(load_spec(net.spec, "test"), net.state_dir)
    node = plan.nodes[0]
    d = DesiredContainer(plan, node)
    volume = docker_engine.volumes.create(d.volume, labels=node_labels(plan, node))  # unlabelled genesis
    guard.check_state(docker_engine, plan, read_inventory(docker_engine, plan))  # empty volume: fine

    def hold(genesis: bytes) -> None:
        writer = docker_engine.containers.create(docker_support.IMAGE, command=["version"], network_mode="none",
                                                 volumes={d.volume: {"bind": HOME, "mode": "rw"}})
        try:
            writer.put_archive(HOME, make_tar([("config", None, 0o700), ("config/genesis.json", genesis, 0o600)]))
        finally:
            writer.remove(force=True)

    hold(plan.genesis_json().encode())  # this chain's genesis: fine
    guard.check_state(docker_engine, plan, read_inventory(docker_engine, plan))
    hold(b'{"chain_id": "another"}\n')
    with pytest.raises(guard.ForeignState, match=f"volume {d.volume} holds the data of another chain") as refused:
        guard.check_state(docker_engine, plan, read_inventory(docker_engine, plan))
    assert "hcops destroy --prune-volumes" in (refused.value.hint or "")
    assert not [c for c in docker_engine.containers.list(all=True) if d.volume in str(c.attrs.get("Mounts"))]
    volume.remove(force=True)

    other = hashlib.sha256(b"another").hexdigest().upper()
    docker_engine.volumes.create(d.volume, labels={**node_labels(plan, node), guard.LABEL_GENESIS: other})
    with pytest.raises(guard.ForeignState, match=other[:12]):
        guard.check_state(docker_engine, plan, read_inventory(docker_engine, plan))
