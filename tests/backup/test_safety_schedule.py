"""The chain-safety rules (signing-state floor, quorum before stopping) and the schedule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hcops.audit.log import AuditLog
from hcops.backup import safety
from hcops.backup.archive import SigningState
from hcops.backup.schedule import Schedule, ScheduledBackups, validate
from hcops.errors import InvalidInput
from hcops.providers.quorum import QuorumAtRisk
from hcops.providers.rpc import ChainStatus, Commit, Validator

A, B, C, D = "A" * 40, "B" * 40, "C" * 40, "D" * 40


@dataclass
class FakeRpc:
    height: int
    signers: Mapping[int, frozenset[str]]
    validators_: tuple[Validator, ...] = tuple(Validator(a, 10) for a in (A, B, C, D))
    base_url: str = "http://fake"
    calls: list[str] = field(default_factory=list)

    def status(self) -> ChainStatus:
        return ChainStatus("id", "m", "chain", "0.38.17", self.height, "", False, "", 0)

    def validators(self, height: int | None = None) -> tuple[Validator, ...]:
        return self.validators_

    def commit(self, height: int | None = None) -> Commit:
        h = height or self.height
        return Commit(h, "", True, self.signers.get(h, frozenset()))


def test_the_chain_floor_wins_over_older_states() -> None:
    floor = safety.SigningFloor(chain_height=500, last_signed=480)
    choice = safety.choose_state(floor, [("volume", None), ("backup", SigningState(300, 0, 3))])
    assert choice.state == SigningState(500, 0, 3) and choice.source == "chain"
    assert len(choice.corrected) == 1 and "backup signing state 300/0/3 is older" in choice.corrected[0]


def test_a_newer_own_state_is_kept() -> None:
    floor = safety.SigningFloor(chain_height=500, last_signed=499)
    choice = safety.choose_state(floor, [("volume", SigningState(501, 2, 2))])
    assert choice.state == SigningState(501, 2, 2) and choice.source == "volume" and not choice.corrected
    assert safety.SigningFloor(10, None).state() == SigningState(10, 0, safety.PRECOMMIT_STEP)


def test_last_signed_scans_the_commits_back() -> None:
    rpc = FakeRpc(100, {h: frozenset({A, B, C}) for h in range(1, 101)} | {90: frozenset({A, B, C, D})})
    assert safety.last_signed(rpc, D, below=100) == 90  # type: ignore[arg-type]
    assert safety.last_signed(rpc, D, below=89) is None  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Keys:
    validator_address: str


@dataclass(frozen=True)
class _Node:
    is_validator: bool = True
    power: int = 10
    index: int = 0


@dataclass(frozen=True)
class _NodePlan:
    name: str
    keys: _Keys
    node: _Node = _Node()


@dataclass(frozen=True)
class _Plan:
    nodes: tuple[_NodePlan, ...]


PLAN = _Plan(tuple(_NodePlan(f"v{i}", _Keys(a)) for i, a in enumerate((A, B, C, D))))


def test_quorum_allows_one_of_four_and_refuses_two() -> None:
    all_sign = FakeRpc(50, {h: frozenset({A, B, C, D}) for h in range(40, 51)})
    text = safety.ensure_quorum([all_sign], PLAN, PLAN.nodes[0])  # type: ignore[list-item, arg-type]
    assert "30/40" in text
    with pytest.raises(QuorumAtRisk, match="refusing to stop v0"):  # v3 stopped a moment ago: known down
        safety.ensure_quorum([all_sign], PLAN, PLAN.nodes[0], known_down=["v3"])  # type: ignore[list-item, arg-type]
    one_silent = FakeRpc(50, {h: frozenset({A, B, C}) for h in range(40, 51)})
    with pytest.raises(QuorumAtRisk):
        safety.ensure_quorum([one_silent], PLAN, PLAN.nodes[1])  # type: ignore[list-item, arg-type]


def test_schedule_validation_and_interval() -> None:
    assert validate("0 2 * * *") is None and validate("@daily") is None
    assert validate("61 2 * * *") and validate("0 2 * *") and validate("0 0 2 * * *")
    start = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    assert Schedule("0 2 * * *").interval(start) == dt.timedelta(days=1)
    assert Schedule("0 2 * * 1-5").interval(start) == dt.timedelta(days=3)  # the weekend gap
    with pytest.raises(InvalidInput, match="spec.backup.schedule"):
        Schedule("99 * * * *")


class _Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_scheduled_backups_run_each_slot_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[dt.datetime] = []
    clock = _Clock(dt.datetime(2026, 11, 25, 1, 0, tzinfo=dt.UTC))
    with AuditLog(tmp_path / "audit.db") as log:
        s = ScheduledBackups(_Plan(()), log, Schedule("0 2 * * *"), clock=clock)  # type: ignore[arg-type]
        monkeypatch.setattr(s, "_run", lambda emit: ran.append(clock.now))
        events: list[Any] = []
        assert s.tick(events.append) is False  # yesterday's 02:00 is not made up when the loop starts
        clock.now = dt.datetime(2026, 11, 25, 1, 59, tzinfo=dt.UTC)
        assert s.tick(events.append) is False
        clock.now = dt.datetime(2026, 11, 25, 2, 0, 30, tzinfo=dt.UTC)
        assert s.tick(events.append) is True and s.tick(events.append) is False
        clock.now = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)  # two slots passed during a long sweep: one run
        assert s.tick(events.append) is True and s.tick(events.append) is False
    assert ran == [dt.datetime(2026, 11, 25, 2, 0, 30, tzinfo=dt.UTC), dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)]


def test_the_spec_rejects_a_schedule_croniter_cannot_read(tmp_path: Path) -> None:
    from hcops.spec.loader import load_spec
    from tests.conftest import SMALL_SPEC

    spec = tmp_path / "network.yaml"
    spec.write_text(SMALL_SPEC + '  backup: {enabled: true, schedule: "61 2 * * *"}\n')
    with pytest.raises(InvalidInput) as info:
        load_spec(spec, None)
    d = info.value.diagnostics[0]
    assert d.path == "spec.backup.schedule" and "valid cron schedule" in d.message and d.location is not None


class _Recovering:
    """D is missing from the commits for the first ``silent`` reads, then signs again."""

    base_url = "http://fake"

    def __init__(self, silent: int) -> None:
        self.silent, self.reads = silent, 0

    def status(self) -> ChainStatus:
        self.reads += 1
        return ChainStatus("id", "m", "chain", "0.38.17", 50, "", False, "", 0)

    def validators(self, height: int | None = None) -> tuple[Validator, ...]:
        return tuple(Validator(a, 10) for a in (A, B, C, D))

    def commit(self, height: int | None = None) -> Commit:
        signers = {A, B, C} if self.reads <= self.silent else {A, B, C, D}
        return Commit(height or 50, "", True, frozenset(signers))


def test_quorum_waits_for_a_running_validator_to_sign_again_but_not_for_a_stopped_one() -> None:
    from hcops.providers.readiness import Deadline

    clock = [0.0]
    deadline = Deadline(60, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    text = safety.ensure_quorum([_Recovering(3)], PLAN, PLAN.nodes[0],  # type: ignore[list-item, arg-type]
                                deadline=deadline)
    assert "30/40" in text and "after waiting" in text and clock[0] == 3.0
    deadline = Deadline(60, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    clock[0] = 0.0
    with pytest.raises(QuorumAtRisk, match="v3"):  # stopped: starting it is not the backup's business
        safety.ensure_quorum([_Recovering(3)], PLAN, PLAN.nodes[0],  # type: ignore[list-item, arg-type]
                             known_down=lambda: ["v3"], deadline=deadline)
    assert clock[0] == 0.0
    deadline = Deadline(10, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    with pytest.raises(QuorumAtRisk, match="v3"):  # running, but never signs again within the wait
        safety.ensure_quorum([_Recovering(1000)], PLAN, PLAN.nodes[0],  # type: ignore[list-item, arg-type]
                             deadline=deadline)
    assert clock[0] > 10
