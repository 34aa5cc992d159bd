"""Quorum arithmetic and reading it from a chain; the kvstore validator transaction; ValidatorChanger over a
scripted chain."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import pytest

from hcops.plan.membership import PowerChange
from hcops.progress import RecordingReporter
from hcops.providers.quorum import ChainUnreadable, LiveValidator, QuorumAtRisk, QuorumView, read_view, refuse
from hcops.providers.rpc import ChainStatus, Commit, RpcUnavailable, Validator
from hcops.providers.validators import KvstoreValidatorUpdater, TxCommit, ValidatorChanger, ValidatorUpdateFailed

PUB = base64.b64encode(bytes(range(32))).decode()


def view(*signing: bool, power: int = 10) -> QuorumView:
    return QuorumView(100, tuple(LiveValidator(f"A{i}", power, s, f"v{i}") for i, s in enumerate(signing)))


def test_stopping_one_of_four_is_safe_two_is_not() -> None:
    v = view(True, True, True, True)
    assert v.safe_without(["v0"]) and not v.safe_without(["v0", "v1"])
    assert v.online_without(["v0"]) == (30, 40)


def test_one_down_means_no_other_may_stop() -> None:
    v = view(True, True, True, False)
    assert v.online == 30 and [d.node for d in v.down] == ["v3"]
    assert not v.safe_without(["v0"])  # 20 of 40 would be online: the chain would halt
    assert v.safe_without(["v3"])  # the one already down takes nothing offline
    err = refuse(v, ["v0"], "replace validator v0")
    assert isinstance(err, QuorumAtRisk) and "20 of 40" in err.message and "v3 (power 10)" in err.message


def test_power_changes_count_joining_and_leaving_power() -> None:
    v = view(True, True, True, False)
    assert v.online_without((), power_changes={"v4": 10}) == (40, 50)  # a joining validator is online
    assert v.safe_without((), power_changes={"v4": 10})
    assert v.online_without((), power_changes={"v0": 0}) == (20, 30)  # removing a signer: 2/3 exactly
    assert not v.safe_without((), power_changes={"v0": 0})
    assert v.safe_without((), power_changes={"v3": 0})  # removing the one that is down


@dataclass
class FakeRpc:
    """A scripted node: validator set and per-height signers; ``down`` makes every call fail."""

    validators_: list[Validator]
    signers: dict[int, set[str]]
    height: int = 10
    down: bool = False
    base_url: str = "http://127.0.0.1:1"
    ssl_context: Any = None
    calls: list[str] = field(default_factory=list)

    def _check(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise RpcUnavailable("down")

    def status(self) -> ChainStatus:
        self._check("status")
        return ChainStatus("id", "m", "c", "v", self.height, "", False, "", 0)

    def validators(self, height: int | None = None) -> tuple[Validator, ...]:
        self._check("validators")
        return tuple(self.validators_)

    def commit(self, height: int | None = None) -> Commit:
        self._check("commit")
        return Commit(height or self.height, "", True, frozenset(self.signers.get(height or self.height, set())))


def test_read_view_from_the_first_node_that_answers() -> None:
    vals = [Validator(f"A{i}", 10) for i in range(4)]
    good = FakeRpc(vals, {8: {"A0", "A1", "A2"}, 9: {"A0", "A1"}, 10: {"A0", "A1", "A2"}})
    v = read_view([FakeRpc(vals, {}, down=True), good], {"a0": "v0", "A1": "v1", "A2": "v2", "A3": "v3"},  # type: ignore[list-item]
                  known_down={"v2"})
    assert v.height == 10 and [x.node for x in v.down] == ["v2", "v3"]  # v2: its container is stopped
    with pytest.raises(ChainUnreadable):
        read_view([FakeRpc(vals, {}, down=True)], {})  # type: ignore[list-item]


def test_kvstore_transaction_format() -> None:
    tx = KvstoreValidatorUpdater().transaction(PUB, 10)
    assert tx == f"val=ed25519!{PUB}!10".encode()
    assert KvstoreValidatorUpdater().transaction(PUB, 0).endswith(b"!0")
    with pytest.raises(ValueError):
        KvstoreValidatorUpdater().transaction(base64.b64encode(b"short").decode(), 1)


def test_changer_submits_waits_and_records(monkeypatch: pytest.MonkeyPatch) -> None:
    vals = [Validator(f"A{i}", 10) for i in range(4)]
    rpc = FakeRpc(vals, {h: {"A0", "A1", "A2", "A3"} for h in range(1, 30)})
    sent: list[bytes] = []

    def broadcast(client: Any, tx: bytes) -> TxCommit:
        sent.append(tx)
        rpc.validators_ = [*vals, Validator("A4", 10)]
        rpc.height = 14
        for h in range(12, 30):
            rpc.signers[h] = {*rpc.signers[h], "A4"}
        return TxCommit("H", 11, 0, "", 0, "")

    monkeypatch.setattr("hcops.providers.validators.broadcast_tx_commit", broadcast)
    changer = ValidatorChanger([rpc], KvstoreValidatorUpdater(), RecordingReporter(), timeout=5)  # type: ignore[list-item]
    done = changer.apply(PowerChange("v4", "org-e", "a4", PUB, 0, 10))
    assert sent == [f"val=ed25519!{PUB}!10".encode()]
    assert (done.validator_address, done.old_power, done.new_power, done.height, done.effective_height) == (
        "A4", 0, 10, 11, 13)
    again = changer.apply(PowerChange("v4", "org-e", "A4", PUB, 0, 10))  # already in force: recorded, not sent
    assert len(sent) == 1 and again.new_power == 10


def test_changer_reports_a_refused_update(monkeypatch: pytest.MonkeyPatch) -> None:
    rpc = FakeRpc([Validator("A0", 10)], {})
    monkeypatch.setattr("hcops.providers.validators.broadcast_tx_commit",
                        lambda client, tx: TxCommit("H", 0, 1, "invalid tx format", 0, ""))
    changer = ValidatorChanger([rpc], KvstoreValidatorUpdater(), RecordingReporter(), timeout=1)  # type: ignore[list-item]
    with pytest.raises(ValidatorUpdateFailed, match="invalid tx format"):
        changer.apply(PowerChange("v4", "org-e", "A4", PUB, 0, 10))
