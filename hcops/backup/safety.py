"""Chain safety while nodes are stopped and restored: never below more than 2/3 of the voting power
online, and never a signing state that lets a validator sign a height it may already have signed.

Everything here is read from the live chain over RPC (``/validators``, ``/commit``, ``/status``) from a node
other than the one being worked on. The quorum check is the provider-neutral one of
``hcops.providers.quorum``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from hcops.backup.archive import SigningState
from hcops.errors import EnvironmentProblem
from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.providers import quorum
from hcops.providers.readiness import Deadline
from hcops.providers.rpc import RpcClient, RpcUnavailable

PRECOMMIT_STEP = 3  # CometBFT FilePV steps: 1 propose, 2 prevote, 3 precommit
DOUBLE_SIGN_CHECK_HEIGHT = 10  # blocks a restarted validator looks back for its own signature
SCAN_LIMIT = 2000  # commits scanned backwards for a validator's last signature
POLL = 0.25
QUORUM_WAIT = 60.0  # seconds a running validator missing from the recent commits is given to sign again


class NotSafe(EnvironmentProblem):
    """Stopping or restoring the node now would put the chain or the validator at risk."""


def first_answering(rpcs: Sequence[RpcClient]) -> RpcClient:
    """The first node (in order) whose RPC answers and that is not catching up."""
    errors = []
    for rpc in rpcs:
        try:
            if not rpc.status().catching_up:
                return rpc
            errors.append(f"{rpc.base_url}: catching up")
        except RpcUnavailable as exc:
            errors.append(str(exc))
    raise NotSafe("no other node's RPC answers, so the chain's state cannot be read: " + "; ".join(errors[:3]),
                  hint="check `hcops status`; back up and restore nodes while the chain runs")


def ensure_quorum(rpcs: Sequence[RpcClient], plan: NetworkPlan, node: NodePlan,
                  known_down: Collection[str] | Callable[[], Collection[str]] = (), *, wait: float = 0.0,
                  deadline: Deadline | None = None) -> str:
    """Refuse (``QuorumAtRisk``) unless more than 2/3 of the voting power stays online once ``node`` stops;
    the check of ``hcops.providers.quorum``, read from the live chain, plus the validators the provider
    knows are stopped (``known_down``, or a function reading them: a validator stopped a moment ago is still
    in the recent commits). A validator that runs but is missing from the recent commits (just restarted,
    catching up) is waited for up to ``wait`` seconds before refusing; a stopped one is not. Returns what it
    found, for the log."""
    names = {n.keys.validator_address: n.name for n in plan.nodes if n.node.is_validator}
    read_down = known_down if callable(known_down) else (lambda: known_down)
    views: list[quorum.QuorumView] = []

    def safe() -> quorum.QuorumView | None:
        down = set(read_down())
        view = quorum.read_view(rpcs, names, known_down=down)
        views.append(view)
        if view.safe_without({node.name}):
            return view
        if all(v.node in down or v.node == node.name for v in view.down):
            raise quorum.refuse(view, {node.name}, f"stop {node.name}")  # only a start would help: not ours
        return None

    view = (deadline or Deadline(wait)).poll(safe, 1.0, lambda: quorum.refuse(views[-1], {node.name},
                                                                              f"stop {node.name}"))
    online, total = view.online_without({node.name})
    waited = " (after waiting for a restarted validator to sign)" if len(views) > 1 else ""
    return f"{online}/{total} of the voting power stays online without it (more than 2/3 needed){waited}"


def last_signed(rpc: RpcClient, address: str, *, below: int, limit: int = SCAN_LIMIT) -> int | None:
    """The highest committed height at or below ``below`` whose commit carries ``address``'s signature."""
    for h in range(below, max(0, below - limit), -1):
        try:
            if address in rpc.commit(h).signers:
                return h
        except RpcUnavailable:
            return None
    return None


@dataclass(frozen=True)
class SigningFloor:
    """What the chain says about a validator: its latest committed signature and the chain's height."""

    chain_height: int
    last_signed: int | None

    def state(self) -> SigningState:
        # The chain's committed height is past anything this (stopped) validator can have signed: its last
        # votes were for at most the height after its last commit, and the chain has committed beyond that
        # (wait_past). A precommit at that height is the highest step there: signing at it or below is refused.
        return SigningState(max(self.chain_height, self.last_signed or 0), 0, PRECOMMIT_STEP)


@dataclass(frozen=True)
class StateChoice:
    state: SigningState
    source: str  # chain | volume | backup
    corrected: tuple[str, ...]  # what was refused, and why


def choose_state(floor: SigningFloor, candidates: Sequence[tuple[str, SigningState | None]]) -> StateChoice:
    """The signing state to install: the highest of the chain's floor and the known states (the node's
    own volume, the backup's record). Any candidate below the floor is refused and reported."""
    best = ("chain", floor.state())
    notes: list[str] = []
    for source, state in candidates:
        if state is None:
            continue
        if state.key() < best[1].key():
            notes.append(f"{source} signing state {state} is older than the chain's record for this validator "
                         f"(last signed height {floor.last_signed}, chain height {floor.chain_height}): "
                         "not restored")
        else:
            best = (source, state)
    return StateChoice(best[1], best[0], tuple(notes))


def wait_for(predicate: Callable[[], int | None], what: str, timeout: float) -> int:
    """Poll ``predicate`` until it returns a height; :class:`NotSafe` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = predicate()
        except RpcUnavailable:
            got = None
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise NotSafe(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL)


def wait_height(rpc: RpcClient, height: int, timeout: float) -> int:
    """Wait until the chain (as ``rpc`` sees it) has committed ``height``: proof it keeps committing."""
    def reached() -> int | None:
        h = rpc.status().height
        return h if h >= height else None

    return wait_for(reached, f"the chain to commit height {height}", timeout)


def wait_synced(rpc: RpcClient, min_height: int, timeout: float) -> int:
    def synced() -> int | None:
        s = rpc.status()
        return s.height if not s.catching_up and s.height >= min_height else None

    return wait_for(synced, f"{rpc.base_url} to catch up to height {min_height}", timeout)


def wait_signing(chain: RpcClient, address: str, since: int, blocks: int, timeout: float) -> list[int]:
    """Wait until ``blocks`` commits at heights >= ``since`` carry ``address``'s signature."""
    seen: list[int] = []
    nxt = since

    def progress() -> int | None:
        nonlocal nxt
        top = chain.status().height
        while nxt <= top and len(seen) < blocks:
            if address in chain.commit(nxt).signers:
                seen.append(nxt)
            nxt += 1
        return seen[-1] if len(seen) >= blocks else None

    wait_for(progress, f"{blocks} blocks signed by {address} from height {since}", timeout)
    return seen
