"""The desired state of a network: every node's identity, addresses, config and genesis.

A plan is either the whole network (one operator holding every key) or one organization's share of a
consortium (``organization``, ``hcops apply --org NAME``). In the latter ``nodes`` are that organization's
nodes only, the ones it deploys, audits and holds keys for; every other member's node is in ``remote``, known
by the public identity and P2P address the lock file records (from the join requests of the genesis
ceremony). Such a plan needs the lock file: the genesis is frozen there and the other members' identities
come from nowhere else. It never creates, reads or asks for a key of another organization's node.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import zlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hcops.clock import format_time, now
from hcops.errors import InvalidInput
from hcops.fsutil import lexists
from hcops.plan import cometbft
from hcops.plan.keys import NODE_KEY, PRIV_VALIDATOR_KEY, KeyStore, PublicKeys
from hcops.plan.lock import LockedNode, NetworkLock, genesis_text, lock_path, read_lock, sha256_hex
from hcops.plan.state import genesis_time, network_dir
from hcops.settings import Settings, resolve
from hcops.spec.loader import LoadedSpec
from hcops.spec.models import Consortium, ResolvedNode

if TYPE_CHECKING:
    from hcops.plan.membership import MembershipPlan
    from hcops.plan.topology import Topology


class KeyMode(StrEnum):
    """Whether planning may create private keys.

    ``generate`` (apply, ``render --generate-keys``): a node with no identity anywhere gets new keys in the
    state folder. ``existing`` (plan, check, render, status, audit, destroy): nothing is created; a node's
    identity comes from the state folder, else from the lock file, else it is pending."""

    generate = "generate"
    existing = "existing"


class Identity(StrEnum):
    local = "local"  # keys in this state folder (and, once locked, equal to the lock's)
    lock = "lock"  # public identity from the lock file only: no private key here
    pending = "pending"  # no identity yet: apply generates the keys


PENDING = "pending"


@dataclass(frozen=True)
class NodePlan:
    node: ResolvedNode
    keys: PublicKeys
    rpc_host_port: int  # published on 127.0.0.1 by the docker target
    docker_ip: str
    identity: Identity = Identity.local

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def has_keys(self) -> bool:
        """Whether this state folder holds the node's private keys."""
        return self.identity is Identity.local


@dataclass(frozen=True)
class KubeScope:
    """Where some of a plan's nodes live on Kubernetes: one namespace, reached through one kube context
    (None: the kubeconfig's current one), with the organizations and nodes placed there."""

    context: str | None
    namespace: str
    organizations: tuple[str, ...]
    nodes: tuple[NodePlan, ...]


@dataclass(frozen=True)
class NetworkPlan:
    """Everything a renderer or provider needs; holds public keys only."""

    loaded: LoadedSpec
    state_dir: Path
    nodes: tuple[NodePlan, ...]
    genesis: dict[str, Any]
    docker_subnet: str
    lock: NetworkLock | None = None  # the chain as the lock file records it; None: no chain yet
    lock_file: Path | None = None
    conflicts: tuple[str, ...] = ()  # state folder keys that differ from the lock (apply refuses)
    # Where templates, tools and the kubeconfig are: the CLI's settings travel with the plan to every renderer
    # and provider. None (a plan built outside the CLI): the environment's, read when they are needed.
    configured: Settings | None = field(default=None, compare=False, repr=False)
    organization: str | None = None  # set: ``nodes`` are this organization's only, the rest are ``remote``
    remote: tuple[NodePlan, ...] = ()  # other members' nodes: public identity and address from the lock

    @functools.cached_property
    def members(self) -> tuple[NodePlan, ...]:
        """Every node of the consortium in spec order: ``nodes`` plus ``remote``. Whoever dials whom, the
        validator set and the consensus rules are about all of them, whoever deploys them."""
        if not self.remote:
            return self.nodes
        return tuple(sorted((*self.nodes, *self.remote), key=lambda n: n.node.index))

    def peer_address(self, node: NodePlan) -> str:
        """Where this plan's nodes dial ``node`` (host:port): a remote member's node at the P2P address its
        organization gave in its join request (the lock file's), our own at its consortium-network IP."""
        if self.lock is not None and self.organization is not None and node.node.org != self.organization:
            locked = self.lock.node(node.name)
            if locked is not None and locked.p2p_address:
                return locked.p2p_address
        return f"{node.docker_ip}:{cometbft.P2P_PORT}"

    def kube_namespace(self, node: NodePlan) -> str:
        """The Kubernetes namespace of a node: its organization's (``spec.organizations[].kubernetes``),
        else the network's."""
        return self.consortium.kube_place(node.node.org)[1]

    def kube_scopes(self) -> tuple[KubeScope, ...]:
        """This plan's nodes grouped by (context, namespace), in spec order: one scope unless organizations
        declare places of their own."""
        groups: dict[tuple[str | None, str], list[NodePlan]] = {}
        for n in self.nodes:
            groups.setdefault(self.consortium.kube_place(n.node.org), []).append(n)
        if not groups:  # a network with no node still has its namespace
            spec = self.consortium.spec.provider.kubernetes
            return (KubeScope(spec.context, spec.namespace or self.name, (), ()),)
        return tuple(KubeScope(ctx, ns, tuple(dict.fromkeys(n.node.org for n in nodes)), tuple(nodes))
                     for (ctx, ns), nodes in groups.items())

    def kube_namespaces(self) -> tuple[str, ...]:
        """Every member's namespace (remote members' too), sorted."""
        return tuple(sorted({self.kube_namespace(n) for n in self.members}))

    def kube_peer_address(self, node: NodePlan) -> str:
        """Where this plan's Kubernetes nodes dial ``node``: a remote member's node at the P2P address of
        its join request (the lock file's), every other node at its pod's DNS name in its namespace."""
        if self.lock is not None and self.organization is not None and node.node.org != self.organization:
            locked = self.lock.node(node.name)
            if locked is not None and locked.p2p_address:
                return locked.p2p_address
        return f"{cometbft.kube_host(node.name, self.kube_namespace(node))}:{cometbft.P2P_PORT}"

    @property
    def settings(self) -> Settings:
        return resolve(self.configured)

    @functools.cached_property
    def genesis_sha256(self) -> str:
        """SHA-256 of ``genesis_json()`` in upper-case hex: every node starts with ``--genesis_hash`` set to it."""
        return sha256_hex(self.genesis_json())

    @property
    def genesis_frozen(self) -> bool:
        return self.lock is not None

    @property
    def pending(self) -> tuple[str, ...]:
        """Nodes with no identity yet."""
        return tuple(n.name for n in self.nodes if n.identity is Identity.pending)

    @property
    def without_keys(self) -> tuple[str, ...]:
        """Nodes whose private keys are not in this state folder (pending, or known from the lock only)."""
        return tuple(n.name for n in self.nodes if not n.has_keys)

    @functools.cached_property
    def membership(self) -> MembershipPlan:
        """Validator-set changes from the chain's set (the lock's) to the spec's."""
        from hcops.plan.membership import membership

        return membership(self)

    def chain_validators(self) -> dict[str, int]:
        """Validator address -> voting power on the chain as last recorded (genesis for a new chain)."""
        if self.lock is not None:
            return self.lock.powers()
        return {str(v["address"]).upper(): int(v["power"]) for v in self.genesis["validators"]}

    def p2p_address(self, node: NodePlan) -> str:
        """Where the other nodes dial ``node``, for the lock file (per provider)."""
        provider = self.consortium.spec.provider
        if provider.type == "kubernetes":
            host = cometbft.kube_host(node.name, self.kube_namespace(node))
        elif provider.type == "ansible":
            host = node.name
        else:
            host = node.docker_ip
        return f"{host}:{cometbft.P2P_PORT}"

    def locked_nodes(self) -> tuple[LockedNode, ...]:
        """The declared nodes with an identity, as the lock file lists them (power: as on the chain now)."""
        powers = self.chain_validators()
        return tuple(LockedNode(
            name=n.name, organization=n.node.org, role=n.node.role.value,
            power=powers.get(n.keys.validator_address.upper(), 0), node_id=n.keys.node_id,
            validator_address=n.keys.validator_address, validator_pub_key=n.keys.validator_pub_key,
            p2p_address=self.p2p_address(n)) for n in self.members if n.identity is not Identity.pending)

    def new_lock(self) -> NetworkLock:
        """The lock of the chain this plan starts (or the existing lock with the declared nodes)."""
        if self.pending:
            raise InvalidInput(f"cannot lock network {self.name}: node(s) {', '.join(self.pending)} have no "
                               "identity yet")
        base = self.lock or NetworkLock(network=self.name, chain_id=self.consortium.spec.chain.chain_id,
                                        genesis_json=self.genesis_json(), environment=self.loaded.environment,
                                        engine_version=self.consortium.spec.chain.version)
        return base.with_nodes(self.locked_nodes())
    @property
    def consortium(self) -> Consortium:
        return self.loaded.consortium

    @property
    def name(self) -> str:
        return self.consortium.name

    @property
    def keystore(self) -> KeyStore:
        return _PlanKeys(self.state_dir, frozenset(self.without_keys))

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def genesis_json(self) -> str:
        if self.lock is not None:
            return self.lock.genesis_json  # frozen: the bytes the chain started from
        return genesis_text(self.genesis)

    @functools.cached_property
    def topology(self) -> Topology:
        """Who dials whom (``hcops.plan.topology``), shared by every target and provider."""
        from hcops.plan.topology import Topology

        return Topology(self)

    def docker_config(self, node: NodePlan) -> dict[str, Any]:
        return self.topology.docker_config(node)

    def kubernetes_config(self, node: NodePlan, namespace: str | None = None) -> dict[str, Any]:
        return self.topology.kubernetes_config(node, namespace)

    def host_config(self, node: NodePlan) -> dict[str, Any]:
        return self.topology.host_config(node)

    def spec_hash(self) -> str:
        doc = self.consortium.model_dump(mode="json", by_alias=True)
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


class _PlanKeys(KeyStore):
    """The plan's key store: a node whose keys are not in this state folder (pending, or known from the lock
    file only) has empty stand-ins under the key files' names, so that the gate's input (which lists the
    files handed to each node) is built without any key. Render and apply refuse such nodes before they
    would write or hand over a key file (``NetworkPlan.without_keys``)."""

    def __init__(self, root: Path, without: frozenset[str]) -> None:
        super().__init__(root)
        self.without = without

    def private_files(self, node: str) -> dict[str, bytes]:
        if node in self.without:
            return {NODE_KEY: b"", PRIV_VALIDATOR_KEY: b""}
        return super().private_files(node)


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


def build_plan(loaded: LoadedSpec, state_override: Path | None = None, *,
               keys: KeyMode = KeyMode.generate, settings: Settings | None = None,
               organization: str | None = None) -> NetworkPlan:
    """Resolve the desired state from the spec, the lock file next to it and the state folder.

    Once the lock file records a chain, its genesis is used as it is (never recomputed) and each node's
    identity is the lock's. With ``keys=KeyMode.generate`` a node that has no identity anywhere gets new
    keys (existing ones are never replaced); with ``KeyMode.existing`` nothing is written and such a node is
    pending. With ``organization`` the plan is that member's share (see the module's docstring): the other
    members' nodes are remote, their identities read from the lock file only, never from the state folder."""
    c = loaded.consortium
    folder = network_dir(c.name, state_override, settings)
    store = KeyStore(folder)
    lock_file = lock_path(loaded.spec_file, loaded.environment)
    lock = read_lock(lock_file)
    if lock is not None:
        _check_lock_matches(lock, lock_file, c)
    if organization is not None:
        check_organization(c, organization, lock, lock_file)
    subnet = c.spec.provider.docker.subnet or default_subnet(c.name)
    base = c.spec.provider.docker.rpc_host_port_base
    nodes: list[NodePlan] = []
    remote: list[NodePlan] = []
    conflicts: list[str] = []
    for n in c.nodes:
        locked = lock.node(n.name) if lock is not None else None
        mine = organization is None or n.org == organization
        # Another member's node: whatever this state folder may hold for it is not ours to hand out.
        local = store.find(n.name) if mine else None
        if local is None and locked is None and keys is KeyMode.generate and mine:
            local = store.ensure(n.name)
        ident, public = _identity(n.name, local, locked, store, conflicts)
        (nodes if mine else remote).append(NodePlan(node=n, keys=public, rpc_host_port=base + n.index,
                                                    docker_ip=node_ip(subnet, n.index), identity=ident))
    store.save_verified()
    if lock is not None:
        gen = lock.genesis
    else:
        time = genesis_time(folder) if keys is KeyMode.generate or lexists(folder / "genesis_time") \
            else format_time(now())  # pending: nothing is written
        gen = cometbft.genesis(c, {p.name: p.keys for p in nodes}, time)
    return NetworkPlan(loaded=loaded, state_dir=folder, nodes=tuple(nodes), genesis=gen, docker_subnet=subnet,
                       lock=lock, lock_file=lock_file, conflicts=tuple(conflicts), configured=settings,
                       organization=organization, remote=tuple(remote))


def check_organization(c: Consortium, organization: str, lock: NetworkLock | None, lock_file: Path) -> None:
    """``--org NAME`` plans one member's share of a chain whose genesis the members assembled together."""
    if not any(n.org == organization for n in c.nodes):
        known = ", ".join(o.name for o in c.spec.organizations if any(n.org == o.name for n in c.nodes))
        raise InvalidInput(f"--org {organization}: no organization of that name runs a node in the spec",
                           hint=f"organizations with nodes: {known}")
    if lock is None:
        raise InvalidInput(
            f"--org {organization}: there is no lock file ({lock_file}), so no genesis the members agreed on "
            "and no public identity of the other members' nodes",
            hint="hold the genesis ceremony first: every organization runs `hcops org init --org NAME`, one "
                 "member runs `hcops genesis assemble` over all the join requests and commits the lock file")


def _identity(name: str, local: PublicKeys | None, locked: LockedNode | None, store: KeyStore,
              conflicts: list[str]) -> tuple[Identity, PublicKeys]:
    if locked is not None:
        public = PublicKeys(node_id=locked.node_id, validator_address=locked.validator_address,
                            validator_pub_key=locked.validator_pub_key)
        if local is None:
            return Identity.lock, public
        if local != public:
            conflicts.append(f"node {name}: the keys in {store.node_dir(name)} (node ID {local.node_id}) are not "
                             f"the ones the lock file records (node ID {locked.node_id})")
            return Identity.lock, public
        return Identity.local, public
    if local is not None:
        return Identity.local, local
    # Unique per node, so that peer lists (and the gate's duplicate-ID rule) stay meaningful.
    return Identity.pending, PublicKeys(node_id=f"{PENDING}-{name}", validator_address=f"{PENDING}-{name}",
                                        validator_pub_key=PENDING)


def _check_lock_matches(lock: NetworkLock, path: Path, c: Consortium) -> None:
    """A lock file is one chain: its chain id is part of the frozen genesis."""
    if lock.chain_id != c.spec.chain.chain_id:
        raise InvalidInput(
            f"{path} records chain {lock.chain_id}, but the spec says spec.chain.chainId {c.spec.chain.chain_id}: "
            "a running chain's id is part of its genesis and cannot change",
            hint="restore spec.chain.chainId; to start a new chain instead, `hcops destroy --prune-volumes` "
                 "the old one (which removes its lock file)")
