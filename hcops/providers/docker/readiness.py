"""A node's container as the readiness waits see it (``hcops.providers.readiness``): a container that exits or
restarts while we wait fails the wait at once, with its last log lines as the hint."""

from __future__ import annotations

import docker.errors
from docker.models.containers import Container

from hcops.providers.readiness import LOG_LINES, NotReady, log_hint


class ContainerHandle:
    """``NodeHandle`` of a container; restarts count from when the handle is made (the wait's start)."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.restarts = _restart_count(container)

    def check(self, node: str) -> None:
        c = self.container
        try:
            c.reload()
        except docker.errors.NotFound:
            raise NotReady(f"container {c.name} of node {node} disappeared while waiting") from None
        state = c.attrs.get("State") or {}
        status = state.get("Status")
        restarts = _restart_count(c) - self.restarts
        oom = ", killed for exceeding its memory limit" if state.get("OOMKilled") else ""
        if status in ("exited", "dead"):
            raise NotReady(f"node {node}: container {c.name} {status} (exit code {state.get('ExitCode')}{oom})",
                           hint=self.log_hint())
        if restarts > 0 or status == "restarting":
            raise NotReady(f"node {node}: container {c.name} is crash-looping "
                           f"(restarted {max(restarts, 1)} time(s) while waiting{oom})", hint=self.log_hint())

    def running(self) -> bool:
        return (self.container.attrs.get("State") or {}).get("Status") == "running"

    def log_hint(self) -> str | None:
        c = self.container
        return log_hint(c.name, log_tail(c), f"see `docker logs {c.name}`")


def _restart_count(c: Container) -> int:
    return int(c.attrs.get("RestartCount") or 0)


def log_tail(c: Container, lines: int = LOG_LINES) -> str:
    try:
        raw = c.logs(tail=lines, stdout=True, stderr=True)
    except docker.errors.DockerException:
        return ""
    text: str = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text.rstrip()
