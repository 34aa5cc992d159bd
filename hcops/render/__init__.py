"""Render a network plan to manifests (placeholder API; targets land in their own modules)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hcops.plan.desired import NetworkPlan

TARGETS = ("docker", "kubernetes", "ansible")


def render_targets(plan: NetworkPlan, targets: Sequence[str], out_dir: Path) -> list[Path]:
    raise NotImplementedError
