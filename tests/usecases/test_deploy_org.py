"""`apply/plan/status/destroy --org` through the use cases over the in-memory provider: only the member's
nodes, the lock file read and never written, the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hcops.errors import InvalidInput
from hcops.usecases import deploy
from hcops.usecases.consortium import genesis_assemble, org_init
from tests.conftest import SpecDir
from tests.providers.fake import FakeProvider

ORGS = ("org-a", "org-b", "org-c", "org-d")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    prov = FakeProvider()
    monkeypatch.setattr(deploy, "get_provider", lambda name: prov)
    return prov


@pytest.fixture
def assembled(spec_dir: SpecDir, tmp_path: Path) -> Path:
    paths = [org_init(spec_dir.spec, None, tmp_path / f"state-{org}", org).path for org in ORGS]
    return genesis_assemble(spec_dir.spec, None, paths).path


def test_each_member_applies_its_own_nodes(spec_dir: SpecDir, tmp_path: Path, fake: FakeProvider,
                                           assembled: Path) -> None:
    before = assembled.read_bytes()
    out = deploy.apply(spec_dir.spec, None, tmp_path / "state-org-d", organization="org-d")
    assert out.plan.organization == "org-d" and [n.name for n in out.plan.nodes] == ["d-val-0", "d-obs-0"]
    assert out.result is not None and {c.node for c in out.result.changes.items if c.node} == {"d-val-0", "d-obs-0"}
    assert assembled.read_bytes() == before  # the consortium's record is read, never rewritten by a member
    assert [n.name for n in deploy.status(spec_dir.spec, None, tmp_path / "state-org-d",
                                          organization="org-d").observation.nodes] == ["d-val-0", "d-obs-0"]
    done = deploy.destroy(spec_dir.spec, None, tmp_path / "state-org-d", prune_volumes=True, organization="org-d")
    assert done.removed_lock is None and assembled.read_bytes() == before


def test_a_member_without_its_keys_is_refused_and_others_keys_are_not_asked_for(
        spec_dir: SpecDir, tmp_path: Path, fake: FakeProvider, assembled: Path) -> None:
    with pytest.raises(InvalidInput, match=r"records node\(s\) b-val-0, but their keys are not") as info:
        deploy.apply(spec_dir.spec, None, tmp_path / "empty", organization="org-b")
    assert info.value.hint and "restore the state folder" in info.value.hint
    assert fake.applied == [] and not list((tmp_path / "empty").rglob("*key*.json"))


def test_org_refusals(spec_dir: SpecDir, tmp_path: Path, fake: FakeProvider) -> None:
    with pytest.raises(InvalidInput, match="no lock file"):
        deploy.apply(spec_dir.spec, None, tmp_path / "state", organization="org-a")
    with pytest.raises(InvalidInput, match="no lock file"):
        deploy.plan(spec_dir.spec, None, tmp_path / "state", organization="org-a")
    assert fake.applied == [] and not list((tmp_path / "state").rglob("*key*.json"))


def test_a_validator_set_change_is_refused_with_org(spec_dir: SpecDir, tmp_path: Path, fake: FakeProvider,
                                                    assembled: Path) -> None:
    spec_dir.spec.write_text(spec_dir.spec.read_text().replace(
        "{name: b-val-0, role: validator, power: 10}", "{name: b-val-0, role: validator, power: 12}"))
    with pytest.raises(InvalidInput, match="changes the validator set"):
        deploy.apply(spec_dir.spec, None, tmp_path / "state-org-a", organization="org-a")
    assert fake.applied == []


def test_org_needs_a_provider_that_supports_it(spec_dir: SpecDir, tmp_path: Path, fake: FakeProvider,
                                               assembled: Path) -> None:
    text = spec_dir.spec.read_text().replace("  organizations:", "  provider: {type: ansible}\n  organizations:")
    spec_dir.spec.write_text(text)
    with pytest.raises(InvalidInput, match="not supported by the ansible provider"):
        deploy.status(spec_dir.spec, None, tmp_path / "state-org-a", organization="org-a")


def test_org_on_kubernetes_needs_a_namespace_of_its_own(spec_dir: SpecDir, tmp_path: Path, fake: FakeProvider,
                                                       assembled: Path) -> None:
    text = spec_dir.spec.read_text().replace("  organizations:", "  provider: {type: kubernetes}\n  organizations:")
    spec_dir.spec.write_text(text)
    with pytest.raises(InvalidInput, match="needs a namespace of its own; namespace small-net also holds the nodes "
                                           "of org-b, org-c, org-d") as err:
        deploy.apply(spec_dir.spec, None, tmp_path / "state-org-a", organization="org-a")
    assert "spec.organizations[0].kubernetes" in (err.value.hint or "")
    assert fake.applied == []
    # With a namespace of its own (the others share the network's), org-a's share is planned.
    spec_dir.spec.write_text(text.replace("      role: provider\n",
                                          "      role: provider\n      kubernetes: {namespace: org-a-ns}\n", 1))
    out = deploy.status(spec_dir.spec, None, tmp_path / "state-org-a", organization="org-a")
    assert [n.name for n in out.plan.nodes] == ["a-val-0"]
    assert [(s.namespace, s.organizations) for s in out.plan.kube_scopes()] == [("org-a-ns", ("org-a",))]


def test_cli_org_option(spec_dir: SpecDir, tmp_path: Path, fake: FakeProvider,
                        capsys: pytest.CaptureFixture[str]) -> None:
    from tests.usecases.test_deploy import NO_GATE, invoke

    f = str(spec_dir.spec)
    assert invoke("apply", "-f", f, "--org", "org-a", "--yes", *NO_GATE)[0] == 2
    err = capsys.readouterr().err
    assert "no lock file" in err and "hcops genesis assemble" in err
    paths = [org_init(spec_dir.spec, None, tmp_path / f"state-{org}", org).path for org in ORGS]
    genesis_assemble(spec_dir.spec, None, paths)
    capsys.readouterr()
    state = ["--state-dir", str(tmp_path / "state-org-d")]
    assert invoke("apply", "-f", f, *state, "--org", "org-z", "--yes", *NO_GATE)[0] == 2
    assert "org-z: no organization of that name" in capsys.readouterr().err
    assert invoke("plan", "-f", f, *state, "--org", "org-d", "-o", "json")[0] == 0
    doc = json.loads(capsys.readouterr().out)
    assert {c["node"] for c in doc["changes"] if c["node"]} == {"d-val-0", "d-obs-0"}
    assert invoke("apply", "-f", f, *state, "--org", "org-d", "--yes", *NO_GATE)[0] == 0
    capsys.readouterr()
    assert invoke("status", "-f", f, *state, "--org", "org-d", "-o", "json")[0] == 0
    assert [n["name"] for n in json.loads(capsys.readouterr().out)["nodes"]] == ["d-val-0", "d-obs-0"]
    assert invoke("destroy", "-f", f, *state, "--org", "org-d")[0] == 0
