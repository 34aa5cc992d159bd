"""The backup commands: ``backup`` (and ``backup list``), ``restore`` and ``drill restore``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hcops import output
from hcops.cli.app import (
    audit_db_option,
    env_option,
    options,
    pass_settings,
    require_spec,
    run,
    settings_of,
    spec_option_for,
    state_option_for,
    timeout_option,
    with_group_params,
)
from hcops.errors import ExitCode
from hcops.settings import Settings

backup_options = options(spec_option_for(required=False), env_option,
                         state_option_for("keys, backup key, audit log"), audit_db_option)
table_or_json_option = click.option("--output", "-o", "fmt", type=click.Choice(["table", "json"]), default="table",
                                    show_default=True)
backup_timeout_option = timeout_option(300.0, "Seconds to wait for a node to stop, catch up or sign.")


def _say(message: str) -> None:
    output.text(message, err=True)


@click.group(name="backup", invoke_without_command=True)
@backup_options
@click.option("--node", "nodes", multiple=True, metavar="NAME",
              help="Back up this node (repeatable). Default: an observer, else the validator with least power.")
@click.option("--to", "to", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for the archives. Default: <state>/<network>/backups")
@backup_timeout_option
@table_or_json_option
@click.pass_context
def backup_command(ctx: click.Context, **kwargs: Any) -> None:
    """Back up nodes' chain data: each node is stopped briefly (a validator only while more than 2/3 of
    the voting power stays online), copied, restarted; archives are compressed, encrypted and recorded
    in the audit log. `hcops backup list` shows what exists."""
    if ctx.invoked_subcommand is None:
        _backup(settings_of(ctx), **kwargs)


@run
def _backup(settings: Settings, spec_file: Path | None, environment: str | None, state_dir: Path | None,
            audit_db: Path | None, nodes: tuple[str, ...], to: Path | None, timeout: float, fmt: str) -> int:
    from hcops.backup.service import BackupOptions
    from hcops.usecases.backup import backup

    made = backup(require_spec(spec_file), environment, state_dir, audit_db=audit_db,
                  options=BackupOptions(nodes, to, timeout), say=_say, settings=settings)
    if fmt == "json":
        output.as_json([m.to_json() for m in made])
    else:
        for m in made:
            output.text(f"backup {m.id}: node {m.node}, heights {m.base_height}-{m.height}, {m.size} bytes, "
                        f"sha256 {m.sha256}")
    return 0


@backup_command.command(name="list")
@backup_options
@click.option("--no-verify", is_flag=True, help="Do not re-hash the archives.")
@table_or_json_option
@click.pass_context
def backup_list_command(ctx: click.Context, **kwargs: Any) -> None:
    """List the backups recorded in the audit log, each archive's digest checked again."""
    _list(settings_of(ctx), **with_group_params(ctx, kwargs))


@run
def _list(settings: Settings, spec_file: Path | None, environment: str | None, state_dir: Path | None,
          audit_db: Path | None, no_verify: bool, fmt: str) -> int:
    from hcops.usecases.backup import list_backups

    rows = list_backups(require_spec(spec_file), environment, state_dir, audit_db=audit_db, verify=not no_verify,
                        settings=settings)
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
@backup_options
@click.option("--node", required=True, metavar="NAME", help="The node to restore.")
@click.option("--from", "backup_id", metavar="BACKUP_ID", default=None,
              help="The backup to restore (default: the latest of this node, else the latest).")
@backup_timeout_option
@pass_settings
@run
def restore_command(settings: Settings, spec_file: Path | None, environment: str | None, state_dir: Path | None,
                    audit_db: Path | None, node: str, backup_id: str | None, timeout: float) -> int:
    """Restore one node from a backup and let it catch up; the chain keeps committing, and a validator
    gets a signing state no older than the chain's record of its signatures (it cannot double-sign)."""
    from hcops.backup.restore import RestoreOptions
    from hcops.usecases.backup import restore

    r = restore(require_spec(spec_file), environment, state_dir, audit_db=audit_db,
                options=RestoreOptions(node, backup_id, timeout), say=_say, settings=settings)
    what = f"restored {r.node} from {r.backup_id} in {r.seconds:.1f} s; caught up at height {r.caught_up_height}"
    if r.state is not None:
        what += (f"; signing state {r.state} (from {r.state_source}), signed again at "
                 f"{', '.join(map(str, r.signed_heights))}")
    output.text(what)
    for note in r.corrected:
        output.text(f"corrected: {note}")
    return 0


@click.group(name="drill")
@backup_options
def drill_group(**_kwargs: Any) -> None:
    """Contingency drills (`hcops drill restore`)."""


@drill_group.command(name="restore")
@backup_options
@click.option("--node", default=None, metavar="NAME", help="Drill the latest backup of this node.")
@click.option("--from", "backup_id", metavar="BACKUP_ID", default=None, help="Drill this backup.")
@backup_timeout_option
@click.pass_context
def drill_restore_command(ctx: click.Context, **kwargs: Any) -> None:
    """Restore the latest backup into an isolated scratch node, compare its blocks with the live chain's,
    record the result in the audit log and remove the scratch node. Exit 1 when the drill fails."""
    _drill(settings_of(ctx), **with_group_params(ctx, kwargs))


@run
def _drill(settings: Settings, spec_file: Path | None, environment: str | None, state_dir: Path | None,
           audit_db: Path | None, node: str | None, backup_id: str | None, timeout: float) -> int:
    from hcops.usecases.backup import drill

    r = drill(require_spec(spec_file), environment, state_dir, audit_db=audit_db, node=node, backup_id=backup_id,
              timeout=timeout, say=_say, settings=settings)
    output.text(f"drill passed: backup {r.backup_id} restored to height {r.reached} in {r.seconds:.1f} s; "
                f"block hashes match at {len(r.heights)} heights")
    return 0


COMMANDS = (backup_command, restore_command, drill_group)
