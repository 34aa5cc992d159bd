"""Shared helpers of the render tests: deterministic test keys, rendering into a folder, reading it back."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hcops.plan.desired import NetworkPlan, build_plan
from hcops.plan.keys import NODE_KEY, PRIV_VALIDATOR_KEY, write_private
from hcops.render import TARGETS, render_targets
from hcops.spec.loader import load_spec

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SPEC = FIXTURES / "network.yaml"
GOLDEN = FIXTURES / "golden"
GENESIS_TIME = "2026-01-01T00:00:00Z"
KEY_FILES = (NODE_KEY, PRIV_VALIDATOR_KEY)


def _key_json(seed: bytes, *, validator: bool) -> bytes:
    """A key file in the format of hcops.plan.keys.KeyStore, from a 32-byte seed."""
    pub = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    priv = base64.b64encode(seed + pub).decode("ascii")
    if not validator:
        doc: dict[str, Any] = {"priv_key": {"type": "tendermint/PrivKeyEd25519", "value": priv}}
        return json.dumps(doc, indent=2).encode()
    doc = {"address": hashlib.sha256(pub).digest()[:20].hex().upper(),
           "pub_key": {"type": "tendermint/PubKeyEd25519", "value": base64.b64encode(pub).decode("ascii")},
           "priv_key": {"type": "tendermint/PrivKeyEd25519", "value": priv}}
    return json.dumps(doc, indent=2).encode()


def seed_state(state_root: Path, network: str, nodes: list[str]) -> Path:
    """Keys from fixed, published seeds (test-only: anyone can derive them) and a fixed genesis time."""
    folder = state_root / network
    for node in nodes:
        keys = folder / "keys" / node
        for name in KEY_FILES:
            seed = hashlib.sha256(f"hcops render test key/{network}/{node}/{name}".encode()).digest()
            write_private(keys / name, _key_json(seed, validator=name == PRIV_VALIDATOR_KEY))
    write_private(folder / "genesis_time", GENESIS_TIME.encode())
    return folder


def fixture_plan(state_root: Path, spec: Path = SPEC, environment: str | None = None) -> NetworkPlan:
    loaded = load_spec(spec, environment)
    seed_state(state_root, loaded.consortium.name, [n.name for n in loaded.consortium.nodes])
    return build_plan(loaded, state_root)


def render_all(plan: NetworkPlan, out: Path) -> list[Path]:
    return render_targets(plan, TARGETS, out)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mode & 0o7777 for p in sorted(root.rglob("*"))}


def is_key_material(rel: str) -> bool:
    """Files that may hold private keys: the key files and the Kubernetes Secrets."""
    parts = rel.split(os.sep)
    in_secrets = rel.startswith(f"kubernetes{os.sep}secrets{os.sep}") and rel.endswith(".yaml")
    return "keys" in parts[:-1] or in_secrets


def yaml_docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def kubernetes_files(out: Path) -> list[Path]:
    root = out / "kubernetes"
    return sorted(root.glob("*.yaml")) + sorted((root / "secrets").glob("*.yaml"))
