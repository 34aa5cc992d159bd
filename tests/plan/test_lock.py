"""The public lock file: written from public identities only, frozen genesis, planning without keys."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from hcops.errors import InvalidInput
from hcops.plan.desired import Identity, KeyMode, build_plan
from hcops.plan.lock import ValidatorChange, lock_path, read_lock, write_lock
from hcops.spec.loader import load_spec
from hcops.usecases.deploy import check_state_folder
from tests.conftest import SpecDir

EXTRA_ORG = """\
    - name: org-e
      role: research
      nodes:
        - {name: e-val-0, role: validator, power: 10}
"""


def locked(spec_dir: SpecDir, state: Path) -> Path:
    plan = build_plan(load_spec(spec_dir.spec), state)
    assert plan.lock_file == spec_dir.root / "network.lock.json"
    write_lock(plan.lock_file, plan.new_lock())
    return plan.lock_file


def private_values(state: Path) -> list[str]:
    out = []
    for f in state.rglob("*.json"):
        doc = json.loads(f.read_text())
        if isinstance(doc, dict) and "priv_key" in doc:
            raw = base64.b64decode(doc["priv_key"]["value"])
            out += [doc["priv_key"]["value"], base64.b64encode(raw[:32]).decode(), raw[:32].hex(),
                    raw[:32].hex().upper()]
    return out


def test_planning_without_generate_writes_nothing(spec_dir: SpecDir, tmp_path: Path) -> None:
    state = tmp_path / "state"
    plan = build_plan(load_spec(spec_dir.spec), state, keys=KeyMode.existing)
    assert not state.exists() and not plan.lock_file.exists()  # type: ignore[union-attr]
    assert set(plan.pending) == {n.name for n in plan.nodes}
    peers = plan.docker_config(plan.node("a-val-0"))["p2p"]["persistent_peers"].split(",")
    ids = [p.split("@")[0] for p in peers]
    assert len(set(ids)) == len(ids) and all(i.startswith("pending-") for i in ids)


def test_lock_holds_public_identities_and_no_secret(spec_dir: SpecDir, tmp_path: Path) -> None:
    state = tmp_path / "state"
    path = locked(spec_dir, state)
    text = path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    secrets = private_values(state)
    assert len(secrets) == 4 * 10  # node and validator key of 5 nodes, four spellings each
    assert not [s for s in secrets if s in text] and "priv_key" not in text and "PrivKey" not in text
    doc = json.loads(text)
    plan = build_plan(load_spec(spec_dir.spec), state, keys=KeyMode.existing)
    assert doc["chainId"] == "small-1" and doc["network"] == "small-net"
    assert doc["genesisSha256"] == hashlib.sha256(plan.genesis_json().encode()).hexdigest().upper()
    nodes = {n["name"]: n for n in doc["nodes"]}
    a = plan.node("a-val-0")
    assert nodes["a-val-0"] == {
        "name": "a-val-0", "organization": "org-a", "role": "validator", "power": 10, "nodeId": a.keys.node_id,
        "validatorAddress": a.keys.validator_address,
        "validatorPubKey": {"type": "tendermint/PubKeyEd25519", "value": a.keys.validator_pub_key},
        "p2pAddress": f"{a.docker_ip}:26656"}
    assert nodes["d-obs-0"]["power"] == 0 and doc["validatorSetChanges"] == []


def test_genesis_is_frozen_once_locked(spec_dir: SpecDir, tmp_path: Path) -> None:
    state = tmp_path / "state"
    locked(spec_dir, state)
    before = build_plan(load_spec(spec_dir.spec), state).genesis_json()
    (state / "small-net" / "genesis_time").write_text("2030-01-01T00:00:00Z")
    spec_dir.spec.write_text(spec_dir.spec.read_text() + EXTRA_ORG)
    plan = build_plan(load_spec(spec_dir.spec), state, keys=KeyMode.existing)
    assert plan.genesis_json() == before and plan.genesis_frozen
    assert plan.pending == ("e-val-0",)
    assert [(c.node, c.old_power, c.new_power) for c in plan.membership.changes] == [("e-val-0", 0, 10)]


def test_a_changed_genesis_or_chain_id_is_refused(spec_dir: SpecDir, tmp_path: Path) -> None:
    path = locked(spec_dir, tmp_path / "state")
    doc = json.loads(path.read_text())
    doc["genesis"]["validators"][0]["power"] = "99"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInput, match="does not match genesisSha256"):
        build_plan(load_spec(spec_dir.spec), tmp_path / "state")
    locked_again = tmp_path / "again"
    path.unlink()
    locked(spec_dir, locked_again)
    spec_dir.spec.write_text(spec_dir.spec.read_text().replace("chainId: small-1", "chainId: small-2"))
    with pytest.raises(InvalidInput, match="cannot change"):
        build_plan(load_spec(spec_dir.spec), locked_again)


def test_a_fresh_checkout_plans_from_the_lock(spec_dir: SpecDir, tmp_path: Path) -> None:
    locked(spec_dir, tmp_path / "state")
    keys = {n.name: n.keys for n in build_plan(load_spec(spec_dir.spec), tmp_path / "state").nodes}
    fresh = tmp_path / "checkout-state"
    plan = build_plan(load_spec(spec_dir.spec), fresh)  # even "generate" invents no key for a locked node
    assert not fresh.joinpath("small-net", "keys").exists()
    assert all(n.identity is Identity.lock for n in plan.nodes)
    assert {n.name: n.keys for n in plan.nodes} == keys and plan.pending == ()
    with pytest.raises(InvalidInput, match="their keys are not in the state folder") as refused:
        check_state_folder(plan)
    assert "restore the state folder" in (refused.value.hint or "")


def test_keys_that_differ_from_the_lock_are_a_conflict(spec_dir: SpecDir, tmp_path: Path) -> None:
    locked(spec_dir, tmp_path / "state")
    other = tmp_path / "other"
    build_plan(load_spec(spec_dir.spec), other, keys=KeyMode.existing)
    spec_copy = SpecDir(tmp_path / "copy")
    spec_copy.root.mkdir()
    spec_copy.spec.write_text(spec_dir.spec.read_text())
    build_plan(load_spec(spec_copy.spec), other)  # other keys, generated for a spec without lock
    plan = build_plan(load_spec(spec_dir.spec), other)
    assert len(plan.conflicts) == 5 and "not the ones the lock file records" in plan.conflicts[0]
    with pytest.raises(InvalidInput, match="lock file records"):
        check_state_folder(plan)


def test_history_folds_into_the_validator_set(spec_dir: SpecDir, tmp_path: Path) -> None:
    path = locked(spec_dir, tmp_path / "state")
    lock = read_lock(path)
    assert lock is not None
    a = lock.node("a-val-0")
    assert a is not None
    change = ValidatorChange(node="a-val-0", organization="org-a", validator_address=a.validator_address,
                             validator_pub_key=a.validator_pub_key, old_power=10, new_power=0, height=40,
                             effective_height=42, at="2026-01-01T00:00:00Z")
    write_lock(path, lock.with_change(change))
    again = read_lock(path)
    assert again is not None and again.history == (change,)
    assert a.validator_address not in again.powers() and len(again.powers()) == 3
    assert again.node("a-val-0").power == 0  # type: ignore[union-attr]
    assert again.genesis_json == lock.genesis_json


def test_one_lock_file_per_environment(tmp_path: Path) -> None:
    spec = tmp_path / "network.yaml"
    assert lock_path(spec, None) == tmp_path / "network.lock.json"
    assert lock_path(spec, "prod") == tmp_path / "network.prod.lock.json"


def test_upgrades_stay_within_the_patch_series(spec_dir: SpecDir, tmp_path: Path) -> None:
    from hcops.usecases.deploy import check_upgrade

    locked(spec_dir, tmp_path / "state")
    text = spec_dir.spec.read_text()
    assert json.loads((spec_dir.root / "network.lock.json").read_text())["engineVersion"] == "0.38.17"
    spec_dir.spec.write_text(text.replace('version: "0.38.17"', 'version: "0.38.19"'))
    check_upgrade(build_plan(load_spec(spec_dir.spec), tmp_path / "state"))  # a rolling upgrade
    spec_dir.spec.write_text(text.replace('version: "0.38.17"', 'version: "1.0.1"'))
    with pytest.raises(InvalidInput, match="leaves the 0.38.x series") as refused:
        check_upgrade(build_plan(load_spec(spec_dir.spec), tmp_path / "state"))
    assert "one agreed height" in (refused.value.hint or "")
