from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hcops.errors import InvalidInput
from hcops.plan.keys import NODE_KEY, PRIV_VALIDATOR_KEY, KeyStore, initial_validator_state


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_upstream_json_formats(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "net")
    pub = store.ensure("val-0")
    pv = json.loads((store.node_dir("val-0") / PRIV_VALIDATOR_KEY).read_text())
    assert set(pv) == {"address", "pub_key", "priv_key"}
    assert pv["pub_key"]["type"] == "tendermint/PubKeyEd25519"
    assert pv["priv_key"]["type"] == "tendermint/PrivKeyEd25519"
    raw = base64.b64decode(pv["priv_key"]["value"])
    assert len(raw) == 64
    derived = Ed25519PrivateKey.from_private_bytes(raw[:32]).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert derived == raw[32:] == base64.b64decode(pv["pub_key"]["value"])
    assert pv["address"] == hashlib.sha256(derived).digest()[:20].hex().upper() == pub.validator_address
    nk = json.loads((store.node_dir("val-0") / NODE_KEY).read_text())
    assert set(nk) == {"priv_key"} and nk["priv_key"]["type"] == "tendermint/PrivKeyEd25519"
    node_pub = base64.b64decode(nk["priv_key"]["value"])[32:]
    assert pub.node_id == hashlib.sha256(node_pub).digest()[:20].hex()
    assert len(pub.node_id) == 40 and pub.node_id == pub.node_id.lower()


def test_modes_are_0600_in_0700(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "net")
    store.ensure("val-0")
    folder = store.node_dir("val-0")
    assert mode(folder) == 0o700 and mode(folder.parent) == 0o700 and mode(tmp_path / "net") == 0o700
    assert mode(folder / NODE_KEY) == 0o600 and mode(folder / PRIV_VALIDATOR_KEY) == 0o600
    assert not list(folder.glob(".tmp-*")), "atomic writes leave no temp files"


def test_keys_are_never_regenerated(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "net")
    first = store.ensure("val-0")
    before = {p.name: p.read_bytes() for p in store.node_dir("val-0").iterdir()}
    assert store.ensure("val-0") == first
    assert {p.name: p.read_bytes() for p in store.node_dir("val-0").iterdir()} == before


def test_distinct_nodes_get_distinct_keys(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "net")
    a, b = store.ensure("a"), store.ensure("b")
    assert a.node_id != b.node_id and a.validator_pub_key != b.validator_pub_key


def test_corrupt_key_file_is_a_clear_error(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "net")
    store.ensure("val-0")
    (store.node_dir("val-0") / NODE_KEY).write_text("{not json")
    with pytest.raises(InvalidInput, match="unreadable key file"):
        store.public("val-0")


def tamper(path: Path) -> None:
    """Flip a bit of the embedded public half, so that it no longer matches the seed."""
    doc = json.loads(path.read_text())
    raw = bytearray(base64.b64decode(doc["priv_key"]["value"]))
    raw[40] ^= 0xFF
    doc["priv_key"]["value"] = base64.b64encode(bytes(raw)).decode()
    path.write_text(json.dumps(doc))


def test_tampered_key_pair_is_rejected(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "net")
    store.ensure("val-0")
    tamper(store.node_dir("val-0") / NODE_KEY)
    with pytest.raises(InvalidInput, match="do not match"):
        store.public("val-0")


def test_initial_validator_state() -> None:
    assert json.loads(initial_validator_state()) == {"height": "0", "round": 0, "step": 0}


def test_a_checked_key_is_not_derived_again_and_a_tampered_one_is(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store = KeyStore(tmp_path / "net")
    first = store.ensure("val-0")
    store.save_verified()
    record = tmp_path / "net" / "keys" / KeyStore.VERIFIED
    assert mode(record) == 0o600
    secrets = [json.loads((store.node_dir("val-0") / f).read_text())["priv_key"]["value"]
               for f in (NODE_KEY, PRIV_VALIDATOR_KEY)]
    assert not any(s in record.read_text() for s in secrets)

    def no_derivation(_: bytes) -> None:
        raise AssertionError("derived again")

    monkeypatch.setattr(Ed25519PrivateKey, "from_private_bytes", no_derivation)
    assert KeyStore(tmp_path / "net").public("val-0") == first
    monkeypatch.undo()
    tamper(store.node_dir("val-0") / NODE_KEY)
    with pytest.raises(InvalidInput, match="do not match"):
        KeyStore(tmp_path / "net").public("val-0")
