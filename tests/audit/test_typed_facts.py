"""Typed observations (hcops.providers.facts) become the node section of the fact document exactly as
policies/runtime/README.md documents it: same keys, same order, same values, whichever provider filled them."""

from __future__ import annotations

import dataclasses
from typing import Any

from hcops.audit.facts import build_facts
from hcops.plan.desired import NetworkPlan
from hcops.providers.facts import (
    BinaryFacts,
    ContainerFacts,
    Hardening,
    HostFacts,
    ImageFacts,
    KeyFile,
    Mount,
    PortBinding,
    ResourceLimits,
    RpcFacts,
    UnitFacts,
    port_bindings,
)
from tests.audit import fakes
from tests.audit.conftest import NOW

# The documented order of a node's keys (policies/runtime/README.md, "nodes").
NODE_KEYS = ["name", "org", "role", "resource", "path", "expected", "present", "state", "health", "running", "up",
             "restartCount", "image", "user", "uid", "readOnlyRootFs", "privileged", "capDrop", "capAdd",
             "noNewPrivileges", "mounts", "keyFiles", "ports", "resources", "labels", "rpc", "storage"]
RPC_KEYS = ["reachable", "error", "nodeId", "validatorAddress", "chainId", "version", "height", "catchingUp",
            "latestBlockTime", "latestBlockAgeNs", "peers"]

CONTAINER = ContainerFacts(
    present=True, name="c", state="running", image=ImageFacts("img:1", "sha256:1", ("img@sha256:b", "img@sha256:a")),
    restart_count=2, user="10001:10001", read_only_rootfs=True, privileged=False, no_new_privileges=True,
    cap_drop=("NET_RAW", "ALL"), mounts=(Mount("volume", "v", "/cometbft", True),),
    key_files={"config/z.json": KeyFile(mode="0600", uid=1, gid=2, size=3), "config/a.json": KeyFile(),
               "config/e.json": KeyFile(error="denied")},
    ports=port_bindings({"26660/tcp": [{"host_ip": "", "host_port": 9}], "26657/tcp": [{"host_ip": "127.0.0.1",
                                                                                         "host_port": "1"}]}),
    resources=ResourceLimits(memory_bytes=1, nano_cpus=2), labels={"k": "v"})
RPC = RpcFacts(reachable=True, url="http://x", node_id="n", chain_id="c", version="v", height=7, catching_up=False,
               latest_block_time=fakes.block_time(NOW), validator_address="A", peers=("p2", "p1"),
               tls={"enabled": False})
HOST = HostFacts(
    unit=UnitFacts("u.service", True, "active", "running", True, 1, ("/d",), False),
    hardening=Hardening("cometbft", True, "strict", "yes", True, None, (), ("cap_x",), ("/data",)),
    data_dir="/data", binary=BinaryFacts("/bin/c", True, "ab", "0.38.17", "0.38.17", None),
    user={"name": "cometbft"}, listening=({"address": "127.0.0.1", "port": 26657},), firewall={"enabled": False})


def _node(plan: NetworkPlan, **typed: Any) -> dict[str, Any]:
    obs = fakes.observation(plan, NOW)
    first = dataclasses.replace(obs.nodes[0], **typed)
    doc = build_facts(plan, dataclasses.replace(obs, nodes=(first, *obs.nodes[1:])), sweep_id="s", now=NOW)
    node: dict[str, Any] = doc["nodes"][0]
    return node


def test_typed_container_and_rpc_give_the_documented_node(plan: NetworkPlan) -> None:
    n = _node(plan, container=CONTAINER, rpc=RPC)
    assert list(n) == NODE_KEYS
    assert {k: n[k] for k in NODE_KEYS[11:24]} == {
        "restartCount": 2,
        "image": {"reference": "img:1", "id": "sha256:1", "repoDigests": ["img@sha256:a", "img@sha256:b"],
                  "previousId": None},
        "user": "10001:10001", "uid": 10001, "readOnlyRootFs": True, "privileged": False,
        "capDrop": ["ALL", "NET_RAW"], "capAdd": [], "noNewPrivileges": True,
        "mounts": [{"type": "volume", "name": "v", "destination": "/cometbft", "rw": True}],
        "keyFiles": [
            {"path": "config/a.json", "present": False, "mode": None, "uid": None, "gid": None, "error": None},
            {"path": "config/e.json", "present": False, "mode": None, "uid": None, "gid": None, "error": "denied"},
            {"path": "config/z.json", "present": True, "mode": "0600", "uid": 1, "gid": 2, "error": None},
        ],
        "ports": [
            {"containerPort": 26657, "protocol": "tcp", "service": "rpc", "hostIp": "127.0.0.1", "hostPort": "1"},
            {"containerPort": 26660, "protocol": "tcp", "service": "metrics", "hostIp": "0.0.0.0", "hostPort": "9"},
        ],
        "resources": {"memoryBytes": 1, "nanoCpus": 2, "pidsLimit": None},
    }
    rpc = n["rpc"]
    assert isinstance(rpc, dict) and list(rpc) == [*RPC_KEYS, "tls"]
    assert rpc["peers"] == ["p1", "p2"] and rpc["tls"] == {"enabled": False} and rpc["nodeId"] == "n"
    assert 0 < rpc["latestBlockAgeNs"] < 1_000_000_000


def test_missing_facts_read_as_unknown(plan: NetworkPlan) -> None:
    """No container observed (or one found absent) and no RPC facts: nulls and "not reported", not failures."""
    for container in (None, ContainerFacts(present=False)):
        n = _node(plan, container=container, rpc=None, height=None)
        assert (n["readOnlyRootFs"], n["privileged"], n["noNewPrivileges"], n["uid"]) == (None, None, None, None)
        assert (n["restartCount"], n["user"], n["keyFiles"], n["ports"]) == (0, "", [], [])
        assert n["image"] == {"reference": "", "id": "", "repoDigests": [], "previousId": None}
        assert n["resources"] == {"memoryBytes": None, "nanoCpus": None, "pidsLimit": None}
        rpc = n["rpc"]
        assert isinstance(rpc, dict) and list(rpc) == RPC_KEYS
        assert rpc["reachable"] is False and rpc["error"] == "no RPC facts reported"


def test_host_facts_become_the_camel_case_host_section(plan: NetworkPlan) -> None:
    n = _node(plan, container=CONTAINER, rpc=RPC, host=HOST)
    assert list(n) == [*NODE_KEYS, "host"]
    assert n["host"] == {
        "unit": {"name": "u.service", "installed": True, "activeState": "active", "subState": "running",
                 "enabled": True, "restarts": 1, "dropIns": ["/d"], "restartPending": False},
        "hardening": {"user": "cometbft", "noNewPrivileges": True, "protectSystem": "strict", "protectHome": "yes",
                      "privateTmp": True, "privateDevices": None, "capabilityBoundingSet": [],
                      "ambientCapabilities": ["cap_x"], "readWritePaths": ["/data"]},
        "dataDir": "/data",
        "binary": {"path": "/bin/c", "present": True, "sha256": "ab", "version": "0.38.17",
                   "expectedVersion": "0.38.17", "expectedSha256": None},
        "user": {"name": "cometbft"},
        "listening": [{"address": "127.0.0.1", "port": 26657}],
        "firewall": {"enabled": False},
    }
    assert _node(plan, host=HostFacts(error="no answer"))["host"] == {"error": "no answer"}


def test_port_bindings_normalise_the_engine_map() -> None:
    assert port_bindings({"x/udp": [{"host_ip": None, "host_port": None}], "26656": [{"host_port": 5}]}) == (
        PortBinding(26656, "tcp", "0.0.0.0", "5"), PortBinding(0, "udp", "0.0.0.0", ""))
