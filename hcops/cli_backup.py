"""The ``backup``, ``restore`` and ``drill`` commands (registered on the group in ``hcops.cli``)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from hcops import output
from hcops.errors import ExitCode, InvalidInput

_spec = click.option("-f", "--file", "spec_file", metavar="SPEC", default=None,
                     type=click.Path(path_type=Path, dir_okay=False), help="Consortium spec (YAML).")
_env = click.option("--env", "environment", metavar="ENV", default=None,
                    help="Merge environments/ENV.yaml (next to the spec) over the spec.")
_state = click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False), envvar="HCOPS_STATE_DIR",
                      default=None, help="State directory (keys, backup key, audit log). Default: .hcops/")
_audit_db = click.option("--audit-db", type=click.Path(path_type=Path, dir_okay=False), envvar="HCOPS_AUDIT_DB",
                         default=None, help="Audit log file. Default: <state>/<network>/audit.db")
_timeout = click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
                        help="Seconds to wait for a node to stop, catch up or sign.")


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([_spec, _env, _state, _audit_db]):
        func = option(func)
    return func


def _run(func: Callable[..., int]) -> Callable[..., None]:
    """``hcops.cli.run`` looked up when the command runs (hcops.cli imports this module)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        from hcops.cli import run

        run(func)(*args, **kwargs)

    return wrapper


def _inherit(ctx: click.Context, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``hcops backup -f SPEC list`` as well as ``hcops backup list -f SPEC``."""
    group = ctx.parent.params if ctx.parent else {}
    for key in ("spec_file", "environment", "state_dir", "audit_db"):
        if kwargs.get(key) is None:
            kwargs[key] = group.get(key)
    return kwargs


@contextlib.contextmanager
def _session(spec_file: Path | None, environment: str | None, state_dir: Path | None, audit_db: Path | None,
             *, lock: bool) -> Iterator[tuple[Any, Any, Any]]:
    """(plan, backend, audit log) for one command; with ``lock``, the network's lock is held (no apply or
    destroy interleaves with stopping nodes)."""
    from hcops.audit.log import AuditLog, default_path
    from hcops.backup.backend import backend_for
    from hcops.providers.state import network_lock
    from hcops.usecases.deploy import load_plan

    if spec_file is None:
        raise InvalidInput("missing -f SPEC")
    plan = load_plan(spec_file, environment, state_dir)
    with contextlib.ExitStack() as stack:
        if lock:
            stack.enter_context(network_lock(plan.state_dir, plan.name))
        log = stack.enter_context(AuditLog(audit_db or default_path(plan.name, state_dir)))
        yield plan, backend_for(plan), log


def _say(message: str) -> None:
    output.text(message, err=True)


@click.group(name="backup", invoke_without_command=True)
@_common
@click.option("--node", "nodes", multiple=True, metavar="NAME",
              help="Back up this node (repeatable). Default: an observer, else the validator with least power.")
@click.option("--to", "to", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for the archives. Default: <state>/<network>/backups")
@_timeout
@click.option("--output", "-o", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def backup_command(ctx: click.Context, **kwargs: Any) -> None:
    """Back up nodes' chain data: each node is stopped briefly (a validator only while more than 2/3 of
    the voting power stays online), copied, restarted; archives are compressed, encrypted and recorded
    in the audit log. `hcops backup list` shows what exists."""
    if ctx.invoked_subcommand is None:
        _backup(**kwargs)


@_run
def _backup(spec_file: Path | None, environment: str | None, state_dir: Path | None, audit_db: Path | None,
            nodes: tuple[str, ...], to: Path | None, timeout: float, fmt: str) -> int:
    from hcops.backup.service import BackupOptions, run_backup

    with _session(spec_file, environment, state_dir, audit_db, lock=True) as (plan, backend, log):
        made = run_backup(plan, backend, log, BackupOptions(nodes, to, timeout), _say)
    if fmt == "json":
        output.as_json([m.to_json() for m in made])
    else:
        for m in made:
            output.text(f"backup {m.id}: node {m.node}, heights {m.base_height}-{m.height}, {m.size} bytes, "
                        f"sha256 {m.sha256}")
    return 0


@backup_command.command(name="list")
@_common
@click.option("--no-verify", is_flag=True, help="Do not re-hash the archives.")
@click.option("--output", "-o", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def backup_list_command(ctx: click.Context, **kwargs: Any) -> None:
    """List the backups recorded in the audit log, each archive's digest checked again."""
    _list(**_inherit(ctx, kwargs))


@_run
def _list(spec_file: Path | None, environment: str | None, state_dir: Path | None, audit_db: Path | None,
          no_verify: bool, fmt: str) -> int:
    from hcops.backup.service import list_backups

    with _session(spec_file, environment, state_dir, audit_db, lock=False) as (_plan, _backend, log):
        rows = list_backups(log, verify=not no_verify)
    if fmt == "json":
        output.as_json([{"id": r.record.id, "node": r.record.node, "time": r.record.time,
                         "height": r.record.height, "baseHeight": r.record.base_height, "size": r.record.size,
                         "sha256": r.record.sha256, "path": r.record.path, "verified": r.verified,
                         "problem": r.problem} for r in rows])
    else:
        output.wide_table(output.simple_table(
            ["id", "node", "time", "heights", "size", "sha256", "digest"],
            [[r.record.id, r.record.node, r.record.time, f"{r.record.base_height}-{r.record.height}", r.record.size,
              r.record.sha256[:16], {True: "ok", False: f"FAILED: {r.problem}", None: r.problem or "?"}[r.verified]]
             for r in rows], title="backups"))
    return ExitCode.CHECK_FAILED if any(r.verified is False for r in rows) else 0


@click.command(name="restore")
@_common
@click.option("--node", required=True, metavar="NAME", help="The node to restore.")
@click.option("--from", "backup_id", metavar="BACKUP_ID", default=None,
              help="The backup to restore (default: the latest of this node, else the latest).")
@_timeout
@_run
def restore_command(spec_file: Path | None, environment: str | None, state_dir: Path | None,
                    audit_db: Path | None, node: str, backup_id: str | None, timeout: float) -> int:
    """Restore one node from a backup and let it catch up; the chain keeps committing, and a validator
    gets a signing state no older than the chain's record of its signatures (it cannot double-sign)."""
    from hcops.backup.restore import RestoreOptions, run_restore

    with _session(spec_file, environment, state_dir, audit_db, lock=True) as (plan, backend, log):
        r = run_restore(plan, backend, log, RestoreOptions(node, backup_id, timeout), _say)
    what = f"restored {r.node} from {r.backup_id} in {r.seconds:.1f} s; caught up at height {r.caught_up_height}"
    if r.state is not None:
        what += (f"; signing state {r.state} (from {r.state_source}), signed again at "
                 f"{', '.join(map(str, r.signed_heights))}")
    output.text(what)
    for note in r.corrected:
        output.text(f"corrected: {note}")
    return 0


@click.group(name="drill")
@_common
def drill_group(**_kwargs: Any) -> None:
    """Contingency drills (`hcops drill restore`)."""


@drill_group.command(name="restore")
@_common
@click.option("--node", default=None, metavar="NAME", help="Drill the latest backup of this node.")
@click.option("--from", "backup_id", metavar="BACKUP_ID", default=None, help="Drill this backup.")
@_timeout
@click.pass_context
def drill_restore_command(ctx: click.Context, **kwargs: Any) -> None:
    """Restore the latest backup into an isolated scratch node, compare its blocks with the live chain's,
    record the result in the audit log and remove the scratch node. Exit 1 when the drill fails."""
    _drill(**_inherit(ctx, kwargs))


@_run
def _drill(spec_file: Path | None, environment: str | None, state_dir: Path | None, audit_db: Path | None,
           node: str | None, backup_id: str | None, timeout: float) -> int:
    from hcops.backup.drill import run_drill

    with _session(spec_file, environment, state_dir, audit_db, lock=False) as (plan, backend, log):
        r = run_drill(plan, backend, log, node=node, backup_id=backup_id, timeout=timeout, say=_say)
    output.text(f"drill passed: backup {r.backup_id} restored to height {r.reached} in {r.seconds:.1f} s; "
                f"block hashes match at {len(r.heights)} heights")
    return 0


COMMANDS = (backup_command, restore_command, drill_group)


def register(group: click.Group) -> None:
    for command in COMMANDS:
        group.add_command(command)
