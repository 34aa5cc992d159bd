"""Validator-set changes against the lock: who, old -> new power, shares per organization, consensus rules;
and how `hcops plan` shows them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from hcops import cli as cli_module
from hcops.errors import InvalidInput
from hcops.plan.desired import KeyMode, build_plan
from hcops.plan.lock import write_lock
from hcops.plan.membership import ChangeKind, describe
from hcops.spec.loader import load_spec
from hcops.usecases import deploy
from tests.conftest import SpecDir
from tests.providers.fake import FakeProvider

EXTRA_ORG = """\
    - name: org-e
      role: research
      nodes:
        - {name: e-val-0, role: validator, power: 10}
"""


def lock_now(spec_dir: SpecDir, state: Path, environment: str | None = None) -> None:
    plan = build_plan(load_spec(spec_dir.spec, environment), state)
    assert plan.lock_file is not None
    write_lock(plan.lock_file, plan.new_lock())


def test_no_lock_no_change(spec_dir: SpecDir, tmp_path: Path) -> None:
    m = build_plan(load_spec(spec_dir.spec), tmp_path).membership
    assert m.changes == () and m.validators_before == m.validators_after == 4


def test_adding_an_organization_is_a_validator_update(spec_dir: SpecDir, tmp_path: Path) -> None:
    lock_now(spec_dir, tmp_path)
    spec_dir.spec.write_text(spec_dir.spec.read_text() + EXTRA_ORG)
    m = build_plan(load_spec(spec_dir.spec), tmp_path, keys=KeyMode.existing).membership
    [c] = m.changes
    assert (c.node, c.organization, c.kind, c.old_power, c.new_power, c.validator_address) == (
        "e-val-0", "org-e", ChangeKind.add, 0, 10, "")
    assert m.errors == () and m.validators_after == 5
    assert float(m.shares("before")["org-a"]) == 0.25 and float(m.shares("after")["org-e"]) == 0.2
    lines = describe(m)
    assert lines[0] == "add validator e-val-0 (org-e): power 0 -> 10 [identity pending: apply generates its keys]"
    assert "  org-e: 0% -> 20% of voting power" in lines and lines[-1] == "  validators: 4 -> 5"
    generated = build_plan(load_spec(spec_dir.spec), tmp_path).membership  # apply's plan: keys exist now
    assert generated.changes[0].validator_address and generated.changes[0].validator_pub_key


def test_removal_and_power_changes(spec_dir: SpecDir, tmp_path: Path) -> None:
    spec_dir.spec.write_text(spec_dir.spec.read_text() + EXTRA_ORG)
    lock_now(spec_dir, tmp_path)
    text = spec_dir.spec.read_text().replace(EXTRA_ORG, "")
    spec_dir.spec.write_text(text.replace("{name: a-val-0, role: validator, power: 10}",
                                          "{name: a-val-0, role: validator, power: 12}"))
    m = build_plan(load_spec(spec_dir.spec), tmp_path).membership
    assert {(c.node, c.kind, c.old_power, c.new_power) for c in m.changes} == {
        ("a-val-0", ChangeKind.power, 10, 12), ("e-val-0", ChangeKind.remove, 10, 0)}
    assert [c.node for c in m.ordered()] == ["a-val-0", "e-val-0"]  # power grows before it shrinks
    assert m.errors == ()


def test_changes_that_break_consensus_rules_are_refused(spec_dir: SpecDir, tmp_path: Path) -> None:
    lock_now(spec_dir, tmp_path)
    spec_dir.spec.write_text(spec_dir.spec.read_text().replace("power: 10}\n    - name: org-b",
                                                               "power: 30}\n    - name: org-b", 1))
    m = build_plan(load_spec(spec_dir.spec), tmp_path).membership
    assert [c.node for c in m.changes] == ["a-val-0"]
    assert len(m.errors) == 1 and "org-a would hold 30/60 (50%)" in m.errors[0]


def test_the_development_tier_only_warns(spec_dir: SpecDir, tmp_path: Path) -> None:
    spec_dir.overlay("dev", "spec: {tier: development}\n")
    lock_now(spec_dir, tmp_path, "dev")
    text = spec_dir.spec.read_text()
    spec_dir.spec.write_text(text.replace("        - {name: d-val-0, role: validator, power: 10}\n", ""))
    m = build_plan(load_spec(spec_dir.spec, "dev"), tmp_path).membership
    assert [(c.node, c.new_power) for c in m.changes] == [("d-val-0", 0)]
    assert m.errors == () and "leaves 3 validator(s)" in m.warnings[0]


class UpdatingFake(FakeProvider):
    validator_updates: ClassVar[bool] = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    prov = UpdatingFake()
    monkeypatch.setattr(deploy, "get_provider", lambda name: prov)
    return prov


def test_plan_shows_the_change_and_refuses_a_bad_one(spec_dir: SpecDir, state_dir: Path, fake: FakeProvider,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    deploy.apply(spec_dir.spec)
    assert (spec_dir.root / "network.lock.json").is_file()
    spec_dir.spec.write_text(spec_dir.spec.read_text() + EXTRA_ORG)
    with pytest.raises(SystemExit) as exit_:
        cli_module.main(["plan", "-f", str(spec_dir.spec), "-o", "json", "--detailed-exitcode"])
    assert exit_.value.code == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["genesis"]["frozen"] and doc["pendingIdentities"] == ["e-val-0"]
    assert doc["validatorSetChanges"] == [{"node": "e-val-0", "organization": "org-e", "change": "add",
                                           "validatorAddress": None, "oldPower": 0, "newPower": 10}]
    assert doc["votingPowerShares"]["org-e"] == {"before": 0.0, "after": 0.2}
    assert not (state_dir / "small-net" / "keys" / "e-val-0").exists()  # plan generates no key
    with pytest.raises(SystemExit):
        cli_module.main(["plan", "-f", str(spec_dir.spec)])
    out = capsys.readouterr().out
    assert "add validator e-val-0 (org-e): power 0 -> 10" in out and "no identity yet: e-val-0" in out

    spec_dir.spec.write_text(spec_dir.spec.read_text().replace(
        "{name: e-val-0, role: validator, power: 10}", "{name: e-val-0, role: validator, power: 40}"))
    with pytest.raises(SystemExit) as exit_:
        cli_module.main(["plan", "-f", str(spec_dir.spec)])
    assert exit_.value.code == 2
    assert "org-e would hold 40/80 (50%)" in capsys.readouterr().err


def test_a_provider_without_validator_updates_refuses(spec_dir: SpecDir, state_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    prov = FakeProvider()
    monkeypatch.setattr(deploy, "get_provider", lambda name: prov)
    deploy.apply(spec_dir.spec)
    spec_dir.spec.write_text(spec_dir.spec.read_text() + EXTRA_ORG)
    with pytest.raises(InvalidInput, match="cannot change the validator set"):
        deploy.apply(spec_dir.spec)
    assert not (state_dir / "small-net" / "keys" / "e-val-0").exists()
