"""Quorum before stopping a validator: read from the live chain, for every provider.

CometBFT commits a block only with precommits from more than 2/3 of the voting power. Before hcops stops
a validator (rolling replacement, restart, upgrade) or takes power away, the power that stays online must
still exceed 2/3 of the total, or the chain halts until the node is back. Which validators are online is
read from the chain itself, not from the engine: a running container may hold a stuck node, and a node of
another organization is not ours to look at. A validator counts as online when it signed one of the last
few commits, and the provider can add what it knows to be down (a stopped container).

The provider decides what to do when the check fails: heal what is down first (start a stopped node),
or refuse with ``QuorumAtRisk`` naming the validators that are down.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from hcops.errors import HcopsError
from hcops.providers.rpc import RpcClient, RpcUnavailable

RECENT_COMMITS = 3  # a validator that signed none of these is down (3 blocks: a late vote is not "down")
QUORUM = Fraction(2, 3)


class QuorumAtRisk(HcopsError):
    """Stopping what was asked would take the online voting power to 2/3 or less. Exit 2: nothing stopped."""


class ChainUnreadable(HcopsError):
    """No node answered with the validator set and recent commits. Exit 2."""


@dataclass(frozen=True)
class LiveValidator:
    address: str
    power: int
    signing: bool  # signed one of the recent commits (and not known to be down)
    node: str  # the node's name, or the address when no declared node has it


@dataclass(frozen=True)
class QuorumView:
    height: int
    validators: tuple[LiveValidator, ...]

    @property
    def total(self) -> int:
        return sum(v.power for v in self.validators)

    @property
    def online(self) -> int:
        return sum(v.power for v in self.validators if v.signing)

    @property
    def down(self) -> tuple[LiveValidator, ...]:
        return tuple(v for v in self.validators if not v.signing)

    def power_of(self, names: Collection[str]) -> int:
        return sum(v.power for v in self.validators if v.node in names)

    def online_without(self, names: Collection[str], *, power_changes: Mapping[str, int] | None = None) -> \
            tuple[int, int]:
        """(online power, total power) once the validators ``names`` stop, and after ``power_changes``
        (node -> new power; a node absent from the set joins with that power, assumed online)."""
        changes = dict(power_changes or {})
        total = online = 0
        for v in self.validators:
            power = changes.pop(v.node, v.power)
            total += power
            online += power if v.signing and v.node not in names else 0
        for power in changes.values():  # joining validators
            total += power
            online += power
        return online, total

    def safe_without(self, names: Collection[str], *, power_changes: Mapping[str, int] | None = None) -> bool:
        online, total = self.online_without(names, power_changes=power_changes)
        return total > 0 and Fraction(online, total) > QUORUM

    def describe_down(self) -> str:
        return ", ".join(f"{v.node} (power {v.power})" for v in self.down) or "none"


def read_view(rpcs: Sequence[RpcClient], names: Mapping[str, str], *, known_down: Collection[str] = (),
              recent: int = RECENT_COMMITS) -> QuorumView:
    """The validator set at the latest height and who signs, from the first node that answers; ``names``
    maps validator addresses to node names, ``known_down`` are node names the provider knows are stopped."""
    problems = []
    for rpc in rpcs:
        try:
            height = rpc.status().height
            validators = rpc.validators()
            signers: set[str] = set()
            for h in range(max(1, height - recent + 1), height + 1):
                signers |= rpc.commit(h).signers
        except RpcUnavailable as exc:
            problems.append(str(exc))
            continue
        upper = {a.upper(): n for a, n in names.items()}
        return QuorumView(height, tuple(
            LiveValidator(address=v.address, power=v.power, node=upper.get(v.address.upper(), v.address),
                          signing=v.address in signers and upper.get(v.address.upper()) not in known_down)
            for v in validators))
    raise ChainUnreadable("cannot read the validator set from any node: " + ("; ".join(problems[:3]) or "no node"),
                          hint="the chain must answer before hcops stops a validator; check `hcops status`")


def refuse(view: QuorumView, stopping: Collection[str], doing: str) -> QuorumAtRisk:
    online, total = view.online_without(stopping)
    return QuorumAtRisk(
        f"refusing to {doing}: {online} of {total} voting power would stay online, and CometBFT needs more than "
        f"2/3 to commit; validators down now: {view.describe_down()}",
        hint="bring the validators that are down back first (or run `hcops apply` once they are), then retry")
