"""Per-organization key custody: `hcops org init` per organization, `hcops genesis assemble` over the join
requests; tampering, duplicates, strangers and missing members are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hcops.errors import InvalidInput
from hcops.plan.desired import Identity, KeyMode, build_plan
from hcops.spec.loader import load_spec
from hcops.usecases.consortium import genesis_assemble, org_init
from tests.conftest import SpecDir

ORGS = ("org-a", "org-b", "org-c", "org-d")


def requests(spec_dir: SpecDir, tmp_path: Path) -> dict[str, Path]:
    out = {}
    for org in ORGS:  # each organization on its own machine: its own state folder
        outcome = org_init(spec_dir.spec, None, tmp_path / f"state-{org}", org)
        assert outcome.path == spec_dir.root / f"join-{org}.json"
        out[org] = outcome.path
    return out


def test_each_organization_keeps_its_own_keys(spec_dir: SpecDir, tmp_path: Path) -> None:
    paths = requests(spec_dir, tmp_path)
    keys = {p.parent.name for p in (tmp_path / "state-org-d").rglob("node_key.json")}
    assert keys == {"d-val-0", "d-obs-0"}
    doc = json.loads(paths["org-d"].read_text())
    assert [n["name"] for n in doc["nodes"]] == ["d-val-0", "d-obs-0"] and len(doc["signatures"]) == 2
    assert "priv_key" not in paths["org-d"].read_text()

    outcome = genesis_assemble(spec_dir.spec, None, list(paths.values()))
    lock = outcome.lock
    assert outcome.path == spec_dir.root / "network.lock.json"
    assert [v["name"] for v in lock.genesis["validators"]] == ["a-val-0", "b-val-0", "c-val-0", "d-val-0"]
    plan = build_plan(load_spec(spec_dir.spec), tmp_path / "state-org-a", keys=KeyMode.existing)
    assert plan.genesis_json() == lock.genesis_json and not plan.conflicts
    assert {n.name: n.identity for n in plan.nodes} == {
        "a-val-0": Identity.local, "b-val-0": Identity.lock, "c-val-0": Identity.lock, "d-val-0": Identity.lock,
        "d-obs-0": Identity.lock}
    with pytest.raises(InvalidInput, match="genesis is frozen"):
        genesis_assemble(spec_dir.spec, None, list(paths.values()))


def test_a_tampered_request_is_refused(spec_dir: SpecDir, tmp_path: Path) -> None:
    paths = requests(spec_dir, tmp_path)
    doc = json.loads(paths["org-b"].read_text())
    doc["nodes"][0]["p2pAddress"] = "203.0.113.9:26656"  # someone redirects the peers on the way
    paths["org-b"].write_text(json.dumps(doc))
    with pytest.raises(InvalidInput, match="signature of node b-val-0 does not match"):
        genesis_assemble(spec_dir.spec, None, list(paths.values()))
    doc = json.loads(paths["org-c"].read_text())
    doc["nodes"][0]["validatorPubKey"] = json.loads(paths["org-a"].read_text())["nodes"][0]["validatorPubKey"]
    paths["org-c"].write_text(json.dumps(doc))
    with pytest.raises(InvalidInput, match="validatorAddress is not the address of its validator key"):
        genesis_assemble(spec_dir.spec, None, [paths["org-a"], paths["org-c"]])
    assert not (spec_dir.root / "network.lock.json").exists()


def test_duplicates_strangers_and_missing_members(spec_dir: SpecDir, tmp_path: Path) -> None:
    paths = requests(spec_dir, tmp_path)
    with pytest.raises(InvalidInput, match="a second request of organization org-a"):
        genesis_assemble(spec_dir.spec, None, [paths["org-a"], paths["org-a"]])
    with pytest.raises(InvalidInput, match="no join request from organization"):
        genesis_assemble(spec_dir.spec, None, [paths["org-a"], paths["org-b"], paths["org-c"]])
    copy = spec_dir.root / "copy"
    copy.mkdir()
    other = copy / "network.yaml"
    other.write_text(spec_dir.spec.read_text().replace("chainId: small-1", "chainId: small-2"))
    stranger = org_init(other, None, tmp_path / "elsewhere", "org-d").path
    with pytest.raises(InvalidInput, match="is for chain small-2"):
        genesis_assemble(spec_dir.spec, None, [*[paths[o] for o in ORGS[:3]], stranger])
    # organization b copied organization a's key files: each request is validly signed, the keys are one
    b_keys = tmp_path / "state-org-b" / "small-net" / "keys" / "b-val-0"
    for f in b_keys.glob("*.json"):
        f.unlink()
    for f in (tmp_path / "state-org-a" / "small-net" / "keys" / "a-val-0").glob("*.json"):
        (b_keys / f.name).write_bytes(f.read_bytes())
        (b_keys / f.name).chmod(0o600)
    copied = org_init(spec_dir.spec, None, tmp_path / "state-org-b", "org-b").path
    with pytest.raises(InvalidInput, match="node b-val-0 has the same node ID as a-val-0"):
        genesis_assemble(spec_dir.spec, None, [paths["org-a"], copied, paths["org-c"], paths["org-d"]])
    # powers are the spec's: a request that claims other powers is refused
    spec_dir.spec.write_text(spec_dir.spec.read_text().replace("power: 10}\n    - name: org-b", "power: 20}\n"
                                                               "    - name: org-b", 1))
    with pytest.raises(InvalidInput, match="power 10, the spec says validator power 20"):
        genesis_assemble(spec_dir.spec, None, list(paths.values()))
