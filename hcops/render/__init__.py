"""Render a network plan to manifests: one module per target, Jinja2 templates under ``templates/<target>/``.

``render_targets`` writes ``OUT/<target>/`` for each target and returns the paths of the files that make up
the output. Renders are byte-identical for the same spec and state folder (keys and genesis time live there).
``docker_compose``, ``docker_containers`` (the node container documents the Docker provider creates from)
and ``kubernetes_objects`` give the same manifests as data, for the policy input.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from hcops.errors import InvalidInput
from hcops.lazy import lazy_attributes

if TYPE_CHECKING:
    from hcops.plan.desired import NetworkPlan
    from hcops.render.base import Context, TargetOutput
    from hcops.render.docker import docker_compose, docker_containers
    from hcops.render.kubernetes import kubernetes_objects

TARGETS = ("docker", "kubernetes", "ansible")

_WRITE_ORDER = ("ansible", "docker", "kubernetes")

__all__ = ["TARGETS", "docker_compose", "docker_containers", "kubernetes_objects", "render_targets"]

# The targets' modules load on first use: the policy input needs two of them, ``hcops validate`` none.
_EXPORTS = {"docker_compose": "hcops.render.docker", "docker_containers": "hcops.render.docker",
            "kubernetes_objects": "hcops.render.kubernetes"}

__getattr__ = lazy_attributes(__name__, _EXPORTS)


def _renderer(target: str) -> Callable[[Context], TargetOutput]:
    render: Callable[[Context], TargetOutput] = importlib.import_module(f"hcops.render.{target}").render
    return render


def render_targets(plan: NetworkPlan, targets: Sequence[str], out_dir: Path) -> list[Path]:
    from hcops.render.base import Context, no_gc

    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise InvalidInput(f"unknown render target(s): {', '.join(unknown)}",
                           hint=f"choose from {', '.join(TARGETS)}")
    from hcops.fsutil import make_dirs

    ctx = Context(plan)
    make_dirs(out_dir, private=False)  # the user's folder: a link is fine; a file in the way is exit 2
    wanted = list(dict.fromkeys(targets))
    # Writing is syscalls (they release the GIL): one target's files are written while the next renders,
    # the target with the most files and folders first.
    with no_gc(), ThreadPoolExecutor(max_workers=1) as writer:
        pending: dict[str, Future[list[Path]]] = {}
        for target in sorted(wanted, key=_WRITE_ORDER.index):
            output = _renderer(target)(ctx)
            pending[target] = writer.submit(output.write, out_dir)
        return [path for target in wanted for path in pending[target].result()]
