"""The one interface every provider implements, its result types, and the typed registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from hcops.errors import InvalidInput
from hcops.providers.facts import ContainerFacts, HostFacts, RpcFacts

if TYPE_CHECKING:
    from hcops.plan.desired import NetworkPlan
    from hcops.plan.lock import ValidatorChange
    from hcops.progress import Reporter


class Action(StrEnum):
    create = "create"
    update = "update"
    delete = "delete"
    unchanged = "unchanged"


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Change:
    kind: str  # network | volume | container | StatefulSet | ...
    name: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    node: str | None = None


@dataclass(frozen=True)
class Changes:
    items: tuple[Change, ...]

    @property
    def pending(self) -> tuple[Change, ...]:
        return tuple(c for c in self.items if c.action is not Action.unchanged)

    def count(self, action: Action) -> int:
        return sum(1 for c in self.items if c.action is action)


@dataclass(frozen=True)
class ApplyOptions:
    timeout: float = 120.0
    min_blocks: int = 3
    prune_volumes: bool = False
    # Called once per validator-set change as soon as it is committed on chain (the lock file records it
    # there and then, so that an apply interrupted later still leaves the change on record).
    on_validator_change: Callable[[ValidatorChange], None] | None = None


@dataclass(frozen=True)
class NodeStatus:
    """One node as seen live: engine facts and chain facts (``None`` where unknown)."""

    name: str
    org: str
    role: str
    present: bool
    state: str | None = None  # running | exited | ... | pending
    health: str | None = None
    rpc_address: str | None = None
    height: int | None = None
    catching_up: bool | None = None
    peers: int | None = None
    voting_power: int | None = None
    last_block_time: str | None = None
    resource: str | None = None  # container or pod name
    # What the audit reads from every provider (hcops.providers.facts); None where it was not observed.
    container: ContainerFacts | None = None
    rpc: RpcFacts | None = None
    host: HostFacts | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)  # provider-specific extras (Kubernetes drift, ...)


@dataclass(frozen=True)
class Observation:
    network: str
    nodes: tuple[NodeStatus, ...]
    undeclared: tuple[Mapping[str, Any], ...] = ()  # labelled objects the spec does not declare
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApplyResult:
    changes: Changes
    observation: Observation
    validator_changes: tuple[ValidatorChange, ...] = ()  # committed on chain by this apply


@dataclass(frozen=True)
class DestroyResult:
    removed: tuple[Change, ...]
    kept: tuple[str, ...] = ()


@runtime_checkable
class Provider(Protocol):
    """plan / apply / observe / destroy a network on one kind of infrastructure."""

    name: ClassVar[str]

    def plan(self, plan: NetworkPlan, *, prune_volumes: bool = False) -> Changes:
        """What apply would do; with ``prune_volumes``, also the storage of nodes no longer declared."""
        ...

    def apply(self, plan: NetworkPlan, reporter: Reporter, options: ApplyOptions) -> ApplyResult: ...

    def observe(self, plan: NetworkPlan) -> Observation: ...

    def destroy(self, plan: NetworkPlan, reporter: Reporter, *,
                prune_volumes: bool = False) -> DestroyResult: ...


@runtime_checkable
class StateGuard(Protocol):
    """A provider that can tell, before apply changes anything, that the infrastructure holds nodes or data
    of another identity or chain than the plan (a lost state folder, volumes of an earlier chain)."""

    def check_state(self, plan: NetworkPlan) -> None:
        """Raise an ``HcopsError`` (exit 2) naming what differs and what to do."""
        ...


def carries_validator_updates(provider: Provider) -> bool:
    """Whether ``provider.apply`` carries out ``plan.membership`` (validator-set changes on a live chain)."""
    return bool(getattr(provider, "validator_updates", False))


ProviderFactory = Callable[[], Provider]
_REGISTRY: dict[str, ProviderFactory] = {}


def register(name: str, factory: ProviderFactory) -> None:
    _REGISTRY[name] = factory


def get_provider(name: str) -> Provider:
    if name not in _REGISTRY:
        _load_builtin(name)
    try:
        return _REGISTRY[name]()
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise InvalidInput(f"provider '{name}' is not available (known: {known})") from None


def registered() -> tuple[str, ...]:
    _load_builtin()
    return tuple(sorted(_REGISTRY))


BUILTIN = ("docker", "kubernetes", "ansible")


def _load_builtin(only: str | None = None) -> None:
    # Imported lazily so that `hcops validate` never pays for the docker/kubernetes/ansible clients, and a
    # command that needs one provider does not pay for the others.
    import importlib

    for module in (f"hcops.providers.{n}.provider" for n in BUILTIN if only in (None, n)):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
