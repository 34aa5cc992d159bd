"""Backup, restore and drill records in the audit log, read back as CP-1 evidence, facts and metrics."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from hcops.audit.log import AuditLog
from hcops.audit.metrics import AuditMetrics
from hcops.backup import evidence
from hcops.plan.desired import NetworkPlan, build_plan
from hcops.spec.loader import load_spec
from tests.conftest import SMALL_SPEC, SpecDir

DAY = 86_400_000_000_000


@pytest.fixture
def plan(spec_dir: SpecDir, tmp_path: Path) -> NetworkPlan:
    spec = spec_dir.write(SMALL_SPEC + '  backup: {enabled: true, schedule: "0 2 * * *", retentionDays: 30}\n')
    return build_plan(load_spec(spec, None), tmp_path / "state")


def _archive(tmp_path: Path, name: str, content: bytes) -> dict[str, object]:
    import hashlib

    path = tmp_path / f"{name}.hcbk"
    path.write_bytes(content)
    return {"ok": True, "id": name, "node": "d-obs-0", "path": str(path), "sha256": hashlib.sha256(content).hexdigest(),
            "size": len(content), "height": 40, "base_height": 1}


def test_records_are_read_back_as_evidence_and_facts(plan: NetworkPlan, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    with AuditLog(tmp_path / "audit.db") as log:
        assert evidence.latest_backup(log) is None and evidence.latest_drill(log) is None
        evidence.record(log, "backup", {"ok": False, "node": "d-obs-0", "error": "engine down"})
        evidence.record(log, "backup", _archive(tmp_path, "b1", b"one"))
        evidence.record(log, "backup", _archive(tmp_path, "b2", b"two"))
        evidence.record(log, "drill", {"ok": True, "backupId": "b1", "seconds": 3.0})
        evidence.record(log, "drill", {"ok": False, "backupId": "b2", "error": "damaged"})
        assert log.verify().ok
        last = evidence.latest_backup(log)
        assert last is not None and last.id == "b2" and evidence.latest_backup(log, "a-val-0") is None
        drill = evidence.latest_drill(log)
        assert drill is not None and drill.backup_id == "b1"
        assert evidence.latest_drill(log, ok=None).ok is False  # type: ignore[union-attr]
        facts = evidence.backup_facts(plan, log, now)
        assert facts["enabled"] and facts["intervalNs"] == DAY and facts["overdueAfterNs"] == 2 * DAY
        assert facts["lastSuccess"]["id"] == "b2" and facts["failures"] == 1
        assert facts["lastFailure"]["error"] == "engine down"
        assert [(a["id"], a["verified"]) for a in facts["archives"]] == [("b1", True), ("b2", True)]
        assert facts["drill"]["lastSuccess"]["backupId"] == "b1" and facts["drill"]["lastAttempt"]["ok"] is False
        assert (plan.state_dir / evidence.VERIFY_CACHE).stat().st_mode & 0o777 == 0o600

        (tmp_path / "b1.hcbk").write_bytes(b"ONE")  # same size, other content, new mtime: hashed again
        (tmp_path / "b2.hcbk").unlink()
        facts = evidence.backup_facts(plan, log, now)
        by_id = {a["id"]: a for a in facts["archives"]}
        assert by_id["b1"]["verified"] is False and "SHA-256" in by_id["b1"]["problem"]
        assert by_id["b2"]["verified"] is False and "missing" in by_id["b2"]["problem"]
        json.dumps(facts)  # the fact document is plain JSON


def test_expired_archives_leave_the_listing(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.db") as log:
        evidence.record(log, "backup", _archive(tmp_path, "old", b"x"))
        evidence.record(log, "backup", {"ok": True, "retention": True, "expired": ["old"], "id": "", "node": ""})
        assert evidence.backups(log) == [] and evidence.latest_backup(log) is None


def test_metrics_follow_the_backup_facts() -> None:
    m = AuditMetrics()
    m._observe_backups({"lastSuccessTimeNs": 1_700_000_000 * 10**9, "failures": 2})
    m._observe_backups({"lastSuccessTimeNs": 1_700_000_100 * 10**9, "failures": 3})
    text = m.text().decode()
    assert "hcops_backup_last_success_timestamp 1.7000001e+09" in text
    assert "hcops_backup_failures_total 3.0" in text
    m._observe_backups(None)  # facts without a backup section leave the series as they were
    assert "hcops_backup_failures_total 3.0" in m.text().decode()
