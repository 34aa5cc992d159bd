"""Use cases of per-organization key custody: ``hcops org init`` and ``hcops genesis assemble``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hcops.clock import Clock, format_time, now
from hcops.errors import InvalidInput
from hcops.fsutil import existing_file, replace_file
from hcops.plan.desired import KeyMode, build_plan
from hcops.plan.join import JoinRequest, assemble, make_request, read_request
from hcops.plan.keys import KeyStore
from hcops.plan.lock import NetworkLock, lock_path, read_lock, write_lock
from hcops.plan.state import network_dir
from hcops.settings import Settings, resolve
from hcops.spec.loader import load_spec


@dataclass(frozen=True)
class OrgInitOutcome:
    request: JoinRequest
    path: Path
    state_dir: Path


def org_init(spec_file: Path, environment: str | None, state_dir: Path | None, organization: str, *,
             out: Path | None = None, endpoints: Mapping[str, str] | None = None, settings: Settings | None = None,
             clock: Clock = now) -> OrgInitOutcome:
    """Create the keys of ``organization``'s nodes only (in this state folder) and write its signed join
    request (public: identities and endpoints)."""
    settings = resolve(settings)
    loaded = load_spec(spec_file, environment)
    c = loaded.consortium
    mine = [n.name for n in c.nodes if n.org == organization]
    if not mine:
        known = ", ".join(o.name for o in c.spec.organizations)
        raise InvalidInput(f"organization {organization} is not in the spec (or runs no node); known: {known}")
    store = KeyStore(network_dir(c.name, state_dir, settings))
    for name in mine:  # only this organization's keys: the others create theirs on their own machines
        if store.find(name) is None:
            store.ensure(name)
    plan = build_plan(loaded, state_dir, keys=KeyMode.existing, settings=settings)
    request = make_request(plan, organization, endpoints or {}, format_time(clock()))
    path = out or spec_file.parent / f"join-{organization}.json"
    existing_file(path)
    replace_file(str(path), request.to_json().encode(), 0o644)
    return OrgInitOutcome(request, path, plan.state_dir)


@dataclass(frozen=True)
class AssembleOutcome:
    lock: NetworkLock
    path: Path
    organizations: tuple[str, ...]


def genesis_assemble(spec_file: Path, environment: str | None, requests: Sequence[Path], *,
                     clock: Clock = now) -> AssembleOutcome:
    """Check every organization's join request and write the new chain's genesis into the lock file."""
    loaded = load_spec(spec_file, environment)
    path = lock_path(spec_file, environment)
    if read_lock(path) is not None:
        raise InvalidInput(f"{path} already records chain {loaded.consortium.spec.chain.chain_id}: its genesis is "
                           "frozen", hint="a member joining a running chain is a validator-set change: add its "
                                          "nodes to the spec and `hcops apply`")
    parsed = [(str(p), read_request(p)) for p in requests]
    lock = assemble(loaded.consortium, loaded.tier, parsed, format_time(clock()), environment)
    write_lock(path, lock)
    return AssembleOutcome(lock, path, tuple(req.organization for _, req in parsed))
