"""CometBFT node and validator keys in the upstream JSON formats, kept in the state directory.

Keys are generated once and never regenerated: directories 0700, files 0600, written atomically.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcops.errors import EnvironmentProblem, InvalidInput
from hcops.fsutil import lexists, private_dir, read_file, write_private

__all__ = ["NODE_KEY", "PRIV_VALIDATOR_KEY", "KeyStore", "PublicKeys", "initial_validator_state", "write_private"]

PRIV_VALIDATOR_KEY = "priv_validator_key.json"
NODE_KEY = "node_key.json"
PRIV_VALIDATOR_STATE = "priv_validator_state.json"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _address(pub: bytes) -> bytes:
    return hashlib.sha256(pub).digest()[:20]


@dataclass(frozen=True)
class PublicKeys:
    """What may be shown and rendered anywhere: node ID, validator address and public key."""

    node_id: str  # lowercase hex of the node key's address
    validator_address: str  # uppercase hex, as in priv_validator_key.json and genesis
    validator_pub_key: str  # base64 ed25519 public key


def _new_key_json() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return seed + pub, pub  # CometBFT stores the 64-byte form: seed || public key


def _kind(value: Any) -> str:
    """What a JSON value is, for messages: never the value itself, which may be key material."""
    if isinstance(value, bool):
        return "true/false"
    for types, name in ((dict, "an object"), (list, "a list"), (str, "a string"), (int | float, "a number")):
        if isinstance(value, types):
            return name
    return "null"


def _bad(file: Path, message: str) -> InvalidInput:
    return InvalidInput(f"{file}: {message}",
                        hint=f"restore the file from backup; to give the node new keys instead, remove {file.parent} "
                             "(a validator's new key changes the genesis)")


def _key_bytes(doc: dict[str, Any], field: str, file: Path, *, key_type: str, size: int, what: str) -> bytes:
    """``doc[field]`` as CometBFT writes a key: {"type": key_type, "value": base64 of ``size`` bytes}."""
    entry = doc.get(field)
    if not isinstance(entry, dict):
        got = "nothing" if field not in doc else _kind(entry)
        raise _bad(file, f'{field}: expected an object {{"type": "{key_type}", "value": "<base64>"}}, got {got}')
    if entry.get("type") != key_type:
        raise _bad(file, f'{field}.type: expected "{key_type}" (hcops keeps ed25519 keys only)')
    value = entry.get("value")
    if not isinstance(value, str):
        raise _bad(file, f"{field}.value: expected a base64 string, got {_kind(value)}")
    try:
        raw = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise _bad(file, f"{field}.value: expected {what} in base64, got text that is not base64") from None
    if len(raw) != size:
        raise _bad(file, f"{field}.value: expected {what} ({size} bytes, base64), got {len(raw)} bytes")
    return raw


def _pub_from_private(raw: bytes, file: Path, verified: set[str]) -> bytes:
    """The public half of a CometBFT key (seed || public key), checked against the seed once: ``verified``
    holds digests of the keys already checked."""
    digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
    if digest in verified:
        return raw[32:]
    # imported here: with every key checked before, a plan needs no cryptography at all
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pub = Ed25519PrivateKey.from_private_bytes(raw[:32]).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)
    if pub != raw[32:]:
        raise _bad(file, "private key and embedded public key do not match")
    verified.add(digest)
    return pub


def _private_key(doc: dict[str, Any], file: Path) -> bytes:
    return _key_bytes(doc, "priv_key", file, key_type="tendermint/PrivKeyEd25519", size=64,
                      what="a CometBFT ed25519 private key: seed and public key")


class KeyStore:
    """``<state>/keys/<node>/`` holds one node's ``node_key.json`` and ``priv_validator_key.json``.

    The state folder (``<state>/<network>``) and everything in it must be real folders and files (no
    links), owned by the user, and closed to others (folders 0700, key files 0600): see ``hcops.fsutil``.
    """

    # Digests of the keys whose public half was derived from the seed and matched: deriving 2 keys per
    # node is most of the plan's time for large networks, and key files do not change.
    VERIFIED = ".verified.json"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ready = False
        self._verified: set[str] | None = None
        self._known: set[str] = set()
        # node ID / validator address -> the node that has it: two nodes with one key would be one peer
        # to the network, or one validator listed twice in genesis (and signing twice: equivocation)
        self._owners: dict[tuple[str, str], str] = {}

    def _verified_keys(self) -> set[str]:
        if self._verified is None:
            path = self.root / "keys" / self.VERIFIED
            try:
                data = read_file(path)
                self._verified = {str(d) for d in json.loads(data)} if data else set()
            except (EnvironmentProblem, ValueError, TypeError):  # only a cache: without it, keys are re-derived
                self._verified = set()
            self._known = set(self._verified)
        return self._verified

    def save_verified(self) -> None:
        """Remember the keys checked since the store was opened (best effort: only a cache)."""
        if self._verified is None or self._verified == self._known:
            return
        try:
            write_private(self.root / "keys" / self.VERIFIED, json.dumps(sorted(self._verified)).encode())
        except EnvironmentProblem:
            return
        self._known = set(self._verified)

    def node_dir(self, node: str) -> Path:
        return self.root / "keys" / node

    def ensure(self, node: str) -> PublicKeys:
        """Create the node's keys if absent; return its public identity."""
        if not self._ready:
            private_dir(self.root)  # the user's state root above it may be a link; this folder may not
            private_dir(self.root / "keys")
            self._ready = True
        folder = self.node_dir(node)
        private_dir(folder)
        nk, pv = folder / NODE_KEY, folder / PRIV_VALIDATOR_KEY
        # lexists: a dangling link is not "no key" (replacing it would regenerate a key); reading refuses it
        if not lexists(nk):
            priv, _ = _new_key_json()
            node_doc = {"priv_key": {"type": "tendermint/PrivKeyEd25519", "value": _b64(priv)}}
            write_private(nk, json.dumps(node_doc, indent=2).encode(), replace=False)
        if not lexists(pv):
            priv, pub = _new_key_json()
            doc = {
                "address": _address(pub).hex().upper(),
                "pub_key": {"type": "tendermint/PubKeyEd25519", "value": _b64(pub)},
                "priv_key": {"type": "tendermint/PrivKeyEd25519", "value": _b64(priv)},
            }
            write_private(pv, json.dumps(doc, indent=2).encode(), replace=False)
        keys = self.public(node)
        self._claim(node, ("node key", keys.node_id), nk)
        self._claim(node, ("validator key", keys.validator_address), pv)
        return keys

    def find(self, node: str) -> PublicKeys | None:
        """The node's public identity when its keys are in the store, None when it has none; creates
        nothing (planning without ``generate`` must leave no key behind, e.g. ``hcops check`` in CI). The
        folders and files found are held to the same rules as ``ensure``'s."""
        folder = self.node_dir(node)
        for path in (self.root, self.root / "keys", folder):
            private_dir(path, create=False)
        nk, pv = folder / NODE_KEY, folder / PRIV_VALIDATOR_KEY
        if not lexists(nk) and not lexists(pv):
            return None
        keys = self.public(node)  # one of the two missing is an error there, not "no identity"
        self._claim(node, ("node key", keys.node_id), nk)
        self._claim(node, ("validator key", keys.validator_address), pv)
        return keys

    def _claim(self, node: str, key: tuple[str, str], file: Path) -> None:
        other = self._owners.setdefault(key, node)
        if other != node:
            kind, ident = key
            raise InvalidInput(
                f"nodes {other} and {node} have the same {kind} ({ident}): "
                f"{self.node_dir(other) / file.name} and {file} hold one key; every node needs its own",
                hint=f"restore {file} from backup; or remove {file.parent} to give {node} new keys "
                     "(a validator's new key changes the genesis)")

    def public(self, node: str) -> PublicKeys:
        folder = self.node_dir(node)
        nk, pvk = folder / NODE_KEY, folder / PRIV_VALIDATOR_KEY
        verified = self._verified_keys()
        node_pub = _pub_from_private(_private_key(self._read(nk), nk), nk, verified)
        pv = self._read(pvk)
        val_pub = _pub_from_private(_private_key(pv, pvk), pvk, verified)
        listed = _key_bytes(pv, "pub_key", pvk, key_type="tendermint/PubKeyEd25519", size=32,
                            what="an ed25519 public key")
        address = _address(val_pub).hex().upper()
        if listed != val_pub:
            raise _bad(pvk, "pub_key is not the public half of priv_key")
        if not isinstance(pv.get("address"), str) or pv["address"].upper() != address:
            raise _bad(pvk, "address: expected the hex address of pub_key (first 20 bytes of its SHA-256)")
        return PublicKeys(node_id=_address(node_pub).hex(), validator_address=address,
                          validator_pub_key=_b64(val_pub))

    def private_files(self, node: str) -> dict[str, bytes]:
        """The key files' bytes, for handing to a node. Never log or render these."""
        folder = self.node_dir(node)
        files = {}
        for name in (NODE_KEY, PRIV_VALIDATOR_KEY):
            data = read_file(folder / name, private=True)
            if data is None:
                raise _bad(folder / name, "missing")
            files[name] = data
        return files

    def remove(self, node: str) -> None:
        folder = self.node_dir(node)
        private_dir(folder, create=False)  # a link is refused: else the files of the folder it points to would go
        for child in folder.glob("*"):
            child.unlink()
        if folder.exists():
            folder.rmdir()

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        data = read_file(path, private=True)
        try:
            if data is None:
                raise FileNotFoundError(path)
            doc = json.loads(data)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"{path}: unreadable key file ({exc.__class__.__name__}); "
                               "restore it from backup or remove the node's key folder to rotate") from None
        if not isinstance(doc, dict):
            raise _bad(path, f"expected a JSON object (CometBFT's key format), got {_kind(doc)}")
        return doc


def initial_validator_state() -> bytes:
    return json.dumps({"height": "0", "round": 0, "step": 0}, indent=2).encode()
