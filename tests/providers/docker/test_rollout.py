"""The Docker rollout's quorum decisions over a scripted chain view: heal first, refuse when it cannot."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hcops.plan.desired import NetworkPlan, build_plan
from hcops.progress import RecordingReporter
from hcops.providers.base import ApplyOptions
from hcops.providers.docker.inventory import Inventory
from hcops.providers.docker.rollout import Rollout
from hcops.providers.quorum import LiveValidator, QuorumAtRisk, QuorumView
from hcops.providers.readiness import NotReady
from hcops.spec.loader import load_spec
from tests.conftest import SpecDir

VALIDATORS = ["a-val-0", "b-val-0", "c-val-0", "d-val-0"]


@dataclass
class FakeContainer:
    status: str
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.attrs = {"State": {"Status": self.status}}


class ScriptedRollout(Rollout):
    views: list[QuorumView]
    started: list[str]

    def view(self) -> QuorumView:
        return self.views.pop(0)

    waited: list[str]
    rejoin = True

    def wait_rejoined(self, n: Any, min_height: int | None = None) -> int:
        self.waited.append(n.name)
        if not self.rejoin:
            raise NotReady(f"timed out waiting for {n.name}")
        return 1


def rollout(plan: NetworkPlan, containers: dict[str, str], views: list[QuorumView]) -> ScriptedRollout:
    inv = Inventory(network=None, containers={k: FakeContainer(v) for k, v in containers.items()})  # type: ignore[misc]
    started: list[str] = []

    def start(n: Any) -> None:
        started.append(n.name)
        inv.containers[n.name] = FakeContainer("running")  # type: ignore[assignment]

    r = ScriptedRollout(plan, inv, RecordingReporter(), ApplyOptions(), start=start, refresh=lambda: inv)
    r.views, r.started, r.waited = views, started, []
    return r


def view(down: set[str]) -> QuorumView:
    return QuorumView(50, tuple(LiveValidator(f"A{i}", 10, n not in down, n) for i, n in enumerate(VALIDATORS)))


@pytest.fixture
def plan(spec_dir: SpecDir, tmp_path: Path) -> NetworkPlan:
    return build_plan(load_spec(spec_dir.spec), tmp_path / "state")


def test_a_stopped_validator_is_started_before_another_stops(plan: NetworkPlan) -> None:
    r = rollout(plan, {**dict.fromkeys(VALIDATORS, "running"), "d-val-0": "exited"}, [view({"d-val-0"}), view(set())])
    r.ensure_quorum("replace validator a-val-0", stopping=["a-val-0"])
    assert r.started == ["d-val-0"]
    assert any("quorum first: starting d-val-0" in m for _, m in r.reporter.events)  # type: ignore[attr-defined]


def test_a_running_validator_that_does_not_sign_yet_is_waited_for(plan: NetworkPlan) -> None:
    # restarted moments ago (by an apply that was killed, say): caught up by the time it is waited for
    r = rollout(plan, dict.fromkeys(VALIDATORS, "running"), [view({"d-val-0"}), view(set())])
    r.ensure_quorum("replace validator a-val-0", stopping=["a-val-0"])
    assert r.started == [] and r.waited == ["d-val-0"]
    assert any("waiting for d-val-0 to sign again" in m for _, m in r.reporter.events)  # type: ignore[attr-defined]


def test_refused_when_what_is_down_does_not_come_back(plan: NetworkPlan) -> None:
    r = rollout(plan, dict.fromkeys(VALIDATORS, "running"), [view({"d-val-0"}), view({"d-val-0"})])
    r.rejoin = False  # running, but never signs again within the time limit
    with pytest.raises(QuorumAtRisk, match=r"20 of 40 .* validators down now: d-val-0 \(power 10\)"):
        r.ensure_quorum("replace validator a-val-0", stopping=["a-val-0"])
    assert r.started == [] and r.waited == ["d-val-0"]


def test_replacing_a_validator_that_is_down_needs_no_check(plan: NetworkPlan) -> None:
    r = rollout(plan, {**dict.fromkeys(VALIDATORS, "running"), "d-val-0": "exited", "c-val-0": "exited"},
                [view({"c-val-0", "d-val-0"})])  # a halted chain: replacing a node that is down heals it
    r.ensure_quorum("replace validator d-val-0", stopping=["d-val-0"])
    assert r.started == []


def test_all_up_one_may_stop(plan: NetworkPlan) -> None:
    r = rollout(plan, dict.fromkeys(VALIDATORS, "running"), [view(set())])
    r.ensure_quorum("replace validator a-val-0", stopping=["a-val-0"])
    assert r.started == []
