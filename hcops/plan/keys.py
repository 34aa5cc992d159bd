"""CometBFT node and validator keys in the upstream JSON formats, kept in the state directory.

Keys are generated once and never regenerated: directories 0700, files 0600, written atomically.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcops.errors import InvalidInput

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


def write_private(path: Path, content: bytes) -> None:
    """Atomic write of a secret: a 0600 temp file in the 0700 target folder, then rename."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _new_key_json() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return seed + pub, pub  # CometBFT stores the 64-byte form: seed || public key


def _pub_from_private(value: str, file: Path, verified: set[str]) -> bytes:
    """The public half of a CometBFT key (seed || public key), checked against the seed once: ``verified``
    holds digests of the keys already checked."""
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 64:
        raise InvalidInput(f"{file}: not a CometBFT ed25519 private key (expected 64 bytes, base64)")
    digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
    if digest in verified:
        return raw[32:]
    # imported here: with every key checked before, a plan needs no cryptography at all
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pub = Ed25519PrivateKey.from_private_bytes(raw[:32]).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)
    if pub != raw[32:]:
        raise InvalidInput(f"{file}: private key and embedded public key do not match")
    verified.add(digest)
    return pub


def _private_folder(folder: str) -> None:
    """``folder`` exists with mode 0700 (created, or its mode repaired)."""
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        if os.stat(folder).st_mode & 0o777 != 0o700:
            os.chmod(folder, 0o700)
    else:
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask


class KeyStore:
    """``<state>/keys/<node>/`` holds one node's ``node_key.json`` and ``priv_validator_key.json``."""

    # Digests of the keys whose public half was derived from the seed and matched: deriving 2 keys per
    # node is most of the plan's time for large networks, and key files do not change.
    VERIFIED = ".verified.json"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ready = False
        self._verified: set[str] | None = None
        self._known: set[str] = set()

    def _verified_keys(self) -> set[str]:
        if self._verified is None:
            try:
                with open(self.root / "keys" / self.VERIFIED, "rb") as fh:
                    self._verified = {str(d) for d in json.loads(fh.read())}
            except (OSError, ValueError, TypeError):
                self._verified = set()
            self._known = set(self._verified)
        return self._verified

    def save_verified(self) -> None:
        """Remember the keys checked since the store was opened (best effort: only a cache)."""
        if self._verified is None or self._verified == self._known:
            return
        try:
            write_private(self.root / "keys" / self.VERIFIED, json.dumps(sorted(self._verified)).encode())
        except OSError:
            return
        self._known = set(self._verified)

    def node_dir(self, node: str) -> Path:
        return self.root / "keys" / node

    def ensure(self, node: str) -> PublicKeys:
        """Create the node's keys if absent; return its public identity."""
        keys = os.path.join(self.root, "keys")
        if not self._ready:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            _private_folder(str(self.root))
            _private_folder(keys)
            self._ready = True
        folder = os.path.join(keys, node)
        _private_folder(folder)
        nk, pv = Path(folder, NODE_KEY), Path(folder, PRIV_VALIDATOR_KEY)
        if not nk.exists():
            priv, _ = _new_key_json()
            node_doc = {"priv_key": {"type": "tendermint/PrivKeyEd25519", "value": _b64(priv)}}
            write_private(nk, json.dumps(node_doc, indent=2).encode())
        if not pv.exists():
            priv, pub = _new_key_json()
            doc = {
                "address": _address(pub).hex().upper(),
                "pub_key": {"type": "tendermint/PubKeyEd25519", "value": _b64(pub)},
                "priv_key": {"type": "tendermint/PrivKeyEd25519", "value": _b64(priv)},
            }
            write_private(pv, json.dumps(doc, indent=2).encode())
        return self.public(node)

    def public(self, node: str) -> PublicKeys:
        folder = self.node_dir(node)
        nk, pvk = folder / NODE_KEY, folder / PRIV_VALIDATOR_KEY
        verified = self._verified_keys()
        node_pub = _pub_from_private(self._read(nk)["priv_key"]["value"], nk, verified)
        pv = self._read(pvk)
        val_pub = _pub_from_private(pv["priv_key"]["value"], pvk, verified)
        return PublicKeys(node_id=_address(node_pub).hex(), validator_address=_address(val_pub).hex().upper(),
                          validator_pub_key=_b64(val_pub))

    def private_files(self, node: str) -> dict[str, bytes]:
        """The key files' bytes, for handing to a node. Never log or render these."""
        folder = self.node_dir(node)
        return {name: (folder / name).read_bytes() for name in (NODE_KEY, PRIV_VALIDATOR_KEY)}

    def remove(self, node: str) -> None:
        folder = self.node_dir(node)
        for child in folder.glob("*"):
            child.unlink()
        if folder.exists():
            folder.rmdir()

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            with open(path, "rb") as fh:
                doc: dict[str, Any] = json.loads(fh.read())
            return doc
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInput(f"{path}: unreadable key file ({exc.__class__.__name__}); "
                               "restore it from backup or remove the node's key folder to rotate") from None


def initial_validator_state() -> bytes:
    return json.dumps({"height": "0", "round": 0, "step": 0}, indent=2).encode()
