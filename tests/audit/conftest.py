"""Fixtures of the audit unit tests: a plan of the small spec and a clean observation of it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hcops.plan.desired import NetworkPlan, build_plan
from hcops.spec.loader import load_spec
from tests.conftest import SpecDir

NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def plan(spec_dir: SpecDir, tmp_path: Path) -> NetworkPlan:
    return build_plan(load_spec(spec_dir.spec, None), tmp_path / "state")
