"""One organization's share of a consortium (`--org NAME`): its own nodes and keys, the other members' nodes
as remote peers from the lock file; refusals without a lock file or for an unknown organization."""

from __future__ import annotations

from pathlib import Path

import pytest

from hcops.errors import InvalidInput
from hcops.plan.desired import Identity, KeyMode, build_plan
from hcops.policy.input import build_input
from hcops.spec.loader import load_spec
from hcops.usecases.consortium import genesis_assemble, org_init
from tests.conftest import SpecDir

ORGS = ("org-a", "org-b", "org-c", "org-d")


def ceremony(spec_dir: SpecDir, tmp_path: Path, endpoints: dict[str, dict[str, str]] | None = None) -> None:
    paths = [org_init(spec_dir.spec, None, tmp_path / f"state-{org}", org,
                      endpoints=(endpoints or {}).get(org)).path for org in ORGS]
    genesis_assemble(spec_dir.spec, None, paths)


def key_nodes(state: Path) -> set[str]:
    return {p.parent.name for p in state.rglob("*.json") if p.name in ("node_key.json", "priv_validator_key.json")}


def test_the_plan_of_one_organization_holds_its_nodes_and_the_others_as_remote(spec_dir: SpecDir,
                                                                                tmp_path: Path) -> None:
    ceremony(spec_dir, tmp_path)
    state = tmp_path / "state-org-d"
    plan = build_plan(load_spec(spec_dir.spec), state, keys=KeyMode.generate, organization="org-d")
    assert [n.name for n in plan.nodes] == ["d-val-0", "d-obs-0"]
    assert {n.name: n.identity for n in plan.nodes} == {"d-val-0": Identity.local, "d-obs-0": Identity.local}
    assert {n.name: n.identity for n in plan.remote} == {
        "a-val-0": Identity.lock, "b-val-0": Identity.lock, "c-val-0": Identity.lock}
    assert [n.name for n in plan.members] == ["a-val-0", "b-val-0", "c-val-0", "d-val-0", "d-obs-0"]
    assert key_nodes(state) == {"d-val-0", "d-obs-0"}  # generating mode created no key for another member
    assert plan.without_keys == () and plan.pending == () and not plan.conflicts
    assert plan.lock is not None and plan.genesis_json() == plan.lock.genesis_json
    assert not plan.membership.changes
    # every member's node is a peer, by the node ID and address the lock file records
    peers = plan.docker_config(plan.node("d-val-0"))["p2p"]["persistent_peers"].split(",")
    want = [f"{n.node_id}@{n.p2p_address}" for n in plan.lock.nodes if n.name != "d-val-0"]
    assert sorted(peers) == sorted(want)


def test_remote_peers_are_dialled_at_their_join_request_endpoints(spec_dir: SpecDir, tmp_path: Path) -> None:
    ceremony(spec_dir, tmp_path, {"org-a": {"a-val-0": "203.0.113.7:26656"}})
    plan = build_plan(load_spec(spec_dir.spec), tmp_path / "state-org-b", keys=KeyMode.existing,
                      organization="org-b")
    peers = plan.docker_config(plan.node("b-val-0"))["p2p"]["persistent_peers"]
    a_id = plan.lock.node("a-val-0").node_id if plan.lock and plan.lock.node("a-val-0") else ""
    assert f"{a_id}@203.0.113.7:26656" in peers
    # organization a's own plan keeps its node where it runs (its consortium-network address)
    own = build_plan(load_spec(spec_dir.spec), tmp_path / "state-org-a", keys=KeyMode.existing,
                     organization="org-a")
    assert own.node("a-val-0").identity is Identity.local
    assert own.docker_config(own.node("a-val-0"))["p2p"]["external_address"].startswith(own.node("a-val-0").docker_ip)


def test_another_members_keys_in_the_state_folder_are_not_used(spec_dir: SpecDir, tmp_path: Path) -> None:
    """A state folder that happens to hold every key (one operator) still plans only the member's nodes."""
    ceremony(spec_dir, tmp_path)
    state = tmp_path / "state-org-a"
    for org in ORGS[1:]:
        for f in (tmp_path / f"state-{org}").rglob("keys/*/*.json"):
            target = state / f.relative_to(tmp_path / f"state-{org}")
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            target.write_bytes(f.read_bytes())
            target.chmod(0o600)
    plan = build_plan(load_spec(spec_dir.spec), state, keys=KeyMode.existing, organization="org-a")
    assert {n.name for n in plan.nodes} == {"a-val-0"}
    assert all(n.identity is Identity.lock and not n.has_keys for n in plan.remote)


def test_the_gate_sees_every_members_node_and_only_this_members_containers(spec_dir: SpecDir,
                                                                            tmp_path: Path) -> None:
    ceremony(spec_dir, tmp_path)
    plan = build_plan(load_spec(spec_dir.spec), tmp_path / "state-org-b", keys=KeyMode.existing,
                      organization="org-b")
    doc = build_input(plan)
    assert [n["name"] for n in doc["nodes"]] == ["a-val-0", "b-val-0", "c-val-0", "d-val-0", "d-obs-0"]
    assert doc["chain"] == {"validators": 4, "totalPower": 40, "organizationsWithValidators": 4}
    assert [c["node"] for c in doc["manifests"]["dockerContainers"]] == ["b-val-0"]


def test_org_needs_the_lock_file_and_a_known_organization(spec_dir: SpecDir, tmp_path: Path) -> None:
    loaded = load_spec(spec_dir.spec)
    with pytest.raises(InvalidInput, match="no lock file") as info:
        build_plan(loaded, tmp_path / "state", keys=KeyMode.generate, organization="org-a")
    assert info.value.hint and "hcops genesis assemble" in info.value.hint
    assert not key_nodes(tmp_path / "state")
    ceremony(spec_dir, tmp_path)
    with pytest.raises(InvalidInput, match="--org org-z: no organization of that name") as info:
        build_plan(loaded, tmp_path / "state", keys=KeyMode.generate, organization="org-z")
    assert info.value.hint and "org-a" in info.value.hint


def test_power_online_decides_what_a_member_waits_for(spec_dir: SpecDir, tmp_path: Path) -> None:
    from hcops.providers.members import Reach, online

    ceremony(spec_dir, tmp_path)
    plan = build_plan(load_spec(spec_dir.spec), tmp_path / "state-org-c", keys=KeyMode.existing,
                      organization="org-c")
    assert plan.lock is not None
    ids = {n.name: n.node_id for n in plan.lock.nodes}
    first = online(plan, ["c-val-0"], [])
    assert (first.power, first.total, first.reach) == (10, 40, Reach.short)
    assert "10 of 40 voting power online" in first.describe() and "a-val-0" in first.describe()
    # 2/3 exactly is not enough: CometBFT needs more than 2/3
    assert online(plan, ["c-val-0"], [ids["a-val-0"]]).reach is Reach.short
    third = online(plan, ["c-val-0"], [ids["a-val-0"], ids["b-val-0"].upper()])
    assert (third.power, third.reach, third.missing) == (30, Reach.quorum, ("d-val-0",))
    # an observer's connection adds no power; a stopped own validator is not online
    assert online(plan, [], [ids["a-val-0"], ids["b-val-0"], ids["d-obs-0"]]).power == 20
    last = online(plan, ["c-val-0"], [ids["a-val-0"], ids["b-val-0"], ids["d-val-0"]])
    assert last.reach is Reach.everyone and last.missing == ()
