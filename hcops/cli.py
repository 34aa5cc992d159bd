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
from hcops.cli_consortium import register as register_consortium
from hcops.cli_init import completion_command, init_command
from hcops.errors import ExitCode, HcopsError, InvalidInput
from hcops.policy.engines import ENGINES
from hcops.policy.engines.limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, EngineLimits

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


def _crash_log(exc: BaseException) -> tuple[Path | None, str]:
    """Save the traceback to a crash log: in the state folder, else in the temp folder. Returns the log's
    path, or None and why it could not be written. Never raises: a failure here must not put a
    traceback (of this very function) on the terminal in place of the short message."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    problems: list[str] = []
    try:
        text = "".join(traceback.format_exception(exc))
    except Exception as inner:  # e.g. an exception whose __str__ fails
        text = f"{exc.__class__.__name__} (traceback unavailable: {inner.__class__.__name__})\n"
    for folder in _crash_folders():
        path = folder / f"crash-{stamp}-{os.getpid()}.log"
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            # O_EXCL and O_NOFOLLOW: a planted link or file is never written through; 0600, as the state
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as fh:
                fh.write(text)
            return path, ""
        except Exception as inner:
            where = getattr(inner, "filename", None) or path
            problems.append(f"{where}: {getattr(inner, 'strerror', None) or inner.__class__.__name__}")
    return None, "; ".join(problems) or "no folder to write it to"


def _crash_folders() -> list[Path]:
    state = Path(os.environ.get("HCOPS_STATE_DIR") or ".hcops")
    try:
        temp = tempfile.gettempdir()
    except Exception:  # no usable temp folder at all (gettempdir raises then)
        return [state]
    return [state, Path(temp)]


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
                output.text(f"{n} error(s): {exc.message}" if exc.message else f"{n} error(s)", err=True)
                if exc.hint:
                    output.text(f"hint: {exc.hint}", err=True)
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
            log, why = _crash_log(exc)
            saved = f"details written to {log}" if log else f"the details could not be saved ({why})"
            try:
                message = f"internal error: {exc.__class__.__name__}: {exc}"
            except Exception:  # an exception whose __str__ fails must not escape as a traceback either
                message = f"internal error: {exc.__class__.__name__}"
            output.error(message, f"{saved}; please report it")
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
@click.option("--generate-keys", is_flag=True,
              help="Create keys in the state folder for nodes that have no identity yet (else they must be there).")
@run
def render(spec_file: Path, environment: str | None, state_dir: Path | None, out_dir: Path, target: str,
           generate_keys: bool) -> int:
    """Render manifests (compose, Kubernetes, Ansible) and per-node CometBFT config."""
    from hcops.render import TARGETS
    from hcops.usecases.render import render as render_manifests

    targets = list(TARGETS) if target == "all" else [target]
    result = render_manifests(spec_file, environment, out_dir, targets, state_dir, generate_keys=generate_keys)
    output.text(f"rendered {len(result.files)} files for {', '.join(targets)} into {out_dir}")
    return 0


def _timeout_option(func: F) -> F:
    return click.option("--timeout", type=click.FloatRange(min=1), default=180.0, show_default=True,
                        help="Seconds to wait for the network (or each replaced node) to be ready.")(func)


def _lock_timeout_option(func: F) -> F:
    return click.option("--lock-timeout", type=click.FloatRange(min=0), default=30.0, show_default=True,
                        help="Seconds to wait for another apply/destroy of this network to finish.")(func)


_engine_option = click.option(
    "--engine", type=click.Choice(ENGINES), default="auto", envvar="HCOPS_ENGINE", show_default=True,
    help="Policy engine: wasm (the pack compiled to WebAssembly, in-process), opa (the OPA binary, run by "
         "hcops), embedded (regopy); auto: wasm below 1 MB of input, else opa when installed, else wasm for the "
         "built-in pack, else embedded.")


def _gate_options(func: F) -> F:
    for option in reversed([
        click.option("--policy", "policy_dirs", multiple=True, metavar="DIR",
                     type=click.Path(path_type=Path, file_okay=False),
                     help="Directory of extra Rego policies, evaluated next to the built-in pack (repeatable)."),
        click.option("--data", "data_files", multiple=True, metavar="FILE",
                     type=click.Path(path_type=Path, dir_okay=False),
                     help="JSON/YAML data document for the policies (repeatable)."),
        click.option("--waivers", type=click.Path(path_type=Path, dir_okay=False), default=None,
                     help="Waivers file (id, resource, justification, approver, expiry)."),
        click.option("--strict", is_flag=True, help="Warnings fail the gate too."),
        _engine_option,
        click.option("--opa-url", default=None, envvar="HCOPS_OPA_URL",
                     help="Evaluate with this OPA server (goes with --engine auto)."),
        click.option("--manifests", type=click.Choice(["provider", "all"]), default="provider", show_default=True,
                     help="Rendered manifests in the policy input: those of spec.provider.type (what apply "
                          "creates) or every target (what render writes)."),
        click.option("--engine-timeout", type=click.FloatRange(min=1), default=DEFAULT_TIMEOUT_S,
                     envvar="HCOPS_ENGINE_TIMEOUT", show_default=True, metavar="SECONDS",
                     help="The engine's time limit for one evaluation (the gate fails past it)."),
        click.option("--engine-memory", type=click.IntRange(min=64), default=DEFAULT_MEMORY_MB,
                     envvar="HCOPS_ENGINE_MEMORY_MB", show_default=True, metavar="MB",
                     help="The engine's memory limit for one evaluation (the gate fails past it)."),
    ]):
        func = option(func)
    return func


def _pack_words(pack: Any) -> str:
    """The built-in pack a gate evaluated, for the verdict line."""
    if pack is None:
        return ""
    return f"; pack {pack.digest[:12]}{'' if pack.shipped else ' (not the shipped pack)'}, {pack.total} rules"


def _warn_pack(pack: Any) -> None:
    if pack is not None and not pack.shipped:
        output.text(f"warning: the built-in policy pack evaluated (digest {pack.digest[:12]}) is not the one "
                    "shipped with this hcops (HCOPS_POLICY_DIR); the run is recorded with its digest", err=True)


def _gate_recording(recording: Any) -> None:
    if recording.error:
        output.text(f"warning: {recording.error} (the gate verdict stands)", err=True)


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
    from hcops.plan.membership import describe
    from hcops.usecases.deploy import plan as plan_changes

    outcome = plan_changes(spec_file, environment, state_dir, prune_volumes=prune_volumes)
    changes, members, p = outcome.changes, outcome.membership, outcome.plan
    if fmt == "json":
        output.as_json({"network": p.name, "provider": p.consortium.spec.provider.type,
                        "spec_hash": p.spec_hash(), "pending": len(changes.pending) + len(members.changes),
                        "summary": _summary(changes), "changes": _changes_json(changes),
                        "genesis": {"sha256": p.genesis_sha256, "frozen": p.genesis_frozen,
                                    "lockFile": str(p.lock_file) if p.lock_file else None},
                        "pendingIdentities": list(p.pending),
                        "validatorSetChanges": [
                            {"node": c.node, "organization": c.organization, "change": c.kind.value,
                             "validatorAddress": c.validator_address or None, "oldPower": c.old_power,
                             "newPower": c.new_power} for c in members.ordered()],
                        "votingPowerShares": {org: {"before": float(members.shares("before").get(org, 0)),
                                                    "after": float(share)}
                                              for org, share in members.shares("after").items()},
                        "warnings": list(members.warnings)})
    else:
        output.wide_table(output.simple_table(["action", "kind", "name", "node", "changed fields"],
                                         _change_rows(changes),
                                         title=f"plan for network {p.name}"))
        if members.changes:
            output.text("validator-set changes (transactions on the live chain; the genesis stays frozen):")
            for line in describe(members):
                output.text(f"  {line}")
        for warning in members.warnings:
            output.text(f"warning: {warning}", err=True)
        if p.pending:
            output.text(f"no identity yet: {', '.join(p.pending)} (apply generates their keys)")
        s = _summary(changes)
        if changes.pending or members.changes:
            output.text(f"{s['create']} to create, {s['update']} to update, {s['delete']} to delete, "
                        f"{s['unchanged']} unchanged, {len(members.changes)} validator-set change(s)")
        else:
            output.text("no changes: the network matches the spec")
    return 2 if detailed_exitcode and (changes.pending or members.changes) else 0


@cli.command(name="apply")
@spec_option
@env_option
@state_option
@click.option("--yes", "-y", is_flag=True, help="Apply without asking for confirmation.")
@click.option("--prune-volumes", is_flag=True, help="Also remove the volumes of nodes no longer declared.")
@_timeout_option
@_lock_timeout_option
@_gate_options
@click.option("--skip-gate", is_flag=True, help="Apply without the policy gate (needs --reason; recorded).")
@click.option("--reason", default=None, help="Why the gate is skipped (kept in the state and the audit log).")
@output_option("text", "json")
@run
def apply_command(spec_file: Path, environment: str | None, state_dir: Path | None, yes: bool,
                  prune_volumes: bool, timeout: float, lock_timeout: float, policy_dirs: tuple[Path, ...],
                  data_files: tuple[Path, ...], waivers: Path | None, strict: bool, engine: str, opa_url: str | None,
                  manifests: str, engine_timeout: float, engine_memory: int, skip_gate: bool, reason: str | None,
                  fmt: str) -> int:
    """Create or update the network so that it matches the spec, then wait until every validator signs.

    The policy gate (as `hcops check`) runs first; on a deny finding nothing is touched (exit 1).
    """
    from hcops.providers.base import ApplyOptions
    from hcops.usecases.check import CheckOptions, make_gate, make_skip
    from hcops.usecases.deploy import apply as apply_spec
    from hcops.usecases.deploy import plan as plan_changes

    if reason is not None and not skip_gate:
        raise InvalidInput("--reason goes with --skip-gate")
    if skip_gate and not (reason or "").strip():
        raise InvalidInput('--skip-gate needs --reason "..." (recorded in the state and the audit log)')
    gate_options = CheckOptions(environment=environment, state_dir=state_dir, policy_dirs=tuple(policy_dirs),
                                data_files=tuple(data_files), waivers=waivers, strict=strict, opa_url=opa_url,
                                engine=engine, manifests="all" if manifests == "all" else "provider",
                                engine_limits=EngineLimits(engine_timeout, engine_memory))

    def gate_report(report: Any, recording: Any) -> None:
        from hcops.policy import formats

        _gate_recording(recording)
        _warn_pack(report.pack)
        if not report.passed:
            output.wide_table(formats.findings_table(report, show_waived=False))
        s = report.summary
        output.text(f"policy gate {'passed' if report.passed else 'FAILED'}: {s.deny} deny, {s.warn} warn, "
                    f"{s.waived} waived", err=True)

    def skip_recorded(recording: Any) -> None:
        _gate_recording(recording)
        output.text(f"warning: policy gate skipped: {reason}", err=True)

    gate = make_skip(gate_options, reason or "", on_record=skip_recorded) if skip_gate \
        else make_gate(gate_options, on_report=gate_report)

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
                         options=ApplyOptions(timeout=timeout, prune_volumes=prune_volumes),
                         lock_timeout=lock_timeout, gate=gate)
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
        ["node", "org", "role", "container", "health", "RPC", "height", "catching up", "peers", "power",
         "last block"],
        [[n.name, n.org, n.role, n.state, n.health, (n.facts.get("rpc") or {}).get("url") or n.rpc_address,
          n.height, n.catching_up, n.peers, n.voting_power, n.last_block_time] for n in obs.nodes],
        title=f"network {obs.network}"))
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
@_lock_timeout_option
@run
def destroy_command(spec_file: Path, environment: str | None, state_dir: Path | None, prune_volumes: bool,
                    purge_keys: bool, yes: bool, lock_timeout: float) -> int:
    """Remove the network's containers and network; volumes and keys survive unless asked."""
    from hcops.usecases.deploy import destroy as destroy_network

    if purge_keys and not yes:
        raise InvalidInput("--purge-keys deletes the validators' keys for good; add --yes to confirm")
    outcome = destroy_network(spec_file, environment, state_dir, reporter=output.ConsoleReporter(),
                              prune_volumes=prune_volumes, purge_keys=purge_keys, lock_timeout=lock_timeout)
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


# ------------------------------------------------------------------------------------------ check
@cli.command(name="check")
@spec_option
@env_option
@state_option
@_gate_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "sarif", "junit", "github"]),
              default="table", show_default=True, help="Report format.")
@click.option("--output-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the report to this file (the verdict is still printed).")
@run
def check_command(spec_file: Path, environment: str | None, state_dir: Path | None,
                  policy_dirs: tuple[Path, ...], data_files: tuple[Path, ...], waivers: Path | None,
                  strict: bool, engine: str, opa_url: str | None, manifests: str, engine_timeout: float,
                  engine_memory: int, fmt: str, output_file: Path | None) -> int:
    """Gate a release on the HIPAA policies: spec + rendered manifests against the Rego policy pack.

    Exit 0 when no deny finding is left after waivers, 1 when one is (or a warning with --strict),
    2 on invalid input or broken policies.
    """
    from hcops.policy import formats
    from hcops.usecases.check import CheckOptions, check

    options = CheckOptions(environment=environment, state_dir=state_dir, policy_dirs=tuple(policy_dirs),
                           data_files=tuple(data_files), waivers=waivers, strict=strict, opa_url=opa_url,
                           engine=engine, manifests="all" if manifests == "all" else "provider",
                           engine_limits=EngineLimits(engine_timeout, engine_memory))
    outcome = check(spec_file, options)
    report = outcome.report
    _gate_recording(outcome.recording)
    _warn_pack(report.pack)
    if fmt == "table":
        if output_file is not None:
            from rich.console import Console

            with output_file.open("w", encoding="utf-8") as fh:
                Console(file=fh, width=200, highlight=False, soft_wrap=True).print(
                    formats.findings_table(report))
        elif report.findings or report.waived:
            output.wide_table(formats.findings_table(report))
        s = report.summary
        output.text(f"{spec_file}{f' (env {environment})' if environment else ''}: gate "
                    f"{'passed' if report.passed else 'FAILED'} ({s.deny} deny, {s.warn} warn, "
                    f"{s.waived} waived{', strict' if strict else ''}; engine {report.engine}"
                    f"{_pack_words(report.pack)})")
    else:
        text = formats.render(report, fmt)
        if output_file is not None:
            output_file.parent.mkdir(parents=True, exist_ok=True)
            output_file.write_text(text, encoding="utf-8")
            s = report.summary
            output.text(f"gate {'passed' if report.passed else 'FAILED'}: {s.deny} deny, {s.warn} warn, "
                        f"{s.waived} waived; {fmt} report written to {output_file}", err=True)
        else:
            output.raw(text)
    return 0 if report.passed else ExitCode.CHECK_FAILED


@cli.group(name="policy")
def policy_group() -> None:
    """The policy pack: list its rules, run its tests."""


@policy_group.command(name="test")
@click.argument("dirs", nargs=-1, type=click.Path(path_type=Path, file_okay=False))
@_engine_option
@click.option("--opa-url", default=None, envvar="HCOPS_OPA_URL",
              help="Run the tests on this OPA server (goes with --engine auto).")
@click.option("--builtin/--no-builtin", default=True, show_default=True,
              help="Also load (and test) the built-in pack.")
@run
def policy_test_command(dirs: tuple[Path, ...], engine: str, opa_url: str | None, builtin: bool) -> int:
    """Run the test_* rules of the *_test.rego files (built-in pack and DIRs); exit 1 on a failure."""
    from hcops.policy.formats import policy_tests_table
    from hcops.usecases.check import policy_tests

    results = policy_tests(dirs, opa_url=opa_url, builtin=builtin, engine=engine)
    output.wide_table(policy_tests_table(results))
    failed = [r for r in results if not r.passed]
    output.text(f"{len(results) - len(failed)}/{len(results)} policy tests passed")
    if not results:
        output.text("warning: no test_* rules found", err=True)
    return ExitCode.CHECK_FAILED if failed else 0


@policy_group.command(name="list")
@click.option("--policy", "policy_dirs", multiple=True, metavar="DIR",
              type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Also list the annotated rules of this directory (repeatable).")
@output_option("table", "json")
@run
def policy_list_command(policy_dirs: tuple[Path, ...], fmt: str) -> int:
    """List the gate's rules: id, level, severity, control, HIPAA citations, title."""
    from hcops.policy.formats import rules_table
    from hcops.usecases.check import rules

    metas = rules(policy_dirs)
    if fmt == "json":
        output.as_json([{"id": m.id, "level": m.level, "severity": m.severity, "control": m.control,
                         "hipaa": list(m.hipaa), "title": m.title, "description": m.description,
                         "remediation": m.remediation, "package": m.package,
                         "location": {"file": m.file, "line": m.line}} for m in metas])
    else:
        output.wide_table(rules_table(metas))
    return 0


# ------------------------------------------------------------------------------------------ audit
def _audit_options(func: F) -> F:
    for option in reversed([
        click.option("-f", "--file", "spec_file", metavar="SPEC", default=None,
                     type=click.Path(path_type=Path, dir_okay=False), help="Consortium spec (YAML)."),
        env_option, state_option,
        click.option("--audit-db", type=click.Path(path_type=Path, dir_okay=False), envvar="HCOPS_AUDIT_DB",
                     default=None, help="Audit log file. Default: <state>/<network>/audit.db"),
    ]):
        func = option(func)
    return func


def _parse_interval(text: str | None) -> float | None:
    from hcops.spec.types import parse_duration_ns

    if text is None:
        return None
    try:
        return parse_duration_ns(text if not text.isdigit() else f"{text}s") / 1e9
    except ValueError:
        raise InvalidInput(f"--interval expects a duration such as 30s or 1m, got {text!r}") from None


@cli.group(name="audit", invoke_without_command=True)
@_audit_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "sarif", "junit"]), default="table",
              show_default=True, help="Output format (with --watch: table or json event lines).")
@click.option("--fail-on", type=click.Choice(["high", "medium", "low"]), default="high", show_default=True,
              help="Exit 1 when a finding at or above this severity is open.")
@click.option("--waivers", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Waivers file (the gate's format); matching findings are reported as waived.")
@click.option("--attestations", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Attestations file (control, statement, attestedBy, attestedOn, expires). "
                   "Default: attestations.yaml next to the spec, when present.")
@click.option("--mrn-pattern", default=None, envvar="HCOPS_MRN_PATTERN", metavar="REGEX",
              help="Medical record number format searched for in the chain's transactions "
                   "(default: a number labelled MRN or 'medical record number').")
@_engine_option
@click.option("--opa-url", default=None, help="Evaluate with this OPA server (goes with --engine auto).")
@click.option("--watch", is_flag=True, help="Audit continuously at a fixed interval until SIGINT/SIGTERM.")
@click.option("--interval", default=None, metavar="DURATION",
              help="Watch interval (default: spec.audit.interval).")
@click.option("--serve", default=None, metavar="HOST:PORT",
              help="With --watch: serve Prometheus /metrics and /healthz (e.g. 127.0.0.1:9464).")
@click.option("--max-sweeps", type=click.IntRange(min=1), default=None,
              help="With --watch: stop after N sweeps.")
@click.pass_context
def audit_command(ctx: click.Context, **kwargs: Any) -> None:
    """Audit the running network once (or continuously with --watch) against the runtime policies.

    Every sweep is recorded in the hash-chained audit log. Exit 0 when clean, 1 when a finding at or
    above --fail-on is open, 2 on input errors.
    """
    if ctx.invoked_subcommand is None:
        _audit(**kwargs)


@run
def _audit(spec_file: Path | None, environment: str | None, state_dir: Path | None, audit_db: Path | None,
           fmt: str, fail_on: str, waivers: Path | None, attestations: Path | None, mrn_pattern: str | None,
           engine: str, opa_url: str | None, watch: bool, interval: str | None, serve: str | None,
           max_sweeps: int | None) -> int:
    from hcops.usecases import audit as uc

    if spec_file is None:
        raise InvalidInput("missing -f SPEC")
    if (serve or max_sweeps or interval) and not watch:
        raise InvalidInput("--interval, --serve and --max-sweeps need --watch")
    options = uc.AuditOptions(environment, state_dir, audit_db, fail_on, waivers, opa_url, engine,
                              attestations=attestations, mrn_pattern=mrn_pattern)
    if not watch:
        sweep = uc.audit_once(spec_file, options)
        _print_sweep(sweep, fmt, uc.sweep_json(sweep, sweep.facts["network"]))
        return 0 if sweep.passed else ExitCode.CHECK_FAILED
    if fmt not in ("table", "json"):
        raise InvalidInput("--watch prints events as table lines or json lines")
    import json as _json
    from collections.abc import Mapping

    def emit(event: Mapping[str, Any]) -> None:
        if fmt == "json":
            output.raw(_json.dumps(event, default=str))
        elif event["event"] == "audit_started":
            output.text(f"audit {event['audit_id']} started")
        elif event["event"] == "violation_audited":
            output.text(f"  {event['severity']:<6} {event['id']} {event['resource']}: {event['message']}")
        else:
            output.text(f"audit {event['audit_id']} finished: {event['findings']} finding(s), "
                        f"{event['seconds']}s, head {event['head'][:16]}")

    def changed(sweep: Any) -> None:
        for i in sweep.changes.opened:
            emit({"event": "incident_opened", **i.to_dict()}) if fmt == "json" else \
                output.text(f"  incident {i.id} opened: {i.rule} {i.resource}")
        for i in sweep.changes.cleared:
            emit({"event": "incident_cleared", **i.to_dict()}) if fmt == "json" else \
                output.text(f"  incident {i.id} cleared: {i.rule} {i.resource} (first seen {i.first_seen})")
        for w in sweep.warnings:
            output.text(f"warning: {w}", err=True)

    result = uc.audit_watch(
        spec_file, options, interval=_parse_interval(interval), serve=serve, max_sweeps=max_sweeps, emit=emit,
        on_sweep=changed, on_error=lambda e: output.error(f"sweep failed: {e.message}", e.hint),
        on_serving=lambda a: output.text(f"serving /metrics and /healthz on http://{a}", err=True))
    output.text(f"audit stopped after {result.sweeps} sweep(s)"
                + (f" ({result.stopped_by})" if result.stopped_by else ""), err=True)
    return 0


def _print_sweep(sweep: Any, fmt: str, doc: dict[str, Any]) -> None:
    from hcops.policy import formats

    if fmt == "json":
        output.as_json(doc)
        return
    if fmt in ("sarif", "junit"):  # the audit's own name, not the gate's (formats names the gate)
        output.raw(formats.render(sweep.report, fmt).replace(
            '<testsuites name="hcops policy gate"', '<testsuites name="hcops runtime audit"', 1))
        return
    output.wide_table(output.simple_table(
        ["node", "org", "role", "state", "up", "height", "peers", "image"],
        [[n["name"], n["org"], n["role"], n["state"], "yes" if n["up"] else "NO", n["height"], n["peers"],
          n["image"]] for n in doc["nodes"]], title=f"network {doc['network']}: audit {sweep.id}"))
    if sweep.report.findings or sweep.report.waived:
        table = formats.findings_table(sweep.report)
        table.title = f"hcops runtime audit: {'PASSED' if sweep.passed else 'FAILED'}"
        output.wide_table(table)
    verdict = "passed" if sweep.passed else "FAILED"
    head = doc["sweep"]["head"]
    output.text(f"audit {sweep.id} {verdict}: {len(sweep.report.findings)} finding(s) "
                f"({sweep.seconds:.2f}s); log head {head['seq']} {head['hash']}")


@audit_command.command(name="verify")
@_audit_options
@click.option("--anchored", is_flag=True,
              help="Also check that the chain holds the log's anchored head hashes.")
@click.pass_context
def audit_verify_command(ctx: click.Context, **kwargs: Any) -> None:
    """Check the audit log's hash chain (and its anchors on chain); print the head hash."""
    group = ctx.parent.params if ctx.parent else {}
    for key in ("spec_file", "environment", "state_dir", "audit_db"):  # `hcops audit -f SPEC verify` too
        if kwargs.get(key) is None:
            kwargs[key] = group.get(key)
    _audit_verify(**kwargs)


@run
def _audit_verify(spec_file: Path | None, environment: str | None, state_dir: Path | None,
                  audit_db: Path | None, anchored: bool) -> int:
    from hcops.usecases import audit as uc

    outcome = uc.verify(spec_file, uc.AuditOptions(environment, state_dir, audit_db), anchored=anchored)
    v = outcome.verification
    for b in v.breaks:
        output.text(f"BROKEN {b}", err=True)
    if outcome.anchors is not None:
        for p in outcome.anchors.problems:
            output.text(f"ANCHOR {p}", err=True)
        output.text(f"anchors: {outcome.anchors.checked} checked on chain via {outcome.anchors.node or '-'}")
    pruned = f", records up to {v.pruned_upto} pruned (checkpoint)" if v.pruned_upto else ""
    state = "intact" if outcome.ok else "BROKEN"
    output.text(f"{outcome.path}: {state}, {v.records} record(s){pruned}")
    output.text(f"head {v.head_seq} {v.head_hash}")
    return 0 if outcome.ok else ExitCode.CHECK_FAILED


@cli.command(name="report")
@spec_option
@env_option
@state_option
@click.option("--audit-db", type=click.Path(path_type=Path, dir_okay=False), envvar="HCOPS_AUDIT_DB",
              default=None, help="Audit log file. Default: <state>/<network>/audit.db")
@click.option("--format", "fmt", type=click.Choice(["html", "json", "md"]), default="html", show_default=True)
@click.option("-o", "--out", "out_file", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Report file to write.")
@click.option("--waivers", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Waivers file, listed in the report and applied to the gate evaluation.")
@click.option("--attestations", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Attestations file. Default: attestations.yaml next to the spec, when present.")
@run
def report_command(spec_file: Path, environment: str | None, state_dir: Path | None, audit_db: Path | None,
                   fmt: str, out_file: Path, waivers: Path | None, attestations: Path | None) -> int:
    """Write the compliance report: one row per HIPAA control with its rules, status and evidence."""
    from hcops.usecases.report import write_report

    result = write_report(spec_file, environment, state_dir, audit_db=audit_db, fmt=fmt, out=out_file,
                          waivers=waivers, attestations=attestations)
    output.text(f"wrote {out_file}: {result.summary}")
    return 0


cli.add_command(init_command)
cli.add_command(completion_command)
register_consortium(cli)  # org init, genesis assemble
__import__("hcops.cli_backup").cli_backup.register(cli)  # backup, restore, drill
__import__("hcops.cli_certs").cli_certs.register(cli)  # certs rotate


def main(argv: list[str] | None = None) -> None:
    # hcops uses no pydantic plugins; looking for them reads the entry points of every installed
    # distribution, a noticeable share of a gate's start-up. Set the variable to "" to load them anyway.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
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
