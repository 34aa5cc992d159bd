"""The network's public lock file: what a running chain is, committed next to the spec.

``network.lock.json`` (``network.<env>.lock.json`` with ``--env``: the example's dev and prod overlays keep
the same name and chain id but are different chains) records, once a chain exists:

* the chain id and the genesis document, byte for byte, with its SHA-256: the genesis is frozen here and
  never recomputed from the spec again (every node starts with ``--genesis_hash`` set to it);
* per node: node ID, validator address and public key, current voting power, organization, P2P address;
* every validator-set change since genesis, with the height it was committed at.

It holds public material only: it is built from ``PublicKeys`` and refuses to write anything that looks
like a private key. Anyone in the consortium can read it, diff it in review and plan from it without
the state folder (``hcops check`` in CI needs no secret).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hcops.errors import InvalidInput
from hcops.fsutil import existing_file, read_file, replace_file

LOCK_VERSION = 1
LOCK_SUFFIX = ".lock.json"
PUBLIC_MODE = 0o644  # committed with the spec: readable by everyone who reads the spec
_HEX40 = re.compile(r"[0-9a-fA-F]{40}")
_SECRET_MARKERS = ("priv_key", "PrivKey", "privKey")


def lock_path(spec_file: Path, environment: str | None) -> Path:
    """``<spec dir>/<spec stem>.lock.json``, or ``<stem>.<env>.lock.json`` for an environment overlay."""
    stem = spec_file.stem if not environment else f"{spec_file.stem}.{environment}"
    return spec_file.parent / f"{stem}{LOCK_SUFFIX}"


def genesis_text(genesis: Mapping[str, Any]) -> str:
    """The exact bytes handed to every node as ``config/genesis.json`` (and hashed for the pin)."""
    return json.dumps(genesis, indent=2) + "\n"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest().upper()


@dataclass(frozen=True)
class LockedNode:
    name: str
    organization: str
    role: str  # validator | observer (as declared when last applied)
    power: int  # voting power on the chain now (0: not in the validator set)
    node_id: str
    validator_address: str
    validator_pub_key: str  # base64 ed25519
    p2p_address: str  # host:port the other nodes dial

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "organization": self.organization, "role": self.role, "power": self.power,
                "nodeId": self.node_id, "validatorAddress": self.validator_address,
                "validatorPubKey": {"type": "tendermint/PubKeyEd25519", "value": self.validator_pub_key},
                "p2pAddress": self.p2p_address}


@dataclass(frozen=True)
class ValidatorChange:
    """One committed change of a validator's power (0 -> n: joined; n -> 0: removed)."""

    node: str
    organization: str
    validator_address: str
    validator_pub_key: str
    old_power: int
    new_power: int
    height: int  # the block that carried the update
    effective_height: int  # CometBFT applies an update two blocks later
    at: str = ""  # UTC time it was committed

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "organization": self.organization, "validatorAddress": self.validator_address,
                "validatorPubKey": {"type": "tendermint/PubKeyEd25519", "value": self.validator_pub_key},
                "oldPower": self.old_power, "newPower": self.new_power, "height": self.height,
                "effectiveHeight": self.effective_height, "at": self.at}


@dataclass(frozen=True)
class NetworkLock:
    network: str
    chain_id: str
    genesis_json: str  # the frozen bytes (as text); parsed on demand
    nodes: tuple[LockedNode, ...] = ()
    history: tuple[ValidatorChange, ...] = ()
    environment: str | None = None
    engine_version: str = ""  # spec.chain.version the nodes last ran: upgrades stay within its minor series
    extra: Mapping[str, Any] = field(default_factory=dict)  # fields of newer hcops versions, kept as they are

    @property
    def genesis(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.genesis_json)
        return doc

    @property
    def genesis_sha256(self) -> str:
        return sha256_hex(self.genesis_json)

    def node(self, name: str) -> LockedNode | None:
        return next((n for n in self.nodes if n.name == name), None)

    def powers(self) -> dict[str, int]:
        """Validator address -> voting power now: the genesis validators, then every recorded change."""
        out = {str(v["address"]).upper(): int(v["power"]) for v in self.genesis.get("validators") or ()}
        for ch in self.history:
            out[ch.validator_address.upper()] = ch.new_power
        return {a: p for a, p in out.items() if p > 0}

    def pub_keys(self) -> dict[str, str]:
        """Validator address -> base64 public key, for every validator the lock has ever known."""
        out = {str(v["address"]).upper(): str(v["pub_key"]["value"]) for v in self.genesis.get("validators") or ()}
        out.update({n.validator_address.upper(): n.validator_pub_key for n in self.nodes})
        out.update({c.validator_address.upper(): c.validator_pub_key for c in self.history})
        return out

    def with_change(self, change: ValidatorChange) -> NetworkLock:
        nodes = tuple(replace(n, power=change.new_power)
                      if n.validator_address.upper() == change.validator_address.upper() else n for n in self.nodes)
        return replace(self, nodes=nodes, history=(*self.history, change))

    def with_nodes(self, nodes: Iterable[LockedNode]) -> NetworkLock:
        """The declared nodes, plus any node the lock knows that still holds voting power (a validator is
        listed until its removal is committed)."""
        wanted = list(nodes)
        names = {n.name for n in wanted}
        powers = self.powers()
        kept = [n for n in self.nodes if n.name not in names and powers.get(n.validator_address.upper(), 0) > 0]
        fixed = [replace(n, power=powers.get(n.validator_address.upper(), 0)) for n in wanted]
        return replace(self, nodes=tuple(fixed + kept))

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "lockVersion": LOCK_VERSION,
            "comment": "Public record of the running chain, written by hcops apply: commit it with the spec. "
                       "It holds no private key. The genesis is frozen: never edit it.",
            "network": self.network,
            "environment": self.environment,
            "chainId": self.chain_id,
            "engineVersion": self.engine_version,
            "genesisSha256": self.genesis_sha256,
            "genesis": self.genesis,
            "nodes": [n.to_json() for n in self.nodes],
            "validatorSetChanges": [c.to_json() for c in self.history],
            **dict(self.extra),
        }
        text = json.dumps(doc, indent=2) + "\n"
        _refuse_secrets(text)
        return text


def _refuse_secrets(text: str) -> None:
    """The lock is public: anything shaped like key material is a bug, never written."""
    for marker in _SECRET_MARKERS:
        if marker in text:
            raise InvalidInput(f"refusing to write a lock file that mentions {marker!r}: the lock file is public",
                               hint="please report this: only public keys belong in it")


def upgrade_problem(lock: NetworkLock, version: str) -> str | None:
    """Why moving the chain from the lock's engine version to ``version`` cannot be a rolling upgrade.

    Within a patch series (0.38.x) CometBFT keeps its block, state and wire formats: nodes of both versions
    run side by side, so validators are replaced one at a time with quorum kept. A minor series (0.38 ->
    0.39) may change them: every validator must stop at the same height and migrate, which hcops does not
    orchestrate."""
    old = lock.engine_version
    if not old or old == version:
        return None
    if old.split(".")[:2] == version.split(".")[:2]:
        return None
    return (f"spec.chain.version {version} leaves the {'.'.join(old.split('.')[:2])}.x series the chain runs "
            f"({old}): across minor versions CometBFT may change its block, state and p2p formats, so old and "
            "new nodes cannot run side by side and a rolling upgrade would halt or fork the chain")


# ------------------------------------------------------------------------------------------ reading
class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def bad(self, where: str, what: str) -> InvalidInput:
        return InvalidInput(f"{self.path}: {where}: {what}",
                            hint="restore the lock file from version control; it is written by hcops apply "
                                 "and must not be edited by hand")

    def text(self, doc: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> str:
        value = doc.get(key)
        if value is None and optional:
            return ""
        if not isinstance(value, str):
            raise self.bad(f"{where}{key}", "expected a string")
        return value

    def number(self, doc: Mapping[str, Any], key: str, where: str) -> int:
        value = doc.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.bad(f"{where}{key}", "expected a non-negative integer")
        return value

    def pub_key(self, doc: Mapping[str, Any], where: str) -> str:
        entry = doc.get("validatorPubKey")
        if not isinstance(entry, Mapping) or entry.get("type") != "tendermint/PubKeyEd25519":
            raise self.bad(f"{where}validatorPubKey", 'expected {"type": "tendermint/PubKeyEd25519", "value": ...}')
        return self.text(entry, "value", f"{where}validatorPubKey.")

    def address(self, doc: Mapping[str, Any], key: str, where: str) -> str:
        value = self.text(doc, key, where)
        if not _HEX40.fullmatch(value):
            raise self.bad(f"{where}{key}", "expected 40 hexadecimal digits")
        return value

    def node(self, doc: Any, i: int) -> LockedNode:
        where = f"nodes[{i}]."
        if not isinstance(doc, Mapping):
            raise self.bad(f"nodes[{i}]", "expected an object")
        return LockedNode(
            name=self.text(doc, "name", where), organization=self.text(doc, "organization", where),
            role=self.text(doc, "role", where), power=self.number(doc, "power", where),
            node_id=self.address(doc, "nodeId", where).lower(),
            validator_address=self.address(doc, "validatorAddress", where).upper(),
            validator_pub_key=self.pub_key(doc, where), p2p_address=self.text(doc, "p2pAddress", where))

    def change(self, doc: Any, i: int) -> ValidatorChange:
        where = f"validatorSetChanges[{i}]."
        if not isinstance(doc, Mapping):
            raise self.bad(f"validatorSetChanges[{i}]", "expected an object")
        return ValidatorChange(
            node=self.text(doc, "node", where), organization=self.text(doc, "organization", where),
            validator_address=self.address(doc, "validatorAddress", where).upper(),
            validator_pub_key=self.pub_key(doc, where), old_power=self.number(doc, "oldPower", where),
            new_power=self.number(doc, "newPower", where), height=self.number(doc, "height", where),
            effective_height=self.number(doc, "effectiveHeight", where),
            at=self.text(doc, "at", where, optional=True))


_KNOWN = {"lockVersion", "comment", "network", "environment", "chainId", "engineVersion", "genesisSha256",
          "genesis", "nodes", "validatorSetChanges"}


def parse_lock(path: Path, data: bytes) -> NetworkLock:
    r = _Reader(path)
    try:
        doc = json.loads(data)
    except ValueError:
        raise r.bad("file", "not valid JSON") from None
    if not isinstance(doc, dict):
        raise r.bad("file", "expected a JSON object")
    version = doc.get("lockVersion")
    if version != LOCK_VERSION:
        raise InvalidInput(f"{path}: lockVersion {version!r} is not one this hcops reads ({LOCK_VERSION})",
                           hint="use the hcops version that wrote it, or a newer one")
    genesis = doc.get("genesis")
    if not isinstance(genesis, dict):
        raise r.bad("genesis", "expected the genesis document (an object)")
    text = genesis_text(genesis)
    recorded = r.text(doc, "genesisSha256", "")
    if sha256_hex(text) != recorded.upper():
        raise InvalidInput(f"{path}: the genesis does not match genesisSha256 (the genesis was edited, or the "
                           "hash was): a running chain's genesis never changes",
                           hint="restore the lock file from version control")
    chain_id = r.text(doc, "chainId", "")
    if genesis.get("chain_id") != chain_id:
        raise r.bad("chainId", "differs from genesis.chain_id")
    nodes, changes = doc.get("nodes") or [], doc.get("validatorSetChanges") or []
    if not isinstance(nodes, list) or not isinstance(changes, list):
        raise r.bad("nodes/validatorSetChanges", "expected lists")
    env = doc.get("environment")
    return NetworkLock(
        network=r.text(doc, "network", ""), chain_id=chain_id, genesis_json=text,
        nodes=tuple(r.node(n, i) for i, n in enumerate(nodes)),
        history=tuple(r.change(c, i) for i, c in enumerate(changes)),
        environment=env if isinstance(env, str) else None,
        engine_version=r.text(doc, "engineVersion", "", optional=True),
        extra={k: v for k, v in doc.items() if k not in _KNOWN})


def read_lock(path: Path) -> NetworkLock | None:
    """The lock file, or None when there is none (no chain yet). Never through a link."""
    data = read_file(path)
    return None if data is None else parse_lock(path, data)


def write_lock(path: Path, lock: NetworkLock) -> bool:
    """Atomically (temp file, fsync, rename), readable by all: it is committed with the spec. Returns whether
    the file changed (an unchanged lock is not rewritten)."""
    content = lock.to_json().encode()
    if existing_file(path) is not None and read_file(path) == content:  # a link or folder there is refused
        return False
    replace_file(str(path), content, PUBLIC_MODE)
    return True


def remove_lock(path: Path) -> bool:
    if existing_file(path) is None:
        return False
    path.unlink()
    return True
