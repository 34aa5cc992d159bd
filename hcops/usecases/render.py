"""Use case: spec -> plan -> rendered manifests on disk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hcops.errors import InvalidInput
from hcops.plan.desired import KeyMode, NetworkPlan, build_plan
from hcops.render import render_targets
from hcops.settings import Settings, resolve
from hcops.spec.loader import load_spec


@dataclass(frozen=True)
class RenderResult:
    plan: NetworkPlan
    out_dir: Path
    files: tuple[Path, ...]


def render(spec_file: Path, environment: str | None, out_dir: Path, targets: Sequence[str],
           state_dir: Path | None = None, *, generate_keys: bool = False,
           settings: Settings | None = None) -> RenderResult:
    """Manifests carry each node's key files, so every node needs keys in the state folder: created only
    with ``generate_keys`` (``--generate-keys``), never as a side effect."""
    plan = build_plan(load_spec(spec_file, environment), state_dir,
                      keys=KeyMode.generate if generate_keys else KeyMode.existing, settings=resolve(settings))
    if plan.without_keys:
        raise InvalidInput(f"no keys in {plan.state_dir} for node(s) {', '.join(plan.without_keys)}: the manifests "
                           "carry each node's key files",
                           hint="pass --generate-keys to create keys for nodes that have no identity yet; for "
                                "nodes the lock file knows, restore the state folder that holds their keys")
    files = render_targets(plan, targets, out_dir)
    return RenderResult(plan, out_dir, tuple(files))
