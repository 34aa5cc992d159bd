"""The desired state of a network: every node's identity, addresses, config and genesis."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hcops.plan import cometbft
from hcops.plan.keys import KeyStore, PublicKeys
from hcops.plan.state import genesis_time, network_dir
from hcops.spec.loader import LoadedSpec
from hcops.spec.models import Consortium, ResolvedNode

if TYPE_CHECKING:
    from hcops.plan.topology import Topology


@dataclass(frozen=True)
class NodePlan:
    node: ResolvedNode
    keys: PublicKeys
    rpc_host_port: int  # published on 127.0.0.1 by the docker target
    docker_ip: str

    @property
    def name(self) -> str:
        return self.node.name


@dataclass(frozen=True)
class NetworkPlan:
    """Everything a renderer or provider needs; holds public keys only."""

    loaded: LoadedSpec
    state_dir: Path
    nodes: tuple[NodePlan, ...]
    genesis: dict[str, Any]
    docker_subnet: str

    @property
    def consortium(self) -> Consortium:
        return self.loaded.consortium

    @property
    def name(self) -> str:
        return self.consortium.name

    @property
    def keystore(self) -> KeyStore:
        return KeyStore(self.state_dir)

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def genesis_json(self) -> str:
        return json.dumps(self.genesis, indent=2) + "\n"

    @functools.cached_property
    def topology(self) -> Topology:
        """Who dials whom (``hcops.plan.topology``), shared by every target and provider."""
        from hcops.plan.topology import Topology

        return Topology(self)

    def docker_config(self, node: NodePlan) -> dict[str, Any]:
        return self.topology.docker_config(node)

    def kubernetes_config(self, node: NodePlan, namespace: str) -> dict[str, Any]:
        return self.topology.kubernetes_config(node, namespace)

    def host_config(self, node: NodePlan) -> dict[str, Any]:
        return self.topology.host_config(node)

    def spec_hash(self) -> str:
        doc = self.consortium.model_dump(mode="json", by_alias=True)
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def default_subnet(network: str) -> str:
    """A /16 in 10.100-199.x chosen from the name, so that renders are stable without any lookup."""
    return f"10.{100 + zlib.crc32(network.encode()) % 100}.0.0/16"


def node_ip(subnet: str, index: int) -> str:
    net = _network(subnet)
    host = index + 10  # .1 is the gateway; keep a few addresses free for tools
    if host >= net.num_addresses - 1:
        raise ValueError(f"subnet {subnet} too small for {index + 1} nodes")
    return str(net.network_address + host)


@functools.lru_cache(maxsize=16)
def _network(subnet: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(subnet, strict=False)


def build_plan(loaded: LoadedSpec, state_override: Path | None = None) -> NetworkPlan:
    """Resolve the desired state; creates missing keys (never replaces existing ones)."""
    c = loaded.consortium
    folder = network_dir(c.name, state_override)
    store = KeyStore(folder)
    subnet = c.spec.provider.docker.subnet or default_subnet(c.name)
    base = c.spec.provider.docker.rpc_host_port_base
    nodes = tuple(
        NodePlan(node=n, keys=store.ensure(n.name), rpc_host_port=base + n.index, docker_ip=node_ip(subnet, n.index))
        for n in c.nodes)
    store.save_verified()
    gen = cometbft.genesis(c, {p.name: p.keys for p in nodes}, genesis_time(folder))
    return NetworkPlan(loaded=loaded, state_dir=folder, nodes=nodes, genesis=gen, docker_subnet=subnet)
