"""Waiting for a network to be ready, the same way on every provider: one poll under a deadline, one rule for
"ready" (``min_blocks`` commits carrying every validator's signature), and the waits on nodes that hcops reaches
by their own RPC and watches through a handle (a Docker container, a host's systemd unit).

What runs a node, and how to tell why it failed, stays with each provider: a handle's ``check`` and
``log_hint`` (container state and logs, a unit's journal); the Kubernetes provider waits on pods and reads
their events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from hcops.errors import ExitCode, HcopsError
from hcops.progress import Reporter
from hcops.providers.rpc import RpcClient, RpcUnavailable

T = TypeVar("T")
U = TypeVar("U")

POLL = 0.25
HANDLE_POLL = 1.0  # a handle's check costs a call to the engine or host: not on every poll
MAX_CAUSES = 4
LOG_LINES = 12  # of a failed node's log, in a hint
STUCK_AFTER = 5.0  # a height unchanged for longer is named as stuck in the timeout's causes
REJOIN_BLOCKS = 2  # blocks a restarted or replaced validator must sign before the next node is touched
SIGNED_TASK = "blocks signed by every validator"


class NotReady(HcopsError):
    """The network did not become ready in time, or a node failed while we waited. Exit 1."""

    exit_code = ExitCode.CHECK_FAILED


class Deadline:
    """The end of a wait, fixed when it begins and shared by the waits that follow it; clock and sleep are
    injectable so that unit tests need not wait."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self.at = clock() + timeout

    def passed(self) -> bool:
        return self.clock() > self.at

    def poll(self, attempt: Callable[[], T | None], interval: float, timed_out: Callable[[], Exception]) -> T:
        """Call ``attempt`` every ``interval`` seconds until it returns something other than None; once the
        deadline has passed, raise ``timed_out()`` instead of trying again. ``attempt`` may raise to fail
        at once."""
        while True:
            got = attempt()
            if got is not None:
                return got
            if self.passed():
                raise timed_out()
            self.sleep(interval)


@dataclass
class Progress:
    """What the waits saw, for the message at the deadline."""

    heights: dict[str, int] = field(default_factory=dict)  # node -> the last height it reported
    last_height: int | None = None
    last_change: float = 0.0  # when last_height last moved
    signed: int = 0  # commits counted so far by the current signed-blocks wait
    missing: set[str] = field(default_factory=set)  # validators absent from the last commit short of some
    last: str = "no answer"  # what held the wait up last: a commit short of signatures, or an RPC error

    def saw(self, height: int, now: float) -> None:
        if self.last_height != height:
            self.last_height, self.last_change = height, now


@dataclass(frozen=True)
class Source:
    """A node to read commits from; ``height`` when this poll already asked it, else it is asked."""

    rpc: RpcClient
    height: int | None = None


def signed_blocks(sources: Callable[[], Iterable[Source]], validators: Mapping[str, str], min_blocks: int, *,
                  deadline: Deadline, reporter: Reporter, timed_out: Callable[[], Exception],
                  progress: Progress | None = None, since: int = 1, required: Collection[str] | None = None,
                  task: str = SIGNED_TASK, interval: float = POLL,
                  each_poll: Callable[[], None] | None = None) -> int:
    """Wait until ``min_blocks`` commits at heights >= ``since`` carry a signature of every validator in
    ``required`` (default: all of ``validators``, name -> address); returns the latest height seen.

    Each poll calls ``each_poll`` (which may raise to fail at once), then reads from the first of
    ``sources()`` (most wanted first) that answers, from where the last poll stopped. The latest height is
    read again next time: a node's commit for its own latest block is the one it saw, which may lack
    signatures that the canonical one (in the next block) has."""
    seen = progress if progress is not None else Progress()
    need = {a for n, a in validators.items() if required is None or n in required}
    names = {a: n for n, a in validators.items()}
    counted: set[int] = set()
    next_h = max(1, since)

    def read(rpc: RpcClient, latest: int) -> None:
        nonlocal next_h
        for h in range(next_h, latest + 1):
            signers = rpc.commit(h).signers
            if signers >= need:
                counted.add(h)
            else:
                seen.missing = {names[a] for a in need - signers}
                seen.last = f"height {h}: no signature of {', '.join(sorted(seen.missing))}"
            if h < latest:
                next_h = h + 1

    def attempt() -> int | None:
        if each_poll is not None:
            each_poll()
        latest: int | None = None
        for source in sources():
            try:
                latest = source.height if source.height is not None else source.rpc.status().height
                seen.saw(latest, deadline.clock())
                read(source.rpc, latest)
            except RpcUnavailable as exc:
                seen.last = str(exc)
                continue
            finally:
                seen.signed = len(counted)
            reporter.update(task, min(len(counted), min_blocks), min_blocks, f"height {latest}")
            break
        return latest if len(counted) >= min_blocks else None

    # The step shows as soon as it starts, at 0: the first poll may already count blocks, and a watcher of
    # the progress (a user, a test that stops apply at this step) should not miss where the wait began.
    reporter.update(task, 0, min_blocks, f"from height {next_h}")
    return deadline.poll(attempt, interval, timed_out)


def parallel(fn: Callable[[T], U], items: Sequence[T]) -> list[U]:
    """``fn`` over ``items`` on up to 8 threads, in order: a slow node does not hold the others up."""
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(items)))) as pool:
        return list(pool.map(fn, items))


def log_hint(name: str, tail: str, otherwise: str) -> str:
    """A node's last log lines as a hint, or where to read them when none could be had."""
    if not tail:
        return otherwise
    body = "\n".join("  " + line for line in tail.splitlines())
    return f"last log lines of {name}:\n{body}"


class NodeHandle(Protocol):
    """What a wait needs of what runs a node (a Docker container, a host's systemd unit)."""

    def check(self, node: str) -> None:
        """Raise ``NotReady`` when it stopped or restarted since the wait began."""
        ...

    def running(self) -> bool:
        """Whether it ran when last checked."""
        ...

    def log_hint(self) -> str | None:
        """Its last log lines, or where to find them."""
        ...


@dataclass
class Target:
    """One node being waited for."""

    name: str
    rpc: RpcClient
    handle: NodeHandle
    address: str | None = None  # validator address; None for observers

    @property
    def is_validator(self) -> bool:
        return self.address is not None


class Waiter:
    """Waits on nodes reached by their own RPC (Docker's published ports, SSH tunnels to hosts). A node whose
    handle fails fails the wait at once; at the deadline the error names what was seen (no peers, height
    stuck, validators missing from commits)."""

    def __init__(self, targets: Sequence[Target], reporter: Reporter, timeout: float,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.targets = list(targets)
        self.reporter = reporter
        self.deadline = Deadline(timeout, clock, sleep)
        self.progress = Progress()
        self._checked_at: float | None = None

    def check(self, force: bool = False) -> None:
        """Fail now if a node's handle stopped or restarted since the wait began."""
        now = self.deadline.clock()
        if not force and self._checked_at is not None and now - self._checked_at < HANDLE_POLL:
            return
        self._checked_at = now
        for t in self.targets:
            t.handle.check(t.name)

    def running(self) -> None:
        """Wait until every target runs and at least one node answers RPC (the chain checks that follow prove
        the validators are up; a node too busy to answer /status is not a failure)."""

        def attempt() -> bool | None:
            self.check(force=True)
            up = [t for t in self.targets if t.handle.running()]
            answering = sum(parallel(_answers, up)) if len(up) == len(self.targets) else 0
            self.reporter.update("containers running", len(up), len(self.targets))
            return True if answering else None

        self.deadline.poll(attempt, POLL, lambda: self.timeout_error("nodes to answer RPC"))

    def signed_blocks(self, validators: Mapping[str, str], min_blocks: int, *, since: int = 1,
                      required: Sequence[str] | None = None, task: str = SIGNED_TASK) -> int:
        """``signed_blocks`` over these targets, read from the highest node (a lagging or busy node does not
        hold the checks back)."""
        return signed_blocks(self._highest_first, validators, min_blocks, deadline=self.deadline,
                             reporter=self.reporter, timed_out=lambda: self.timeout_error(task),
                             progress=self.progress, since=since, required=required, task=task,
                             each_poll=self.check)

    def _highest_first(self) -> list[Source]:
        def probe(t: Target) -> tuple[Target, int] | None:
            try:
                return t, t.rpc.status().height
            except RpcUnavailable:
                return None

        answers = [a for a in parallel(probe, self.targets) if a is not None]
        for t, h in answers:
            self.progress.heights[t.name] = h
        answers.sort(key=lambda a: (a[1], a[0].is_validator), reverse=True)
        return [Source(t.rpc, h) for t, h in answers]

    def synced(self, target: Target, *, min_height: int) -> int:
        """Wait until ``target`` answers, is not catching up and is at ``min_height`` or above."""

        def attempt() -> int | None:
            self.check()
            try:
                s = target.rpc.status()
            except RpcUnavailable:
                return None
            self.progress.heights[target.name] = s.height
            self.progress.saw(s.height, self.deadline.clock())
            self.reporter.update(f"{target.name} catching up", min(s.height, min_height), min_height)
            return s.height if not s.catching_up and s.height >= min_height else None

        return self.deadline.poll(attempt, POLL, lambda: self.timeout_error(
            f"{target.name} to catch up to height {min_height}"))

    def network(self, validators: Mapping[str, str], min_blocks: int, *, since: int) -> int:
        """``validators`` sign ``min_blocks`` blocks from ``since``; then the other nodes catch up to near the
        latest height, which is returned."""
        latest = self.signed_blocks(validators, min_blocks, since=since)
        for t in self.targets:
            if t.name not in validators:
                self.synced(t, min_height=max(1, latest - 2))
        return latest

    def rejoined(self, target: Target, reference: int, validators: Mapping[str, str]) -> int:
        """A restarted node caught up to near ``reference`` and, when in ``validators``, signs again; the
        height it caught up at."""
        height = self.synced(target, min_height=max(1, reference - 1))
        if target.name in validators:
            self.signed_blocks(validators, REJOIN_BLOCKS, since=height + 1, required=[target.name],
                               task=f"blocks signed by {target.name}")
        return height

    def timeout_error(self, what: str) -> NotReady:
        self.check(force=True)
        found = parallel(_diagnose, self.targets)
        causes = [cause for cause, _ in found if cause]
        hint = next((h for cause, h in found if cause and h), None)
        p = self.progress
        now = self.deadline.clock()
        if p.last_height is not None and now - p.last_change > STUCK_AFTER:
            causes.insert(0, f"height stuck at {p.last_height} for {now - p.last_change:.0f} s")
        if p.missing:
            causes.insert(0, f"not signing: {', '.join(sorted(p.missing))}")
        if len(causes) > MAX_CAUSES:
            causes = [*causes[:MAX_CAUSES], f"and {len(causes) - MAX_CAUSES} more"]
        cause = "; ".join(causes) or f"height {p.last_height}"
        return NotReady(f"timed out after {self.deadline.timeout:g} s waiting for {what}: {cause}", hint=hint)


def _answers(t: Target) -> bool:
    try:
        t.rpc.status()
        return True
    except RpcUnavailable:
        return False


def _diagnose(t: Target) -> tuple[str | None, str | None]:
    """What is wrong with one node, if anything, and a hint (its last log lines)."""
    try:
        s = t.rpc.status()
    except RpcUnavailable as exc:
        return f"{t.name}: RPC not answering ({exc})", t.handle.log_hint()
    try:
        peers = len(t.rpc.net_info())
    except RpcUnavailable:
        peers = -1
    if peers == 0:
        return f"{t.name}: not peering (0 peers)", t.handle.log_hint()
    if s.catching_up:
        return f"{t.name}: catching up at height {s.height}", None
    return None, None
