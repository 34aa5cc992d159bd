"""Observations shaped like the Docker provider's (``NodeStatus.facts``), for tests without an engine."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hcops.plan.desired import NetworkPlan
from hcops.providers.base import NodeStatus, Observation

IMAGE_ID = "sha256:" + "ab" * 32
KEY_FILES = ("config/node_key.json", "config/priv_validator_key.json", "data/priv_validator_state.json")


def block_time(now: dt.datetime, age: float = 0.4) -> str:
    t = (now - dt.timedelta(seconds=age)).astimezone(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def node_facts(plan: NetworkPlan, name: str, now: dt.datetime, height: int = 100) -> dict[str, Any]:
    n = plan.node(name)
    validators = [
        {"address": p.keys.validator_address, "power": p.node.power}
        for p in plan.nodes
        if p.node.is_validator
    ]
    return {
        "container": {
            "present": True,
            "id": f"id-{name}",
            "name": f"{plan.name}-{name}",
            "state": "running",
            "health": "healthy",
            "restart_count": 0,
            "image": {"reference": n.node.image, "id": IMAGE_ID, "repo_digests": [], "tags": [n.node.image]},
            "user": "10001:10001",
            "read_only_rootfs": True,
            "cap_drop": ["ALL"],
            "cap_add": [],
            "privileged": False,
            "security_opt": ["no-new-privileges:true"],
            "no_new_privileges": True,
            "mounts": [
                {
                    "type": "volume",
                    "name": f"{plan.name}-{name}-data",
                    "source": "/var/lib/x",
                    "destination": "/cometbft",
                    "rw": True,
                }
            ],
            "published_ports": {"26657/tcp": [{"host_ip": "127.0.0.1", "host_port": str(n.rpc_host_port)}]},
            "resources": {"memory_bytes": 536870912, "nano_cpus": 500000000, "pids_limit": 512},
            "labels": {"hcops.network": plan.name, "hcops.node": name},
            "key_files": {p: {"mode": "0600", "uid": 10001, "gid": 10001, "size": 100} for p in KEY_FILES},
        },
        "rpc": {
            "reachable": True,
            "url": f"http://127.0.0.1:{n.rpc_host_port}",
            "node_id": n.keys.node_id,
            "moniker": name,
            "chain_id": plan.consortium.spec.chain.chain_id,
            "version": "0.38.17",
            "height": height,
            "latest_block_time": block_time(now),
            "catching_up": False,
            "validator_address": n.keys.validator_address,
            "voting_power": n.node.power,
            "peers": [p.keys.node_id for p in plan.nodes if p.name != name],
            "validators": validators,
            "last_commit": {"height": height - 1, "signers": sorted(v["address"] for v in validators)},
        },
    }


def observation(plan: NetworkPlan, now: dt.datetime, height: int = 100) -> Observation:
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
            facts=node_facts(plan, n.name, now, height),
        )
        for n in plan.nodes
    )
    return Observation(network=plan.name, nodes=nodes, facts={"provider": "docker"})


def stopped(obs: Observation, name: str) -> Observation:
    nodes = []
    for s in obs.nodes:
        if s.name == name:
            facts = {"container": {**s.facts["container"], "state": "exited"}}
            s = NodeStatus(
                name=s.name,
                org=s.org,
                role=s.role,
                present=True,
                state="exited",
                resource=s.resource,
                facts=facts,
            )
        nodes.append(s)
    return Observation(obs.network, tuple(nodes), obs.undeclared, obs.facts)
