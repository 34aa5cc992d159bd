"""The command line: parse arguments, call one use case, print through ``hcops.output``.

This is the only module that catches ``HcopsError`` and turns it into an exit code.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from hcops import __version__, output
from hcops.errors import ExitCode, HcopsError, InvalidInput

F = TypeVar("F", bound=Callable[..., Any])

spec_option = click.option("-f", "--file", "spec_file", required=True, metavar="SPEC",
                           type=click.Path(path_type=Path, dir_okay=False),
                           help="Consortium spec (YAML).")
env_option = click.option("--env", "environment", metavar="ENV", default=None,
                          help="Merge environments/ENV.yaml (next to the spec) over the spec.")
state_option = click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False),
                            envvar="HCOPS_STATE_DIR", default=None,
                            help="State directory (keys, state, audit log). Default: .hcops/")


def output_option(*choices: str) -> Callable[[F], F]:
    return click.option("--output", "-o", "fmt", type=click.Choice(choices), default=choices[0],
                        show_default=True, help="Output format.")


def _crash_log(exc: BaseException) -> Path:
    folder = Path(os.environ.get("HCOPS_STATE_DIR") or ".hcops")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder
    except OSError:
        probe = Path(tempfile.gettempdir())
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = probe / f"crash-{stamp}.log"
    path.write_text("".join(traceback.format_exception(exc)))
    return path


def run(func: Callable[..., int | None]) -> Callable[..., int | None]:
    """Map every outcome of a command to its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> int | None:
        try:
            code = func(*args, **kwargs)
        except InvalidInput as exc:
            if exc.diagnostics:
                output.diagnostics(exc.diagnostics)
                n = sum(1 for d in exc.diagnostics if d.severity == "error")
                output.text(f"{n} error(s)", err=True)
            else:
                output.error(exc.message, exc.hint)
            raise SystemExit(exc.exit_code) from None
        except HcopsError as exc:
            output.error(exc.message, exc.hint)
            raise SystemExit(exc.exit_code) from None
        except KeyboardInterrupt:
            output.error("interrupted")
            raise SystemExit(130) from None
        except Exception as exc:  # the boundary for unexpected failures: short message + where details went
            log = _crash_log(exc)
            output.error(f"internal error: {exc.__class__.__name__}: {exc}",
                         f"details written to {log}; please report it")
            raise SystemExit(ExitCode.INTERNAL) from None
        raise SystemExit(code or 0)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="hcops")
def cli() -> None:
    """hcops: compliance-as-code for healthcare blockchain consortia.

    Describe the consortium in one spec; validate it, render manifests, gate releases on HIPAA
    policies, run the validators and audit them.
    """


@cli.command()
@output_option("text", "json")
@run
def version(fmt: str) -> int:
    """Print the hcops version."""
    if fmt == "json":
        output.as_json({"version": __version__, "python": sys.version.split()[0]})
    else:
        output.text(f"hcops {__version__}")
    return 0


@cli.command()
@run
def schema() -> int:
    """Print the JSON Schema of the spec (for editors via yaml-language-server)."""
    from hcops.usecases.spec import json_schema_text

    output.raw(json_schema_text())
    return 0


@cli.command()
@spec_option
@env_option
@output_option("text", "json")
@run
def validate(spec_file: Path, environment: str | None, fmt: str) -> int:
    """Validate a spec (and its overlay): structure, types and consensus sanity."""
    from hcops.usecases.spec import validate as validate_spec

    if fmt == "json":
        try:
            loaded = validate_spec(spec_file, environment)
        except InvalidInput as exc:
            output.as_json({"valid": False, "file": str(spec_file), "environment": environment,
                            "errors": [output.diagnostic_json(d) for d in exc.diagnostics]
                            or [{"severity": "error", "message": exc.message}]})
            return ExitCode.INVALID_INPUT
        output.as_json({"valid": True, "file": str(spec_file), "environment": environment,
                        "network": loaded.consortium.name, "nodes": len(loaded.consortium.nodes),
                        "validators": len(loaded.consortium.validators),
                        "warnings": [output.diagnostic_json(d) for d in loaded.warnings]})
        return 0
    loaded = validate_spec(spec_file, environment)
    output.diagnostics(loaded.warnings)
    c = loaded.consortium
    env = f" (env {environment})" if environment else ""
    output.text(f"{spec_file}{env}: valid — network {c.name}, {len(c.validators)} validators, "
                f"{len(c.nodes) - len(c.validators)} observers, {len(c.spec.organizations)} organizations")
    return 0


@cli.command()
@spec_option
@env_option
@state_option
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Output directory.")
@click.option("--target", type=click.Choice(["docker", "kubernetes", "ansible", "all"]), default="all",
              show_default=True)
@run
def render(spec_file: Path, environment: str | None, state_dir: Path | None, out_dir: Path, target: str) -> int:
    """Render manifests (compose, Kubernetes, Ansible) and per-node CometBFT config."""
    from hcops.render import TARGETS
    from hcops.usecases.render import render as render_manifests

    targets = list(TARGETS) if target == "all" else [target]
    result = render_manifests(spec_file, environment, out_dir, targets, state_dir)
    output.text(f"rendered {len(result.files)} files for {', '.join(targets)} into {out_dir}")
    return 0


def _timeout_option(func: F) -> F:
    return click.option("--timeout", type=click.FloatRange(min=1), default=180.0, show_default=True,
                        help="Seconds to wait for the network (or each replaced node) to be ready.")(func)


def _change_rows(changes: Any) -> list[list[Any]]:
    rows = []
    for c in changes.items:
        fields = ", ".join(f"{f.field}: {f.old} -> {f.new}" for f in c.fields)
        rows.append([c.action.value, c.kind, c.name, c.node, fields or None])
    return rows


def _changes_json(changes: Any) -> list[dict[str, Any]]:
    return [{"kind": c.kind, "name": c.name, "action": c.action.value, "node": c.node,
             "fields": [{"field": f.field, "old": f.old, "new": f.new} for f in c.fields]}
            for c in changes.items]


def _summary(changes: Any) -> dict[str, int]:
    from hcops.providers.base import Action

    return {a.value: changes.count(a) for a in Action}


@cli.command(name="plan")
@spec_option
@env_option
@state_option
@click.option("--prune-volumes", is_flag=True,
              help="Also plan removing the volumes of nodes no longer declared.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when changes are pending (0 when none).")
@output_option("text", "json")
@run
def plan_command(spec_file: Path, environment: str | None, state_dir: Path | None, prune_volumes: bool,
                 detailed_exitcode: bool, fmt: str) -> int:
    """Show what apply would do: per network, volume and container, create/update/delete/unchanged."""
    from hcops.usecases.deploy import plan as plan_changes

    outcome = plan_changes(spec_file, environment, state_dir, prune_volumes=prune_volumes)
    changes = outcome.changes
    if fmt == "json":
        output.as_json({"network": outcome.plan.name, "provider": outcome.plan.consortium.spec.provider.type,
                        "spec_hash": outcome.plan.spec_hash(), "pending": len(changes.pending),
                        "summary": _summary(changes), "changes": _changes_json(changes)})
    else:
        output.wide_table(output.simple_table(["action", "kind", "name", "node", "changed fields"],
                                         _change_rows(changes),
                                         title=f"plan for network {outcome.plan.name}"))
        s = _summary(changes)
        if changes.pending:
            output.text(f"{s['create']} to create, {s['update']} to update, {s['delete']} to delete, "
                        f"{s['unchanged']} unchanged")
        else:
            output.text("no changes: the network matches the spec")
    return 2 if detailed_exitcode and changes.pending else 0


@cli.command(name="apply")
@spec_option
@env_option
@state_option
@click.option("--yes", "-y", is_flag=True, help="Apply without asking for confirmation.")
@click.option("--prune-volumes", is_flag=True, help="Also remove the volumes of nodes no longer declared.")
@_timeout_option
@output_option("text", "json")
@run
def apply_command(spec_file: Path, environment: str | None, state_dir: Path | None, yes: bool,
                  prune_volumes: bool, timeout: float, fmt: str) -> int:
    """Create or update the network so that it matches the spec, then wait until every validator signs."""
    from hcops.providers.base import ApplyOptions
    from hcops.usecases.deploy import apply as apply_spec
    from hcops.usecases.deploy import plan as plan_changes

    if not yes:
        pending = plan_changes(spec_file, environment, state_dir, prune_volumes=prune_volumes).changes.pending
        if pending:
            if not sys.stdin.isatty():
                raise InvalidInput(f"{len(pending)} change(s) pending and no terminal to confirm them",
                                   hint="review them with `hcops plan`, then pass --yes")
            output.wide_table(output.simple_table(["action", "kind", "name", "node", "changed fields"],
                                             _change_rows(type("C", (), {"items": pending})())))
            if not click.confirm("apply these changes?", default=False, err=True):
                output.text("nothing applied", err=True)
                return 1
    outcome = apply_spec(spec_file, environment, state_dir, reporter=output.ConsoleReporter(),
                         options=ApplyOptions(timeout=timeout, prune_volumes=prune_volumes))
    res = outcome.result
    nodes = res.observation.nodes
    if fmt == "json":
        output.as_json({"network": outcome.plan.name, "changed": outcome.changed,
                        "summary": _summary(res.changes), "changes": _changes_json(res.changes),
                        "nodes": [{"node": n.name, "org": n.org, "role": n.role, "container": n.resource,
                                   "state": n.state, "rpc": n.rpc_address, "height": n.height}
                                  for n in nodes]})
        return 0
    output.wide_table(output.simple_table(
        ["node", "org", "role", "container", "RPC", "height"],
        [[n.name, n.org, n.role, n.resource, n.rpc_address, n.height] for n in nodes],
        title=f"network {outcome.plan.name}"))
    if outcome.changed:
        s = _summary(res.changes)
        output.text(f"applied: {s['create']} created, {s['update']} updated, {s['delete']} deleted")
    else:
        output.text("no changes: the network already matches the spec")
    return 0


@cli.command(name="status")
@spec_option
@env_option
@state_option
@output_option("text", "json")
@run
def status_command(spec_file: Path, environment: str | None, state_dir: Path | None, fmt: str) -> int:
    """Live state of every node: container, health, height, peers, voting power."""
    import dataclasses

    from hcops.usecases.deploy import status as observe_network

    outcome = observe_network(spec_file, environment, state_dir)
    obs = outcome.observation
    if fmt == "json":
        output.as_json({"network": obs.network, "nodes": [dataclasses.asdict(n) for n in obs.nodes],
                        "undeclared": list(obs.undeclared), "facts": dict(obs.facts)})
        return 0
    output.wide_table(output.simple_table(
        ["node", "org", "role", "container", "health", "height", "catching up", "peers", "power",
         "last block"],
        [[n.name, n.org, n.role, n.state, n.health, n.height, n.catching_up, n.peers, n.voting_power,
          n.last_block_time] for n in obs.nodes], title=f"network {obs.network}"))
    for u in obs.undeclared:
        output.text(f"undeclared: {u.get('kind')} {u.get('name')} carries this network's labels", err=True)
    return 0


@cli.command(name="destroy")
@spec_option
@env_option
@state_option
@click.option("--prune-volumes", is_flag=True, help="Also remove the nodes' data volumes (chain data).")
@click.option("--purge-keys", is_flag=True, help="Also delete the node and validator keys (needs --yes).")
@click.option("--yes", "-y", is_flag=True, help="Confirm --purge-keys.")
@run
def destroy_command(spec_file: Path, environment: str | None, state_dir: Path | None, prune_volumes: bool,
                    purge_keys: bool, yes: bool) -> int:
    """Remove the network's containers and network; volumes and keys survive unless asked."""
    from hcops.usecases.deploy import destroy as destroy_network

    if purge_keys and not yes:
        raise InvalidInput("--purge-keys deletes the validators' keys for good; add --yes to confirm")
    outcome = destroy_network(spec_file, environment, state_dir, reporter=output.ConsoleReporter(),
                              prune_volumes=prune_volumes, purge_keys=purge_keys)
    r = outcome.result
    kinds: dict[str, int] = {}
    for c in r.removed:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    done = ", ".join(f"{n} {k}(s)" for k, n in kinds.items()) or "nothing"
    output.text(f"network {outcome.plan.name}: removed {done}")
    if r.kept:
        output.text(f"kept {len(r.kept)} volume(s) (use --prune-volumes to remove them)")
    if outcome.purged_keys:
        output.text(f"deleted the keys under {outcome.plan.state_dir}")
    return 0


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="hcops", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        exc.show()
        raise SystemExit(ExitCode.INVALID_INPUT) from None
    except click.exceptions.Abort:
        output.error("aborted")
        raise SystemExit(130) from None
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.exceptions.ClickException as exc:
        exc.show()
        raise SystemExit(ExitCode.INVALID_INPUT) from None
