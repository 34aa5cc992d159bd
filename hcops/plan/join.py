"""Per-organization key custody and the genesis ceremony: join requests, signed, checked and assembled.

Each organization creates its nodes' keys on its own machines (``hcops org init --org NAME``) and sends
the others only a join request: its nodes' public identities and P2P endpoints, signed by every node's node
key. Whoever assembles the genesis (``hcops genesis assemble``) checks each request (the signatures, so
that a request altered on its way is refused; chain id and network; the spec's nodes, roles and powers;
key types; duplicate IDs and keys across requests; the consensus rules) and writes the genesis into the
lock file. Nobody ever holds another organization's private keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcops.errors import InvalidInput
from hcops.plan import cometbft
from hcops.plan.desired import NetworkPlan
from hcops.plan.keys import NODE_KEY, PublicKeys
from hcops.plan.lock import LockedNode, NetworkLock, genesis_text
from hcops.plan.membership import judge
from hcops.spec.models import Consortium, Tier

JOIN_VERSION = 1
ED25519 = "tendermint/PubKeyEd25519"


@dataclass(frozen=True)
class JoinNode:
    name: str
    role: str
    power: int
    node_id: str
    node_pub_key: str  # base64: the node key's public half, which signs the request
    validator_address: str
    validator_pub_key: str
    p2p_address: str


@dataclass(frozen=True)
class JoinRequest:
    network: str
    chain_id: str
    organization: str
    created_at: str
    nodes: tuple[JoinNode, ...]
    signatures: Mapping[str, str]  # node name -> base64 ed25519 signature of ``message()``

    def body(self) -> dict[str, Any]:
        return {"joinVersion": JOIN_VERSION, "network": self.network, "chainId": self.chain_id,
                "organization": self.organization, "createdAt": self.created_at,
                "nodes": [{"name": n.name, "role": n.role, "power": n.power, "nodeId": n.node_id,
                           "nodeKeyPubKey": {"type": ED25519, "value": n.node_pub_key},
                           "validatorAddress": n.validator_address,
                           "validatorPubKey": {"type": ED25519, "value": n.validator_pub_key},
                           "p2pAddress": n.p2p_address} for n in self.nodes]}

    def message(self) -> bytes:
        """What every node key signs: the canonical JSON of everything but the signatures."""
        return json.dumps(self.body(), sort_keys=True, separators=(",", ":")).encode()

    def to_json(self) -> str:
        doc = {**self.body(), "signatures": [{"node": k, "signature": v} for k, v in sorted(self.signatures.items())]}
        return json.dumps(doc, indent=2) + "\n"


def _address(pub: bytes) -> bytes:
    return hashlib.sha256(pub).digest()[:20]


def _seed(node_key_json: bytes) -> bytes:
    """The 32-byte seed of a CometBFT node_key.json (read here, used for one signature, never kept)."""
    doc = json.loads(node_key_json)
    return base64.b64decode(doc["priv_key"]["value"])[:32]


def make_request(plan: NetworkPlan, organization: str, endpoints: Mapping[str, str], created_at: str) -> JoinRequest:
    """The organization's join request, signed by each of its nodes' node keys (in ``plan``'s state folder)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    mine = [n for n in plan.nodes if n.node.org == organization]
    if not mine:
        raise InvalidInput(f"organization {organization} runs no node in the spec",
                           hint="declare its nodes under spec.organizations[].nodes first")
    unknown = sorted(set(endpoints) - {n.name for n in mine})
    if unknown:
        raise InvalidInput(f"--endpoint names node(s) {', '.join(unknown)}, not of organization {organization}")
    nodes, keys = [], {}
    for n in mine:
        if not n.has_keys:
            raise InvalidInput(f"no keys for node {n.name} in {plan.state_dir}")
        key = Ed25519PrivateKey.from_private_bytes(_seed(plan.keystore.private_files(n.name)[NODE_KEY]))
        pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        keys[n.name] = key
        nodes.append(JoinNode(name=n.name, role=n.node.role.value, power=n.node.power, node_id=n.keys.node_id,
                              node_pub_key=base64.b64encode(pub).decode(),
                              validator_address=n.keys.validator_address,
                              validator_pub_key=n.keys.validator_pub_key,
                              p2p_address=endpoints.get(n.name) or plan.p2p_address(n)))
    unsigned = JoinRequest(plan.name, plan.consortium.spec.chain.chain_id, organization, created_at, tuple(nodes), {})
    message = unsigned.message()
    signatures = {name: base64.b64encode(key.sign(message)).decode() for name, key in keys.items()}
    return JoinRequest(**{**unsigned.__dict__, "signatures": signatures})


# ------------------------------------------------------------------------------------------ checking
class _Check:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, what: str) -> InvalidInput:
        return InvalidInput(f"{self.source}: {what}",
                            hint="ask the organization for a new join request (`hcops org init`); never edit one")

    def text(self, doc: Mapping[str, Any], key: str) -> str:
        v = doc.get(key)
        if not isinstance(v, str):
            raise self.fail(f"{key}: expected a string")
        return v

    def key(self, doc: Mapping[str, Any], field: str, size: int = 32) -> bytes:
        entry = doc.get(field)
        if not isinstance(entry, Mapping) or entry.get("type") != ED25519:
            raise self.fail(f"{field}: expected an ed25519 key {{\"type\": \"{ED25519}\", ...}}")
        try:
            raw = base64.b64decode(str(entry.get("value")), validate=True)
        except (ValueError, binascii.Error):
            raise self.fail(f"{field}: not base64") from None
        if len(raw) != size:
            raise self.fail(f"{field}: expected {size} bytes, got {len(raw)}")
        return raw


def parse_request(source: str, data: bytes) -> JoinRequest:
    """A join request, its signatures verified: any change to it after signing is refused."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    c = _Check(source)
    try:
        doc = json.loads(data)
    except ValueError:
        raise c.fail("not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("joinVersion") != JOIN_VERSION:
        raise c.fail(f"expected a join request (joinVersion {JOIN_VERSION})")
    nodes = []
    for raw in doc.get("nodes") or []:
        if not isinstance(raw, dict):
            raise c.fail("nodes: expected objects")
        node_pub, val_pub = c.key(raw, "nodeKeyPubKey"), c.key(raw, "validatorPubKey")
        node = JoinNode(name=c.text(raw, "name"), role=c.text(raw, "role"), power=int(raw.get("power") or 0),
                        node_id=c.text(raw, "nodeId"), node_pub_key=base64.b64encode(node_pub).decode(),
                        validator_address=c.text(raw, "validatorAddress"),
                        validator_pub_key=base64.b64encode(val_pub).decode(), p2p_address=c.text(raw, "p2pAddress"))
        if node.node_id != _address(node_pub).hex():
            raise c.fail(f"node {node.name}: nodeId is not the address of its node key")
        if node.validator_address.upper() != _address(val_pub).hex().upper():
            raise c.fail(f"node {node.name}: validatorAddress is not the address of its validator key")
        nodes.append(node)
    if not nodes:
        raise c.fail("lists no node")
    sigs = {str(s.get("node")): str(s.get("signature")) for s in doc.get("signatures") or [] if isinstance(s, dict)}
    req = JoinRequest(c.text(doc, "network"), c.text(doc, "chainId"), c.text(doc, "organization"),
                      c.text(doc, "createdAt"), tuple(nodes), sigs)
    if req.message() != json.dumps({k: v for k, v in doc.items() if k != "signatures"}, sort_keys=True,
                                   separators=(",", ":")).encode():
        raise c.fail("holds fields a join request does not have")
    for n in nodes:
        try:
            Ed25519PublicKey.from_public_bytes(base64.b64decode(n.node_pub_key)).verify(
                base64.b64decode(sigs.get(n.name, ""), validate=True), req.message())
        except (InvalidSignature, ValueError, binascii.Error):
            raise c.fail(f"the signature of node {n.name} does not match: the request was altered after it "
                         "was signed, or not signed by that node's key") from None
    return req


def assemble(c: Consortium, tier: Tier | None, requests: Sequence[tuple[str, JoinRequest]], genesis_time: str,
             environment: str | None) -> NetworkLock:
    """The new chain's genesis and lock from one join request per organization, after every check."""
    by_org: dict[str, tuple[str, JoinRequest]] = {}
    owner: dict[str, str] = {}
    for source, req in requests:
        where = _Check(source)
        if req.chain_id != c.spec.chain.chain_id or req.network != c.name:
            raise where.fail(f"is for chain {req.chain_id} of network {req.network}, not "
                             f"{c.spec.chain.chain_id} of {c.name}")
        if req.organization in by_org:
            first = by_org[req.organization][0]
            raise where.fail(f"a second request of organization {req.organization} (first: {first})")
        by_org[req.organization] = (source, req)
        declared = {n.name: n for n in c.nodes if n.org == req.organization}
        if not declared:
            raise where.fail(f"organization {req.organization} is not in the spec")
        if {n.name for n in req.nodes} != set(declared):
            raise where.fail(f"lists nodes {sorted(n.name for n in req.nodes)}, the spec declares {sorted(declared)}")
        for n in req.nodes:
            d = declared[n.name]
            if n.role != d.role.value or n.power != d.power:
                raise where.fail(f"node {n.name}: role {n.role} power {n.power}, the spec says {d.role.value} "
                                 f"power {d.power}")
            for kind, ident in (("node ID", n.node_id), ("validator key", n.validator_address.upper()),
                                ("node key", n.node_pub_key)):
                other = owner.setdefault(f"{kind}:{ident}", f"{n.name} ({source})")
                if other != f"{n.name} ({source})":
                    raise where.fail(f"node {n.name} has the same {kind} as {other}")
    missing = sorted({n.org for n in c.nodes} - set(by_org))
    if missing:
        raise InvalidInput(f"no join request from organization(s) {', '.join(missing)}",
                           hint="each organization runs `hcops org init --org NAME` and sends its request")
    joined = {n.name: n for _, req in by_org.values() for n in req.nodes}
    powers = {joined[v.name].validator_address.upper(): v.power for v in c.validators}
    orgs: dict[str, int] = {}
    for v in c.validators:
        orgs[v.org] = orgs.get(v.org, 0) + v.power
    problems = judge(powers, orgs)
    if problems and tier is not Tier.development:
        raise InvalidInput("refusing the genesis: " + "; ".join(problems))
    keys = {n.name: PublicKeys(node_id=n.node_id, validator_address=n.validator_address.upper(),
                               validator_pub_key=n.validator_pub_key) for n in joined.values()}
    genesis = cometbft.genesis(c, keys, genesis_time)
    nodes = tuple(LockedNode(name=n.name, organization=n.org, role=n.role.value, power=n.power,
                             node_id=keys[n.name].node_id, validator_address=keys[n.name].validator_address,
                             validator_pub_key=keys[n.name].validator_pub_key,
                             p2p_address=joined[n.name].p2p_address) for n in c.nodes)
    return NetworkLock(network=c.name, chain_id=c.spec.chain.chain_id, genesis_json=genesis_text(genesis),
                       nodes=nodes, environment=environment, engine_version=c.spec.chain.version)


def read_request(path: Path) -> JoinRequest:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the join request ({exc.strerror})") from None
    return parse_request(str(path), data)
