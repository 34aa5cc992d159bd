"""The audit and report commands' input errors, verify's exit codes and output, report files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hcops.audit.log import AuditLog
from tests.cli_helpers import run_cli
from tests.conftest import SpecDir


def test_audit_needs_a_spec(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_cli(capsys, "audit")
    assert r.code == 2 and "missing -f SPEC" in r.err


def test_watch_options_need_watch(
    capsys: pytest.CaptureFixture[str], spec_dir: SpecDir, state_dir: Path
) -> None:
    r = run_cli(capsys, "audit", "-f", str(spec_dir.spec), "--max-sweeps", "2")
    assert r.code == 2 and "need --watch" in r.err


def test_bad_fail_on_is_a_usage_error(capsys: pytest.CaptureFixture[str], spec_dir: SpecDir) -> None:
    assert run_cli(capsys, "audit", "-f", str(spec_dir.spec), "--fail-on", "critical").code == 2


def test_verify_without_a_log_is_input_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    r = run_cli(capsys, "audit", "verify", "--audit-db", str(tmp_path / "none.db"))
    assert r.code == 2 and "no audit log" in r.err


def test_verify_prints_head_and_names_the_first_bad_record(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path) as log:
        for i in range(4):
            log.append("sweep", {"id": f"s{i}", "findings": []})
        head = log.head()
    r = run_cli(capsys, "audit", "verify", "--audit-db", str(path))
    assert r.code == 0 and f"head {head[0]} {head[1]}" in r.out and "intact" in r.out
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TRIGGER records_no_delete")
    db.execute("DELETE FROM records WHERE seq = 2")
    r = run_cli(capsys, "audit", "verify", "--audit-db", str(path))
    assert r.code == 1 and "BROKEN record 3:" in r.err


def test_verify_anchored_needs_the_spec(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    AuditLog(tmp_path / "a.db").close()
    r = run_cli(capsys, "audit", "verify", "--anchored", "--audit-db", str(tmp_path / "a.db"))
    assert r.code == 2 and "--anchored needs -f SPEC" in r.err


@pytest.mark.parametrize("fmt", ["html", "md", "json"])
def test_report_without_any_sweep(
    capsys: pytest.CaptureFixture[str], spec_dir: SpecDir, state_dir: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"report.{fmt}"
    r = run_cli(capsys, "report", "-f", str(spec_dir.spec), "--format", fmt, "-o", str(out))
    assert r.code == 0, r.err
    text = out.read_text()
    assert "AC-1" in text and "PHI-1" in text
    assert "wrote" in r.out and "controls" in r.out
