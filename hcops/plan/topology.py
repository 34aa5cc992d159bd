"""Who each node dials (``p2p.persistent_peers``) and each target's ``config.toml`` built from it.

``NetworkPlan`` holds one (``plan.topology``): its ``docker_config``, ``kubernetes_config`` and ``host_config``
are this module's, so the renders, the policy input and the providers configure the same peers.

Up to ``FULL_MESH_MAX`` nodes every node lists every other node. Beyond that a full mesh stops working and
stops scaling:

* CometBFT accepts at most ``p2p.max_num_inbound_peers`` (40) inbound connections, so a node in a mesh of
  more than about 80 nodes refuses most of its peers and they redial it forever;
* the peer lists grow as O(n) per node, O(n^2) in total: 5,000 nodes would mean ~1.5 GB of config per target.

So larger networks use a bounded, deterministic graph:

* validators keep a full mesh among themselves while there are at most ``FULL_MESH_MAX`` of them (votes go
  straight to every other validator); past that, each validator dials the validators 1, 2, 4, 8, ... places
  after it in spec order;
* every node also dials the nodes 1, 2, 4, 8, ... places after it among all nodes (in spec order, wrapping).

That graph is connected (distance 1 alone makes a ring), has a diameter of about log2(n) hops, and keeps each
node at no more than ``FULL_MESH_MAX - 1 + ceil(log2 n)`` dials and about as many inbound connections:
for 5,000 nodes 13 dials per observer, with every validator of a <= 24-validator set one hop away from each
other. It only depends on the node order in the spec, so renders stay identical.

The graph is over every member's nodes (``plan.members``), also when the plan is one organization's share
(``hcops apply --org``): its nodes dial the other members' nodes as the whole network's graph says, at the
addresses the lock file records for them (``plan.peer_address``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hcops.plan import cometbft

if TYPE_CHECKING:
    from hcops.plan.desired import NetworkPlan, NodePlan

FULL_MESH_MAX = 24  # with ring links added, inbound connections stay under CometBFT's default limit of 40


def _offsets(size: int) -> list[int]:
    out, step = [], 1
    while step < size:
        out.append(step)
        step *= 2
    return out


class Topology:
    """The peer sets of one plan; computing all of them is O(n log n)."""

    def __init__(self, plan: NetworkPlan) -> None:
        self.plan = plan
        self.nodes = plan.members
        self._position = {p.name: i for i, p in enumerate(self.nodes)}
        self._validators = [i for i, p in enumerate(self.nodes) if p.node.is_validator]
        self._validator_rank = {i: r for r, i in enumerate(self._validators)}
        self._ring = _offsets(len(self.nodes))
        self._validator_ring = _offsets(len(self._validators))

    @property
    def full_mesh(self) -> bool:
        return len(self.nodes) <= FULL_MESH_MAX

    def peers(self, node: NodePlan) -> list[NodePlan]:
        """The nodes ``node`` dials, in spec order."""
        me = self._position[node.name]
        n = len(self.nodes)
        if self.full_mesh:
            return [p for i, p in enumerate(self.nodes) if i != me]
        chosen = {(me + step) % n for step in self._ring}
        rank = self._validator_rank.get(me)
        if rank is not None:
            vals = self._validators
            if len(vals) <= FULL_MESH_MAX:
                chosen.update(vals)
            else:
                chosen.update(vals[(rank + step) % len(vals)] for step in self._validator_ring)
        chosen.discard(me)
        return [self.nodes[i] for i in sorted(chosen)]

    def docker_config(self, node: NodePlan) -> dict[str, Any]:
        """Peers by consortium network IP (the Docker targets); another member's node by its locked address."""
        peers = [f"{p.keys.node_id}@{self.plan.peer_address(p)}" for p in self.peers(node)]
        return cometbft.config(self.plan.consortium, node.node, peers,
                               external_address=f"{node.docker_ip}:{cometbft.P2P_PORT}")

    def kubernetes_config(self, node: NodePlan, namespace: str | None = None) -> dict[str, Any]:
        """Peers by headless-service DNS name, each in its own organization's namespace (another member's
        node, with ``--org``, at the address its join request gave); ``namespace``: the node's, when the
        caller knows it already."""
        peers = [f"{p.keys.node_id}@{self.plan.kube_peer_address(p)}" for p in self.peers(node)]
        own = namespace or self.plan.kube_namespace(node)
        return cometbft.config(self.plan.consortium, node.node, peers,
                               external_address=f"{cometbft.kube_host(node.name, own)}:{cometbft.P2P_PORT}")

    def host_config(self, node: NodePlan) -> dict[str, Any]:
        """Peers by host name (= node name; the Ansible target)."""
        peers = [f"{p.keys.node_id}@{p.name}:{cometbft.P2P_PORT}" for p in self.peers(node)]
        return cometbft.config(self.plan.consortium, node.node, peers, containerised=False)
