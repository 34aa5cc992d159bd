"""Use case: spec -> plan -> rendered manifests on disk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hcops.plan.desired import NetworkPlan, build_plan
from hcops.render import render_targets
from hcops.spec.loader import load_spec


@dataclass(frozen=True)
class RenderResult:
    plan: NetworkPlan
    out_dir: Path
    files: tuple[Path, ...]


def render(spec_file: Path, environment: str | None, out_dir: Path, targets: Sequence[str],
           state_dir: Path | None = None) -> RenderResult:
    plan = build_plan(load_spec(spec_file, environment), state_dir)
    files = render_targets(plan, targets, out_dir)
    return RenderResult(plan, out_dir, tuple(files))
