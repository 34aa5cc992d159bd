"""The docker provider's pure parts: desired container, node files, live-field read-back, plan diff,
error translation. No engine needed."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests

from hcops.errors import EnvironmentProblem
from hcops.plan.desired import NetworkPlan, build_plan
from hcops.providers.base import Action
from hcops.providers.docker import engine
from hcops.providers.docker.containers import DesiredContainer, live_fields, network_name
from hcops.providers.docker.inventory import Inventory, diff, needs_replacement
from hcops.spec.loader import load_spec
from tests.conftest import EXAMPLE, SpecDir


@pytest.fixture
def plan(tmp_path: Path) -> NetworkPlan:
    return build_plan(load_spec(EXAMPLE), tmp_path / "state")


def attrs_for(d: DesiredContainer, status: str = "running") -> dict[str, Any]:
    """A container inspect document as the engine would return for ``d``'s create arguments."""
    kw = d.create_kwargs("1.41")
    host, port = kw["ports"]["26657/tcp"]
    return {
        "Config": {"Image": kw["image"], "Cmd": kw["command"], "User": kw["user"], "Labels": kw["labels"]},
        "HostConfig": {"Memory": kw["mem_limit"], "NanoCpus": kw["nano_cpus"], "PidsLimit": kw["pids_limit"],
                       "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
                       "ReadonlyRootfs": True, "CapDrop": ["ALL"], "SecurityOpt": kw["security_opt"],
                       "PortBindings": {"26657/tcp": [{"HostIp": host, "HostPort": str(port)}]}},
        "NetworkSettings": {"Networks": {kw["network"]: {"IPAMConfig": {"IPv4Address": d.node.docker_ip}}}},
        "Mounts": [{"Type": "volume", "Name": d.volume, "Destination": "/cometbft"}],
        "State": {"Status": status},
    }


@dataclass
class Stub:
    name: str
    attrs: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    status: str = "running"


def inventory(plan: NetworkPlan, **overrides: dict[str, Any]) -> Inventory:
    net = Stub(network_name(plan), {"IPAM": {"Config": [{"Subnet": plan.docker_subnet}]}})
    inv = Inventory(network=net)
    for n in plan.nodes:
        d = DesiredContainer(plan, n)
        a = attrs_for(d)
        for key, value in overrides.get(n.name, {}).items():
            section, _, item = key.partition(".")
            a[section][item] = value
        inv.containers[n.name] = Stub(d.name, a, a["Config"]["Labels"])  # type: ignore[assignment]
        inv.volumes[d.volume] = Stub(d.volume, {"Labels": {}})
    return inv


def test_container_is_hardened_and_labelled(plan: NetworkPlan) -> None:
    d = DesiredContainer(plan, plan.nodes[0])
    kw = d.create_kwargs("1.41")
    assert kw["user"] == "10001:10001" and kw["read_only"] and kw["cap_drop"] == ["ALL"]
    assert kw["security_opt"] == ["no-new-privileges:true"] and "/tmp" in kw["tmpfs"]
    assert kw["mem_limit"] == kw["memswap_limit"] == 512 * 2**20 and kw["nano_cpus"] == 500_000_000
    assert kw["ports"] == {"26657/tcp": ("127.0.0.1", plan.nodes[0].rpc_host_port)}
    assert kw["healthcheck"]["test"] == ["CMD", "/usr/local/bin/hcops-probe"]
    assert kw["restart_policy"] == {"Name": "unless-stopped"}
    assert kw["network"] == plan.name and "environment" not in kw
    labels = kw["labels"]
    assert labels["hcops.network"] == plan.name and labels["hcops.node"] == plan.nodes[0].name
    assert labels["hcops.org"] == plan.nodes[0].node.org and labels["hcops.spec-hash"] == plan.spec_hash()
    assert labels["hcops.config-hash"] == d.config_hash()
    secrets = plan.keystore.private_files(plan.nodes[0].name)
    flat = repr(kw)
    for content in secrets.values():
        assert content.decode()[:40] not in flat


def test_public_rpc_exposure_publishes_on_all_interfaces(spec_dir: SpecDir, tmp_path: Path) -> None:
    spec_dir.overlay("pub", "spec:\n  network:\n    rpc: {exposure: consortium}\n")
    p = build_plan(load_spec(spec_dir.spec, "pub"), tmp_path / "s")
    assert DesiredContainer(p, p.nodes[0]).create_kwargs("1.41")["ports"]["26657/tcp"][0] == "0.0.0.0"


def test_node_archive_owner_and_modes(plan: NetworkPlan) -> None:
    d = DesiredContainer(plan, plan.nodes[0])
    with tarfile.open(fileobj=io.BytesIO(d.archive(with_state=True))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"config", "data", "config/config.toml", "config/genesis.json",
                            "config/node_key.json", "config/priv_validator_key.json",
                            "data/priv_validator_state.json"}
    assert all(m.uid == m.gid == 10001 for m in members.values())
    assert members["config/priv_validator_key.json"].mode == 0o600 and members["config"].isdir()
    with tarfile.open(fileobj=io.BytesIO(d.archive(with_state=False))) as tar:
        without = tar.getnames()
    assert "data/priv_validator_state.json" not in without  # never overwrite the signing state


def test_live_fields_read_back_the_desired_fields(plan: NetworkPlan) -> None:
    for n in plan.nodes:
        d = DesiredContainer(plan, n)
        assert live_fields(attrs_for(d), plan.name) == d.fields()


def test_diff_fresh_unchanged_and_changed(plan: NetworkPlan) -> None:
    fresh = diff(plan, Inventory(network=None))
    assert {c.action for c in fresh.items} == {Action.create} and len(fresh.items) == 1 + 2 * len(plan.nodes)

    same = diff(plan, inventory(plan))
    assert not same.pending

    node = plan.nodes[1].name
    inv = inventory(plan, **{node: {"HostConfig.Memory": 256 * 2**20, "State.Status": "exited"}})
    changed = diff(plan, inv).pending
    assert len(changed) == 1 and changed[0].node == node and changed[0].action is Action.update
    fields = {f.field: (f.old, f.new) for f in changed[0].fields}
    assert fields == {"memory": ("256Mi", "512Mi"), "state": ("exited", "running")}
    assert needs_replacement(changed[0])

    stopped = diff(plan, inventory(plan, **{node: {"State.Status": "exited"}})).pending
    assert [f.field for f in stopped[0].fields] == ["state"] and not needs_replacement(stopped[0])


def test_diff_removed_node_and_volume_pruning(plan: NetworkPlan, spec_dir: SpecDir, tmp_path: Path) -> None:
    inv = inventory(plan)
    extra = DesiredContainer(plan, plan.nodes[-1])
    inv.containers["gone-node"] = Stub("x-gone-node", attrs_for(extra), {})  # type: ignore[assignment]
    inv.volumes["x-gone-node-data"] = Stub("x-gone-node-data", {"Labels": {"hcops.node": "gone-node"}})
    pending = diff(plan, inv).pending
    assert [(c.kind, c.name, c.action) for c in pending] == [("container", "x-gone-node", Action.delete)]
    pruned = diff(plan, inv, prune_volumes=True).pending
    assert ("volume", "x-gone-node-data", Action.delete) in [(c.kind, c.name, c.action) for c in pruned]


def test_config_change_shows_as_config_field(plan: NetworkPlan, tmp_path: Path) -> None:
    inv = inventory(plan)
    text = EXAMPLE.read_text().replace("blockInterval: 1s", "blockInterval: 2s")
    spec = tmp_path / "net.yaml"
    spec.write_text(text)
    changed = build_plan(load_spec(spec), plan.state_dir.parent)
    pending = diff(changed, inv).pending
    assert len(pending) == len(plan.nodes)
    assert all([f.field for f in c.fields] == ["config"] for c in pending), pending


def test_engine_error_translation() -> None:
    port = engine.translate(docker.errors.APIError("500", explanation=(
        "driver failed programming external connectivity on endpoint x: Error starting userland proxy: "
        "listen tcp4 127.0.0.1:26657: bind: address already in use")), "starting container x")
    assert isinstance(port, EnvironmentProblem) and "host port 26657 is already taken" in port.message
    pool = engine.translate(docker.errors.APIError("403", explanation="Pool overlaps with other one on this "
                                                   "address space"), "creating network n")
    assert "subnet overlaps" in pool.message and pool.hint and "subnet" in pool.hint
    taken = 'Conflict. The container name "/a" is already in use by container "b"'
    conflict = engine.translate(docker.errors.APIError("409", explanation=taken), "creating container a")
    assert "name conflict" in conflict.message
    down = engine.translate(requests.exceptions.ConnectionError("Connection refused"), "listing")
    assert "not running" in down.message


def test_connect_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(EnvironmentProblem, match="not running or not reachable"):
        engine.connect(timeout=2)

    def denied(**_: Any) -> Any:
        raise docker.errors.DockerException("Error while fetching server API version: ('Connection "
                                            "aborted.', PermissionError(13, 'Permission denied'))")

    monkeypatch.setattr(docker, "from_env", denied)
    with pytest.raises(EnvironmentProblem, match="permission denied on the Docker socket") as info:
        engine.connect()
    assert info.value.hint and "docker" in info.value.hint
