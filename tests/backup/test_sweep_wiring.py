"""The backup facts in a real sweep (the audit's runtime pack on the embedded engine): a damaged archive is a
deny, and the metrics follow."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from hcops.audit.log import AuditLog
from hcops.audit.metrics import AuditMetrics
from hcops.backup import evidence
from hcops.plan.desired import NetworkPlan, build_plan
from hcops.spec.loader import load_spec
from tests.audit.test_sweep import auditor
from tests.conftest import SMALL_SPEC, SpecDir


@pytest.fixture
def plan(spec_dir: SpecDir, tmp_path: Path) -> NetworkPlan:
    spec = spec_dir.write(SMALL_SPEC + '  backup: {enabled: true, schedule: "0 2 * * *", retentionDays: 30}\n')
    return build_plan(load_spec(spec, None), tmp_path / "state")


def test_damaged_archive_is_a_deny_and_metrics_follow(plan: NetworkPlan, tmp_path: Path) -> None:
    clock = [dt.datetime.now(dt.UTC)]
    a, _prov = auditor(plan, tmp_path, clock)
    archive = tmp_path / "b1.hcbk"
    archive.write_bytes(b"archive")
    with AuditLog(tmp_path / "audit.db") as log:
        evidence.record(log, "backup", {"ok": True, "id": "b1", "node": "d-obs-0", "path": str(archive),
                                        "sha256": hashlib.sha256(b"archive").hexdigest(), "size": 7, "height": 9})
        evidence.record(log, "backup", {"ok": False, "node": "d-obs-0", "error": "engine down"})
    metrics = AuditMetrics()
    first = a.run()
    metrics.observe(first)
    assert "HC-RT-CP1-BACKUP-DIGEST" not in {f.id for f in first.report.findings}
    archive.write_bytes(b"ARCHIVE")
    second = a.run()
    metrics.observe(second)
    found = [f for f in second.report.findings if f.id == "HC-RT-CP1-BACKUP-DIGEST"]
    assert found and found[0].level == "deny" and found[0].control == "CP-1" and not second.passed
    text = metrics.text().decode()
    assert "hcops_backup_failures_total 1.0" in text and "hcops_backup_last_success_timestamp 0.0" not in text
    a.log.close()
