"""Use cases of the deploy stage: plan, apply, status and destroy a network through its provider.

The provider is the one the spec names (``spec.provider.type``) unless a caller passes one. Apply and
destroy hold the network's lock; apply runs the optional policy gate before anything is touched.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hcops.errors import InvalidInput
from hcops.plan.desired import NetworkPlan, build_plan
from hcops.progress import Reporter, SilentReporter
from hcops.providers.base import (
    ApplyOptions,
    ApplyResult,
    Changes,
    DestroyResult,
    Observation,
    Provider,
    get_provider,
)
from hcops.providers.state import DEFAULT_LOCK_TIMEOUT, STATE_FILE, network_lock
from hcops.spec.loader import load_spec

Gate = Callable[[NetworkPlan], None]


@dataclass(frozen=True)
class PlanOutcome:
    plan: NetworkPlan
    changes: Changes


@dataclass(frozen=True)
class ApplyOutcome:
    plan: NetworkPlan
    result: ApplyResult

    @property
    def changed(self) -> bool:
        return bool(self.result.changes.pending)


@dataclass(frozen=True)
class StatusOutcome:
    plan: NetworkPlan
    observation: Observation


@dataclass(frozen=True)
class DestroyOutcome:
    plan: NetworkPlan
    result: DestroyResult
    purged_keys: bool = False


def load_plan(spec_file: Path, environment: str | None, state_dir: Path | None) -> NetworkPlan:
    return build_plan(load_spec(spec_file, environment), state_dir)


def provider_for(plan: NetworkPlan, provider: Provider | None = None) -> Provider:
    return provider if provider is not None else get_provider(plan.consortium.spec.provider.type)


def plan(spec_file: Path, environment: str | None = None, state_dir: Path | None = None, *,
         prune_volumes: bool = False, provider: Provider | None = None) -> PlanOutcome:
    p = load_plan(spec_file, environment, state_dir)
    return PlanOutcome(p, provider_for(p, provider).plan(p, prune_volumes=prune_volumes))


def apply(spec_file: Path, environment: str | None = None, state_dir: Path | None = None, *,
          reporter: Reporter | None = None, options: ApplyOptions | None = None, gate: Gate | None = None,
          provider: Provider | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> ApplyOutcome:
    """Bring the network to the spec. ``gate`` (e.g. the policy check) runs first and raises to refuse."""
    p = load_plan(spec_file, environment, state_dir)
    prov = provider_for(p, provider)
    with network_lock(p.state_dir, p.name, lock_timeout):
        if gate is not None:  # under the lock: the gate records its outcome in the network's state
            gate(p)
        result = prov.apply(p, reporter or SilentReporter(), options or ApplyOptions())
    return ApplyOutcome(p, result)


def status(spec_file: Path, environment: str | None = None, state_dir: Path | None = None, *,
           provider: Provider | None = None) -> StatusOutcome:
    p = load_plan(spec_file, environment, state_dir)
    return StatusOutcome(p, provider_for(p, provider).observe(p))


def destroy(spec_file: Path, environment: str | None = None, state_dir: Path | None = None, *,
            reporter: Reporter | None = None, prune_volumes: bool = False, purge_keys: bool = False,
            provider: Provider | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> DestroyOutcome:
    """Remove the network's containers and network; volumes and keys only when asked.

    Keys go only together with the volumes: a node's chain data is useless, and dangerous to restart,
    once the keys that signed it are gone."""
    if purge_keys and not prune_volumes:
        raise InvalidInput("--purge-keys needs --prune-volumes",
                           hint="the nodes' data volumes belong to the keys; remove both or neither")
    p = load_plan(spec_file, environment, state_dir)
    prov = provider_for(p, provider)
    with network_lock(p.state_dir, p.name, lock_timeout):
        result = prov.destroy(p, reporter or SilentReporter(), prune_volumes=prune_volumes)
        if purge_keys:
            shutil.rmtree(p.keystore.root / "keys", ignore_errors=True)
            for name in ("genesis_time", STATE_FILE):
                (p.state_dir / name).unlink(missing_ok=True)
    return DestroyOutcome(p, result, purged_keys=purge_keys)
