"""`hcops audit` names itself a runtime audit, never the policy gate (which is `hcops check`'s wording)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, ClassVar

import pytest

from hcops.plan.desired import NetworkPlan
from hcops.providers.base import Observation
from hcops.usecases import audit as uc
from tests.audit import fakes
from tests.cli_helpers import run_cli
from tests.conftest import SpecDir


class OneNodeDown:
    name: ClassVar[str] = "fake"

    def observe(self, plan: NetworkPlan) -> Observation:
        return fakes.stopped(fakes.observation(plan, dt.datetime.now(dt.UTC)), "b-val-0")


@pytest.fixture
def fake_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    real = uc.audit_once

    def audit_once(spec_file: Path, options: uc.AuditOptions, **kwargs: Any) -> Any:
        return real(spec_file, options, provider=OneNodeDown(), **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(uc, "audit_once", audit_once)


@pytest.mark.usefixtures("fake_provider")
def test_audit_table_is_headed_runtime_audit(
    capsys: pytest.CaptureFixture[str], spec_dir: SpecDir, state_dir: Path
) -> None:
    r = run_cli(capsys, "audit", "-f", str(spec_dir.spec))
    assert r.code == 1, r.err
    assert "HC-RT-CP1-NODE-DOWN" in r.out
    assert "hcops runtime audit: FAILED" in r.out
    assert "gate" not in (r.out + r.err).lower()


@pytest.mark.usefixtures("fake_provider")
def test_audit_junit_suite_is_named_runtime_audit(
    capsys: pytest.CaptureFixture[str], spec_dir: SpecDir, state_dir: Path
) -> None:
    r = run_cli(capsys, "audit", "-f", str(spec_dir.spec), "--format", "junit")
    assert r.code == 1, r.err
    assert '<testsuites name="hcops runtime audit"' in r.out and "gate" not in r.out.lower()


def test_check_keeps_the_gate_wording(capsys: pytest.CaptureFixture[str], spec_dir: SpecDir, state_dir: Path) -> None:
    r = run_cli(capsys, "check", "-f", str(spec_dir.spec))
    assert r.code in (0, 1), r.err
    assert "hcops policy gate:" in r.out and ": gate " in r.out
    assert "runtime audit" not in r.out
