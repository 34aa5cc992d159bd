"""Use cases of the backups: back up nodes, list the backups, restore a node, drill a restore.

Each works on one network's plan, its provider's node backend and its audit log. Backup and restore hold
the network's lock: no apply or destroy interleaves with the nodes they stop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from hcops.audit.log import AuditLog, default_path
from hcops.backup import service
from hcops.backup.archive import Manifest
from hcops.backup.backend import NodeBackend, backend_for
from hcops.backup.drill import DrillResult, run_drill
from hcops.backup.restore import RestoreOptions, RestoreResult, run_restore
from hcops.backup.service import BackupOptions, Listed, run_backup
from hcops.plan.desired import NetworkPlan
from hcops.providers.state import network_lock
from hcops.settings import Settings
from hcops.usecases.deploy import load_plan

Say = Callable[[str], None]


@contextlib.contextmanager
def _session(spec_file: Path, environment: str | None, state_dir: Path | None, audit_db: Path | None, *,
             lock: bool, settings: Settings | None) -> Iterator[tuple[NetworkPlan, NodeBackend, AuditLog]]:
    plan = load_plan(spec_file, environment, state_dir, settings=settings)
    with contextlib.ExitStack() as stack:
        if lock:
            stack.enter_context(network_lock(plan.state_dir, plan.name))
        log = stack.enter_context(AuditLog(audit_db or default_path(plan.name, state_dir, plan.settings)))
        yield plan, backend_for(plan), log


def backup(spec_file: Path, environment: str | None = None, state_dir: Path | None = None, *,
           audit_db: Path | None = None, options: BackupOptions | None = None,
           say: Say, settings: Settings | None = None) -> list[Manifest]:
    with _session(spec_file, environment, state_dir, audit_db, lock=True, settings=settings) as (plan, backend, log):
        return run_backup(plan, backend, log, options or BackupOptions(), say)


def list_backups(spec_file: Path, environment: str | None = None, state_dir: Path | None = None, *,
                 audit_db: Path | None = None, verify: bool = True, settings: Settings | None = None) -> list[Listed]:
    with _session(spec_file, environment, state_dir, audit_db, lock=False, settings=settings) as (_p, _b, log):
        return service.list_backups(log, verify=verify)


def restore(spec_file: Path, environment: str | None = None, state_dir: Path | None = None, *,
            audit_db: Path | None = None, options: RestoreOptions, say: Say,
            settings: Settings | None = None) -> RestoreResult:
    with _session(spec_file, environment, state_dir, audit_db, lock=True, settings=settings) as (plan, backend, log):
        return run_restore(plan, backend, log, options, say)


def drill(spec_file: Path, environment: str | None = None, state_dir: Path | None = None, *,
          audit_db: Path | None = None, node: str | None = None, backup_id: str | None = None,
          timeout: float = 180.0, say: Say, settings: Settings | None = None) -> DrillResult:
    with _session(spec_file, environment, state_dir, audit_db, lock=False, settings=settings) as (plan, backend, log):
        return run_drill(plan, backend, log, node=node, backup_id=backup_id, timeout=timeout, say=say)
