"""Waiting for nodes to run, peer and sign; and, when they do not in time, saying why.

Every wait has a deadline. A container that exits or restarts while we wait fails the wait at once
with its last log lines; at the deadline the error names what was seen (no peers, height stuck,
validators missing from commits).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import docker.errors
from docker.models.containers import Container

from hcops.errors import ExitCode, HcopsError
from hcops.progress import Reporter
from hcops.providers.rpc import RpcClient, RpcUnavailable

POLL = 0.25
CONTAINER_POLL = 1.0
LOG_LINES = 12
MAX_CAUSES = 4


class NotReady(HcopsError):
    """The network did not become ready in time (or a node failed while we waited). Exit 1."""

    exit_code = ExitCode.CHECK_FAILED


@dataclass
class Target:
    """One node being waited for."""

    name: str
    rpc: RpcClient
    container: Container
    address: str | None = None  # validator address; None for observers
    restarts: int = 0

    @property
    def is_validator(self) -> bool:
        return self.address is not None


@dataclass
class Progress:
    heights: dict[str, int] = field(default_factory=dict)
    first_height: int | None = None
    last_height: int | None = None
    last_change: float = field(default_factory=time.monotonic)
    missing: set[str] = field(default_factory=set)  # validator names absent from the last commit looked at


class Waiter:
    def __init__(self, targets: Sequence[Target], reporter: Reporter, timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.targets = list(targets)
        self.reporter = reporter
        self.clock = clock
        self.deadline = clock() + timeout
        self.timeout = timeout
        self.progress = Progress()
        self._checked_at = 0.0
        for t in self.targets:
            t.restarts = _restart_count(t.container)

    # ------------------------------------------------------------------ containers
    def check_containers(self, force: bool = False) -> None:
        """Fail now if a node's container stopped or restarted since the wait began."""
        now = self.clock()
        if not force and now - self._checked_at < CONTAINER_POLL:
            return
        self._checked_at = now
        for t in self.targets:
            try:
                t.container.reload()
            except docker.errors.NotFound:
                raise NotReady(f"container {t.container.name} of node {t.name} disappeared "
                               "while waiting") from None
            state = t.container.attrs.get("State") or {}
            status = state.get("Status")
            restarts = _restart_count(t.container) - t.restarts
            oom = ", killed for exceeding its memory limit" if state.get("OOMKilled") else ""
            if status in ("exited", "dead"):
                raise NotReady(f"node {t.name}: container {t.container.name} {status} "
                               f"(exit code {state.get('ExitCode')}{oom})", hint=_log_hint(t.container))
            if restarts > 0 or status == "restarting":
                raise NotReady(f"node {t.name}: container {t.container.name} is crash-looping "
                               f"(restarted {max(restarts, 1)} time(s) while waiting{oom})",
                               hint=_log_hint(t.container))

    # ------------------------------------------------------------------ chain
    def _any_height(self) -> tuple[int, RpcClient] | None:
        """The highest height any node reports, and that node's client (a lagging or busy node does not
        hold the checks back)."""
        def probe(t: Target) -> tuple[Target, int] | None:
            try:
                return t, t.rpc.status().height
            except RpcUnavailable:
                return None

        with ThreadPoolExecutor(max_workers=min(8, max(1, len(self.targets)))) as pool:
            answers = [a for a in pool.map(probe, self.targets) if a is not None]
        for t, h in answers:
            self.progress.heights[t.name] = h
        if not answers:
            return None
        best, height = max(answers, key=lambda a: (a[1], a[0].is_validator))
        return height, best.rpc

    def _note_height(self, h: int) -> None:
        p = self.progress
        if p.first_height is None:
            p.first_height = h
        if p.last_height != h:
            p.last_height, p.last_change = h, self.clock()

    def signed_blocks(self, addresses: dict[str, str], min_blocks: int, *, since: int = 1,
                      required: Sequence[str] | None = None,
                      task: str = "blocks signed by every validator") -> int:
        """Wait until ``min_blocks`` commits at heights >= ``since`` carry a signature of every address in
        ``required`` (default: all validators); returns the latest height seen."""
        need = {a for n, a in addresses.items() if required is None or n in required}
        by_addr = {a: n for n, a in addresses.items()}
        counted: set[int] = set()
        next_h = max(1, since)
        while True:
            self.check_containers()
            got = self._any_height()
            if got is not None:
                latest, rpc = got
                self._note_height(latest)
                for h in range(next_h, latest + 1):
                    try:
                        commit = rpc.commit(h)
                    except RpcUnavailable:
                        break
                    if commit.signers >= need:
                        counted.add(h)
                    else:
                        self.progress.missing = {by_addr[a] for a in need - commit.signers}
                    if h < latest:
                        next_h = h + 1
                self.reporter.update(task, min(len(counted), min_blocks), min_blocks, f"height {latest}")
                if len(counted) >= min_blocks:
                    return latest
            if self.clock() > self.deadline:
                raise self.timeout_error(task)
            time.sleep(POLL)

    def synced(self, target: Target, *, min_height: int) -> int:
        """Wait until ``target`` answers, is not catching up and is at ``min_height`` or above."""
        while True:
            self.check_containers()
            try:
                s = target.rpc.status()
            except RpcUnavailable:
                s = None
            if s is not None:
                self.progress.heights[target.name] = s.height
                self._note_height(s.height)
                self.reporter.update(f"{target.name} catching up", min(s.height, min_height), min_height)
                if not s.catching_up and s.height >= min_height:
                    return s.height
            if self.clock() > self.deadline:
                raise self.timeout_error(f"{target.name} to catch up to height {min_height}")
            time.sleep(POLL)

    def running(self) -> None:
        """Wait until every target's container runs and at least one node answers RPC (the chain checks
        that follow prove the validators are up; a node too busy to answer /status is not a failure)."""
        while True:
            self.check_containers(force=True)
            up = [t for t in self.targets if _status(t.container) == "running"]
            answering = self._answering(up) if len(up) == len(self.targets) else 0
            self.reporter.update("containers running", len(up), len(self.targets))
            if answering:
                return
            if self.clock() > self.deadline:
                raise self.timeout_error("nodes to answer RPC")
            time.sleep(POLL)

    def _answering(self, targets: Sequence[Target]) -> int:
        def probe(t: Target) -> bool:
            try:
                t.rpc.status()
                return True
            except RpcUnavailable:
                return False

        with ThreadPoolExecutor(max_workers=min(8, max(1, len(targets)))) as pool:
            return sum(pool.map(probe, targets))

    # ------------------------------------------------------------------ diagnosis
    def timeout_error(self, what: str) -> NotReady:
        self.check_containers(force=True)
        with ThreadPoolExecutor(max_workers=min(8, max(1, len(self.targets)))) as pool:
            found = list(pool.map(_diagnose, self.targets))
        causes = [cause for cause, _ in found if cause]
        hint = next((h for cause, h in found if cause and h), None)
        p = self.progress
        if p.last_height is not None and self.clock() - p.last_change > 5:
            causes.insert(0, f"height stuck at {p.last_height} for {self.clock() - p.last_change:.0f} s")
        if p.missing:
            causes.insert(0, f"not signing: {', '.join(sorted(p.missing))}")
        if len(causes) > MAX_CAUSES:
            causes = [*causes[:MAX_CAUSES], f"and {len(causes) - MAX_CAUSES} more"]
        cause = "; ".join(causes) or f"height {p.last_height}"
        return NotReady(f"timed out after {self.timeout:g} s waiting for {what}: {cause}", hint=hint)


def _diagnose(t: Target) -> tuple[str | None, str | None]:
    """What is wrong with one node, if anything, and a hint (its last log lines)."""
    try:
        s = t.rpc.status()
    except RpcUnavailable as exc:
        return f"{t.name}: RPC not answering ({exc})", _log_hint(t.container)
    try:
        peers = len(t.rpc.net_info())
    except RpcUnavailable:
        peers = -1
    if peers == 0:
        return f"{t.name}: not peering (0 peers)", _log_hint(t.container)
    if s.catching_up:
        return f"{t.name}: catching up at height {s.height}", None
    return None, None


def _status(c: Container) -> str | None:
    status: str | None = (c.attrs.get("State") or {}).get("Status")
    return status


def _restart_count(c: Container) -> int:
    return int(c.attrs.get("RestartCount") or 0)


def log_tail(c: Container, lines: int = LOG_LINES) -> str:
    try:
        raw = c.logs(tail=lines, stdout=True, stderr=True)
    except docker.errors.DockerException:
        return ""
    text: str = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text.rstrip()


def _log_hint(c: Container) -> str | None:
    tail = log_tail(c)
    if not tail:
        return f"see `docker logs {c.name}`"
    body = "\n".join("  " + line for line in tail.splitlines())
    return f"last log lines of {c.name}:\n{body}"
