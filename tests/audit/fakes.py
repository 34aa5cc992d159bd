"""Observations shaped like the Docker provider's (typed ``NodeStatus`` facts), for tests without an engine."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

from hcops.plan.desired import NetworkPlan
from hcops.providers.base import NodeStatus, Observation
from hcops.providers.facts import (
    ContainerFacts,
    ImageFacts,
    KeyFile,
    LastCommit,
    Mount,
    ResourceLimits,
    RpcFacts,
    port_bindings,
)
from hcops.providers.rpc import Block, BlockMeta, RpcClient, RpcUnavailable, Validator

IMAGE_ID = "sha256:" + "ab" * 32
KEY_FILES = ("config/node_key.json", "config/priv_validator_key.json", "data/priv_validator_state.json")


def block_time(now: dt.datetime, age: float = 0.4) -> str:
    t = (now - dt.timedelta(seconds=age)).astimezone(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def validators(plan: NetworkPlan) -> list[dict[str, Any]]:
    return [{"address": p.keys.validator_address, "power": p.node.power} for p in plan.nodes if p.node.is_validator]


def chain_facts(plan: NetworkPlan, height: int = 100, source: str | None = None) -> dict[str, Any]:
    """The Docker provider's chain-level read: validator set and the last 3 commits, from one node."""
    signers = sorted(v["address"] for v in validators(plan))
    return {
        "source": source or plan.nodes[0].name,
        "height": height,
        "validators": validators(plan),
        "commits": [{"height": h, "signers": signers} for h in (height - 1, height - 2, height - 3)],
    }


def node_facts(
    plan: NetworkPlan, name: str, now: dt.datetime, height: int = 100, *, per_node_chain: bool = False
) -> tuple[ContainerFacts, RpcFacts]:
    n = plan.node(name)
    rpc = RpcFacts(
        reachable=True,
        url=f"http://127.0.0.1:{n.rpc_host_port}",
        node_id=n.keys.node_id,
        moniker=name,
        chain_id=plan.consortium.spec.chain.chain_id,
        version="0.38.17",
        height=height,
        latest_block_time=block_time(now),
        catching_up=False,
        validator_address=n.keys.validator_address,
        voting_power=n.node.power,
        peers=tuple(p.keys.node_id for p in plan.nodes if p.name != name),
    )
    if per_node_chain:  # providers that read the validator set and last commit from every node
        vals = tuple(Validator(v["address"], v["power"]) for v in validators(plan))
        rpc = dataclasses.replace(rpc, validators=vals,
                                  last_commit=LastCommit(height - 1, tuple(sorted(v.address for v in vals))))
    container = ContainerFacts(
        present=True,
        name=f"{plan.name}-{name}",
        state="running",
        restart_count=0,
        image=ImageFacts(reference=n.node.image, id=IMAGE_ID),
        user="10001:10001",
        read_only_rootfs=True,
        cap_drop=("ALL",),
        privileged=False,
        no_new_privileges=True,
        mounts=(Mount("volume", f"{plan.name}-{name}-data", "/cometbft", True),),
        ports=port_bindings({"26657/tcp": [{"host_ip": "127.0.0.1", "host_port": str(n.rpc_host_port)}]}),
        resources=ResourceLimits(memory_bytes=536870912, nano_cpus=500000000, pids_limit=512),
        labels={"hcops.network": plan.name, "hcops.node": name},
        key_files={p: KeyFile(mode="0600", uid=10001, gid=10001, size=100) for p in KEY_FILES},
    )
    return container, rpc


def observation(
    plan: NetworkPlan, now: dt.datetime, height: int = 100, *, per_node_chain: bool = False
) -> Observation:
    """Docker-shaped: chain-level facts read once (``facts["chain"]``); with ``per_node_chain``, shaped like
    providers that report the validator set and last commit per node instead."""
    nodes = tuple(
        NodeStatus(
            name=n.name,
            org=n.node.org,
            role=n.node.role.value,
            present=True,
            state="running",
            health="healthy",
            rpc_address=f"127.0.0.1:{n.rpc_host_port}",
            height=height,
            resource=f"{plan.name}-{n.name}",
            container=container,
            rpc=rpc,
        )
        for n in plan.nodes
        for container, rpc in [node_facts(plan, n.name, now, height, per_node_chain=per_node_chain)]
    )
    facts: dict[str, Any] = {"provider": "docker"}
    if not per_node_chain:
        facts["chain"] = chain_facts(plan, height)
    return Observation(network=plan.name, nodes=nodes, facts=facts)


def stopped(obs: Observation, name: str) -> Observation:
    nodes = []
    for s in obs.nodes:
        if s.name == name:
            container = dataclasses.replace(s.container, state="exited") if s.container else None
            s = NodeStatus(
                name=s.name,
                org=s.org,
                role=s.role,
                present=True,
                state="exited",
                resource=s.resource,
                container=container,
            )
        nodes.append(s)
    return Observation(obs.network, tuple(nodes), obs.undeclared, obs.facts)


class FakeChain(RpcClient):
    """A node's block reads from memory: ``blocks`` maps height -> raw transactions (heights 1..head)."""

    def __init__(self, head: int = 100, txs: dict[int, list[bytes]] | None = None) -> None:
        super().__init__("http://fake.invalid")
        self.head = head
        self.txs = dict(txs or {})
        self.calls: list[str] = []
        self.fail_at: int | None = None  # a height whose /block fails (the node stops answering)

    def earliest_height(self) -> int:
        self.calls.append("status")
        return 1

    def blockchain(self, min_height: int, max_height: int) -> tuple[BlockMeta, ...]:
        self.calls.append(f"blockchain {min_height}-{max_height}")
        assert max_height - min_height < 20
        top = min(max_height, self.head)
        return tuple(BlockMeta(h, len(self.txs.get(h, ()))) for h in range(min_height, top + 1))

    def block(self, height: int) -> Block:
        self.calls.append(f"block {height}")
        if self.fail_at is not None and height >= self.fail_at:
            raise RpcUnavailable(f"http://fake.invalid/block?height={height}: connection refused")
        return Block(height, tuple(self.txs.get(height, ())))


def chain_reader(chain: FakeChain) -> Callable[[Observation], list[tuple[NodeStatus, RpcClient]]]:
    """An Auditor.chain_reader that reads every block from ``chain`` (as the highest node), at its head."""

    def read(obs: Observation) -> list[tuple[NodeStatus, RpcClient]]:
        node = obs.nodes[0]
        return [(NodeStatus(node.name, node.org, node.role, True, "running", height=chain.head), chain)]

    return read


def storage_facts(plan: NetworkPlan, *, encrypted: bool | None = True) -> dict[str, dict[str, Any]]:
    """The Docker provider's ``storage`` facts: every node's volume measured (fscrypt) or plain."""
    return {
        n.name: {
            "kind": "docker-volume", "volume": f"{plan.name}-{n.name}-data", "measured": encrypted is not None,
            "encrypted": encrypted, "method": "fscrypt" if encrypted else None, "fstype": "ext4",
            "device": "/dev/loop0", "detail": "fscrypt v2 policy" if encrypted else "no fscrypt policy",
        }
        for n in plan.nodes
    }
