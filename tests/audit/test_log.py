"""The audit log: append, verify, tampering of every kind is named, pruning keeps the chain verifiable."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from hcops.audit.chain import GENESIS, canonical
from hcops.audit.log import AuditLog, record_gate_run

T0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def filled(path: Path, n: int = 6, start: dt.datetime = T0) -> AuditLog:
    log = AuditLog(path)
    for i in range(n):
        log.append(
            "sweep",
            {"id": f"s{i}", "findings": [{"id": "X", "resource": f"node/{i}"}]},
            now=start + dt.timedelta(days=i),
        )
    return log


def raw(path: Path) -> sqlite3.Connection:
    """What someone with write access to the file could do: drop the guards, then change rows."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TRIGGER records_no_update")
    db.execute("DROP TRIGGER records_no_delete")
    return db


def test_untouched_log_verifies_with_a_stable_head(tmp_path: Path) -> None:
    log = filled(tmp_path / "audit.db")
    v = log.verify()
    assert v.ok and v.records == 6 and v.head_seq == 6
    assert v.head_hash == log.head()[1] and len(v.head_hash) == 64
    assert log.record(1) is not None and log.record(1).prev == GENESIS  # type: ignore[union-attr]


def test_canonical_json_is_sorted_and_compact() -> None:
    assert canonical({"b": 1, "a": [1, {"d": 2, "c": "é"}]}) == '{"a":[1,{"c":"é","d":2}],"b":1}'


def test_guards_refuse_update_and_delete(tmp_path: Path) -> None:
    filled(tmp_path / "audit.db").close()
    db = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE records SET body = '{}' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM records WHERE seq = 2")


def test_edited_row_is_named(tmp_path: Path) -> None:
    filled(tmp_path / "audit.db").close()
    db = raw(tmp_path / "audit.db")
    body = json.loads(db.execute("SELECT body FROM records WHERE seq = 3").fetchone()[0])
    body["findings"] = []
    db.execute("UPDATE records SET body = ? WHERE seq = 3", (canonical(body),))
    v = AuditLog(tmp_path / "audit.db").verify()
    assert not v.ok
    assert v.first_break is not None and v.first_break.seq == 3 and "edited" in v.first_break.reason


def test_deleted_row_is_named(tmp_path: Path) -> None:
    filled(tmp_path / "audit.db").close()
    raw(tmp_path / "audit.db").execute("DELETE FROM records WHERE seq = 4")
    v = AuditLog(tmp_path / "audit.db").verify()
    assert not v.ok and v.first_break is not None and v.first_break.seq == 5


def test_inserted_row_is_named(tmp_path: Path) -> None:
    filled(tmp_path / "audit.db").close()
    db = raw(tmp_path / "audit.db")
    db.execute(
        "INSERT INTO records (seq, kind, time, body, prev_hash, hash) VALUES (7, 'sweep', 'x', '{}', ?, ?)",
        ("0" * 64, "f" * 64),
    )
    v = AuditLog(tmp_path / "audit.db").verify()
    assert not v.ok and v.first_break is not None and v.first_break.seq == 7


def test_deleted_last_row_is_caught_by_the_head_file(tmp_path: Path) -> None:
    filled(tmp_path / "audit.db").close()
    raw(tmp_path / "audit.db").execute("DELETE FROM records WHERE seq = 6")
    v = AuditLog(tmp_path / "audit.db").verify()
    assert not v.ok and v.first_break is not None and "missing from the end" in v.first_break.reason


def test_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    log = filled(tmp_path / "audit.db", 2)
    with pytest.raises(ValueError):
        log.append_many([("sweep", {"id": "ok"}), ("bogus", {})])
    assert log.head()[0] == 2 and log.verify().ok


def test_prune_keeps_chain_verifiable(tmp_path: Path) -> None:
    log = filled(tmp_path / "audit.db", 10)
    now = T0 + dt.timedelta(days=12)
    assert log.prune(retention_days=5, now=now) == 7  # records of days 0..6 are older than day 7
    v = log.verify()
    assert v.ok, v.breaks
    assert v.pruned_upto == 7 and v.first_seq == 8
    log.append("sweep", {"id": "after"}, now=now)
    assert log.prune(retention_days=5, now=now) == 0
    assert log.prune(retention_days=1, now=now + dt.timedelta(days=1)) > 0
    assert log.verify().ok


def test_pruned_log_still_detects_edits(tmp_path: Path) -> None:
    log = filled(tmp_path / "audit.db", 10)
    log.prune(retention_days=5, now=T0 + dt.timedelta(days=12))
    log.close()
    db = raw(tmp_path / "audit.db")
    db.execute("DELETE FROM records WHERE seq = 8")  # the first record after the checkpoint
    v = AuditLog(tmp_path / "audit.db").verify()
    assert not v.ok and v.first_break is not None and v.first_break.seq == 9


def test_gate_runs_and_skips_are_recorded(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    record_gate_run(
        path,
        network="n",
        passed=False,
        summary={"deny": 1, "warn": 0, "waived": 0},
        findings=[{"id": "HC-X", "resource": "network/n"}],
    )
    record_gate_run(
        path, network="n", passed=True, summary={}, command="apply", skipped_reason="hotfix INC-42"
    )
    with AuditLog(path) as log:
        kinds = [r.kind for r in log.records()]
        assert kinds == ["gate_run", "gate_skipped"]
        assert log.last("gate_skipped").body["reason"] == "hotfix INC-42"  # type: ignore[union-attr]
        assert log.verify().ok
    db = sqlite3.connect(path)
    assert (
        db.execute("SELECT reason FROM gate_runs WHERE kind = 'gate_skipped'").fetchone()[0]
        == "hotfix INC-42"
    )


def test_findings_view(tmp_path: Path) -> None:
    filled(tmp_path / "audit.db", 3).close()
    rows = (
        sqlite3.connect(tmp_path / "audit.db")
        .execute("SELECT sweep_id, rule, resource FROM findings")
        .fetchall()
    )
    assert rows == [("s0", "X", "node/0"), ("s1", "X", "node/1"), ("s2", "X", "node/2")]
