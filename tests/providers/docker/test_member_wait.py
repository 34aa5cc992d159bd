"""What one member's apply (`--org`) waits for, by the voting power its nodes see online: no blocks at 2/3 or
less, its own validators' signatures above, every validator's once all are online."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hcops.plan.desired import KeyMode, NetworkPlan, build_plan
from hcops.progress import RecordingReporter
from hcops.providers.base import ApplyOptions
from hcops.providers.docker import rollout as rollout_module
from hcops.providers.docker.inventory import Inventory
from hcops.providers.docker.rollout import Rollout
from hcops.providers.members import Online
from hcops.spec.loader import load_spec
from hcops.usecases.consortium import genesis_assemble, org_init
from tests.conftest import SpecDir

ORGS = ("org-a", "org-b", "org-c", "org-d")


class FakeWaiter:
    calls: list[tuple[str, Any]] = []

    def __init__(self, targets: list[Any], reporter: Any, timeout: float) -> None:
        self.targets = targets

    def running(self) -> None:
        self.calls.append(("running", None))

    def synced(self, target: Any, *, min_height: int) -> int:
        self.calls.append(("synced", target))
        return 5

    def network(self, validators: dict[str, str], min_blocks: int, *, since: int) -> int:
        self.calls.append(("network", sorted(validators)))
        return since + min_blocks

    def signed_blocks(self, validators: dict[str, str], min_blocks: int, *, since: int, task: str) -> int:
        self.calls.append(("signed", sorted(validators)))
        return since + min_blocks


@pytest.fixture
def member(spec_dir: SpecDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NetworkPlan:
    paths = [org_init(spec_dir.spec, None, tmp_path / f"state-{org}", org).path for org in ORGS]
    genesis_assemble(spec_dir.spec, None, paths)
    FakeWaiter.calls = []
    monkeypatch.setattr(rollout_module, "Waiter", FakeWaiter)
    return build_plan(load_spec(spec_dir.spec), tmp_path / "state-org-d", keys=KeyMode.existing,
                      organization="org-d")


def wait(plan: NetworkPlan, seen: set[str]) -> tuple[list[tuple[str, Any]], list[str]]:
    reporter = RecordingReporter()
    r = Rollout(plan, Inventory(network=None), reporter, ApplyOptions(), start=lambda n: None,
                refresh=lambda: Inventory(network=None))
    r.targets = lambda names=None: ["d-val-0", "d-obs-0"]  # type: ignore[method-assign, assignment, misc]
    r.height = lambda exclude=None: 7  # type: ignore[method-assign, assignment]
    powers = {n: 10 for n in ("a-val-0", "b-val-0", "c-val-0", "d-val-0")}
    r.power_online = lambda waiter, grace=0: Online(powers, frozenset(seen))  # type: ignore[method-assign]
    r.wait_network(since=1)
    return FakeWaiter.calls, [m for _, m in reporter.events]


def test_at_two_thirds_or_less_no_block_is_waited_for(member: NetworkPlan) -> None:
    calls, said = wait(member, {"c-val-0", "d-val-0"})
    assert calls == [("running", None)]
    assert "20 of 40 voting power online (not seen: a-val-0, b-val-0)" in said
    assert any("not waiting for blocks" in m for m in said)


def test_above_two_thirds_its_own_validators_sign(member: NetworkPlan) -> None:
    calls, said = wait(member, {"b-val-0", "c-val-0", "d-val-0"})
    assert calls == [("running", None), ("synced", "d-val-0"), ("synced", "d-obs-0"), ("signed", ["d-val-0"])]
    assert any("blocks signed by d-val-0 (more than 2/3 online)" in m for m in said)


def test_with_every_validator_online_every_validator_signs(member: NetworkPlan) -> None:
    calls, said = wait(member, {"a-val-0", "b-val-0", "c-val-0", "d-val-0"})
    assert calls[-1] == ("network", ["a-val-0", "b-val-0", "c-val-0", "d-val-0"])
    assert any("blocks signed by every validator" in m for m in said)
