"""The runtime audit's commands: ``audit`` (once or ``--watch``) and ``audit verify``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hcops import output
from hcops.cli.app import (
    audit_db_option,
    engine_option,
    env_option,
    options,
    require_spec,
    run,
    setting_option,
    settings_of,
    spec_option_for,
    state_option,
    with_group_params,
)
from hcops.cli.deploy import org_option
from hcops.errors import ExitCode, InvalidInput
from hcops.settings import Settings

if TYPE_CHECKING:
    from hcops.audit.sweep import Sweep

audit_options = options(spec_option_for(required=False), env_option, state_option, audit_db_option)


def _parse_interval(text: str | None) -> float | None:
    from hcops.spec.types import parse_duration_ns

    if text is None:
        return None
    try:
        return parse_duration_ns(text if not text.isdigit() else f"{text}s") / 1e9
    except ValueError:
        raise InvalidInput(f"--interval expects a duration such as 30s or 1m, got {text!r}") from None


@click.group(name="audit", invoke_without_command=True)
@audit_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "sarif", "junit"]), default="table",
              show_default=True, help="Output format (with --watch: table or json event lines).")
@click.option("--fail-on", type=click.Choice(["high", "medium", "low"]), default="high", show_default=True,
              help="Exit 1 when a finding at or above this severity is open.")
@click.option("--waivers", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Waivers file (the gate's format); matching findings are reported as waived.")
@click.option("--attestations", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Attestations file (control, statement, attestedBy, attestedOn, expires). "
                   "Default: attestations.yaml next to the spec, when present.")
@setting_option("--mrn-pattern", setting="mrn_pattern", default=None, metavar="REGEX",
              help="Medical record number format searched for in the chain's transactions "
                   "(default: a number labelled MRN or 'medical record number').")
@engine_option
@click.option("--opa-url", default=None, help="Evaluate with this OPA server (goes with --engine auto).")
@click.option("--watch", is_flag=True, help="Audit continuously at a fixed interval until SIGINT/SIGTERM.")
@click.option("--interval", default=None, metavar="DURATION",
              help="Watch interval (default: spec.audit.interval).")
@click.option("--serve", default=None, metavar="HOST:PORT",
              help="With --watch: serve Prometheus /metrics and /healthz (e.g. 127.0.0.1:9464).")
@click.option("--max-sweeps", type=click.IntRange(min=1), default=None,
              help="With --watch: stop after N sweeps.")
@org_option
@click.pass_context
def audit_command(ctx: click.Context, **kwargs: Any) -> None:
    """Audit the running network once (or continuously with --watch) against the runtime policies.

    Every sweep is recorded in the hash-chained audit log. Exit 0 when clean, 1 when a finding at or
    above --fail-on is open, 2 on input errors.
    """
    if ctx.invoked_subcommand is None:
        _audit(settings_of(ctx), **kwargs)


@run
def _audit(settings: Settings, spec_file: Path | None, environment: str | None, state_dir: Path | None,
           audit_db: Path | None, fmt: str, fail_on: str, waivers: Path | None, attestations: Path | None,
           mrn_pattern: str | None, engine: str, opa_url: str | None, watch: bool, interval: str | None,
           serve: str | None, max_sweeps: int | None, organization: str | None) -> int:
    from hcops.usecases import audit as uc

    spec = require_spec(spec_file)
    if (serve or max_sweeps or interval) and not watch:
        raise InvalidInput("--interval, --serve and --max-sweeps need --watch")
    opts = uc.AuditOptions(environment, state_dir, audit_db, fail_on, waivers, opa_url, engine,
                           attestations=attestations, mrn_pattern=mrn_pattern, settings=settings,
                           organization=organization)
    if not watch:
        sweep = uc.audit_once(spec, opts)
        _print_sweep(sweep, fmt, uc.sweep_json(sweep, sweep.facts["network"]))
        return 0 if sweep.passed else ExitCode.CHECK_FAILED
    if fmt not in ("table", "json"):
        raise InvalidInput("--watch prints events as table lines or json lines")

    def emit(event: Mapping[str, Any]) -> None:
        if fmt == "json":
            output.json_line(event)
        elif event["event"] == "audit_started":
            output.text(f"audit {event['audit_id']} started")
        elif event["event"] == "violation_audited":
            output.text(f"  {event['severity']:<6} {event['id']} {event['resource']}: {event['message']}")
        else:
            output.text(f"audit {event['audit_id']} finished: {event['findings']} finding(s), "
                        f"{event['seconds']}s, head {event['head'][:16]}")

    def changed(sweep: Sweep) -> None:
        for i in sweep.changes.opened:
            if fmt == "json":
                emit({"event": "incident_opened", **i.to_dict()})
            else:
                output.text(f"  incident {i.id} opened: {i.rule} {i.resource}")
        for i in sweep.changes.cleared:
            if fmt == "json":
                emit({"event": "incident_cleared", **i.to_dict()})
            else:
                output.text(f"  incident {i.id} cleared: {i.rule} {i.resource} (first seen {i.first_seen})")
        for w in sweep.warnings:
            output.text(f"warning: {w}", err=True)

    result = uc.audit_watch(
        spec, opts, interval=_parse_interval(interval), serve=serve, max_sweeps=max_sweeps, emit=emit,
        on_sweep=changed, on_error=lambda e: output.error(f"sweep failed: {e.message}", e.hint),
        on_serving=lambda a: output.text(f"serving /metrics and /healthz on http://{a}", err=True))
    output.text(f"audit stopped after {result.sweeps} sweep(s)"
                + (f" ({result.stopped_by})" if result.stopped_by else ""), err=True)
    return 0


def _print_sweep(sweep: Sweep, fmt: str, doc: dict[str, Any]) -> None:
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
@audit_options
@click.option("--anchored", is_flag=True,
              help="Also check that the chain holds the log's anchored head hashes.")
@click.pass_context
def audit_verify_command(ctx: click.Context, **kwargs: Any) -> None:
    """Check the audit log's hash chain (and its anchors on chain); print the head hash."""
    _audit_verify(settings_of(ctx), **with_group_params(ctx, kwargs))


@run
def _audit_verify(settings: Settings, spec_file: Path | None, environment: str | None, state_dir: Path | None,
                  audit_db: Path | None, anchored: bool) -> int:
    from hcops.usecases import audit as uc

    outcome = uc.verify(spec_file, uc.AuditOptions(environment, state_dir, audit_db, settings=settings),
                        anchored=anchored)
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


COMMANDS = (audit_command,)
