"""Incidents: appear, persist and clear as one incident with first-seen and last-seen."""

from __future__ import annotations

from pathlib import Path

from hcops.audit.incidents import Tracker
from hcops.audit.log import AuditLog

DOWN = {
    "id": "HC-RT-CP1-NODE-DOWN",
    "resource": "node/b",
    "control": "CP-1",
    "severity": "high",
    "message": "down",
}
OTHER = {
    "id": "HC-RT-AZ1-UNDECLARED",
    "resource": "container/x",
    "control": "AZ-1",
    "severity": "high",
    "message": "x",
}


def test_appear_persist_clear() -> None:
    t = Tracker()
    c1 = t.update([DOWN], sweep_id="s1", time="t1")
    assert [i.rule for i in c1.opened] == ["HC-RT-CP1-NODE-DOWN"] and not c1.cleared
    c2 = t.update([DOWN, OTHER], sweep_id="s2", time="t2")
    assert len(c2.persisting) == 1 and len(c2.opened) == 1
    assert c2.persisting[0].id == c1.opened[0].id and c2.persisting[0].sweeps == 2
    c3 = t.update([OTHER], sweep_id="s3", time="t3")
    (gone,) = c3.cleared
    assert gone.id == c1.opened[0].id
    assert (gone.first_seen, gone.last_seen, gone.cleared) == ("t1", "t2", "t3")
    assert list(t.open) == ["HC-RT-AZ1-UNDECLARED|container/x"]


def test_reappearance_is_a_new_incident() -> None:
    t = Tracker()
    first = t.update([DOWN], sweep_id="s1", time="t1").opened[0]
    t.update([], sweep_id="s2", time="t2")
    again = t.update([DOWN], sweep_id="s3", time="t3").opened[0]
    assert again.id != first.id


def test_preview_leaves_the_tracker_untouched() -> None:
    t = Tracker()
    t.update([DOWN], sweep_id="s1", time="t1")
    copy, changes = t.preview([], sweep_id="s2", time="t2")
    assert changes.cleared and "HC-RT-CP1-NODE-DOWN|node/b" in t.open and not copy.open


def test_rebuilt_from_the_log(tmp_path: Path) -> None:
    t = Tracker()
    with AuditLog(tmp_path / "a.db") as log:
        for sid, findings in (("s1", [DOWN, OTHER]), ("s2", [DOWN]), ("s3", [DOWN])):
            changes = t.update(findings, sweep_id=sid, time=sid)
            log.append_many(
                [("sweep", {"id": sid, "finished": sid, "findings": findings}), *changes.events()]
            )
        rebuilt = Tracker.from_records(log.records("incident"), log.last("sweep"))
    assert list(rebuilt.open) == ["HC-RT-CP1-NODE-DOWN|node/b"]
    inc = rebuilt.open["HC-RT-CP1-NODE-DOWN|node/b"]
    assert inc.first_seen == "s1" and inc.last_seen == "s3" and inc.id == t.open[inc.key].id
