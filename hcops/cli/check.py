"""The policy gate's commands: ``check`` and ``policy test|list``; and the gate's options and verdict lines,
which ``apply`` shares."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from hcops import output
from hcops.cli.app import (
    engine_option,
    env_option,
    options,
    output_option,
    pass_settings,
    run,
    setting_option,
    spec_option,
    state_option,
)
from hcops.errors import ExitCode
from hcops.policy.engines.limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, EngineLimits
from hcops.settings import MIN_ENGINE_MEMORY_MB, MIN_ENGINE_TIMEOUT, Settings

if TYPE_CHECKING:
    from hcops.policy.gate import GateReport
    from hcops.policy.seal import PackSeal
    from hcops.usecases.check import CheckOptions, Recording

gate_options = options(
    click.option("--policy", "policy_dirs", multiple=True, metavar="DIR",
                 type=click.Path(path_type=Path, file_okay=False),
                 help="Directory of extra Rego policies, evaluated next to the built-in pack (repeatable)."),
    click.option("--data", "data_files", multiple=True, metavar="FILE",
                 type=click.Path(path_type=Path, dir_okay=False),
                 help="JSON/YAML data document for the policies (repeatable)."),
    click.option("--waivers", type=click.Path(path_type=Path, dir_okay=False), default=None,
                 help="Waivers file (id, resource, justification, approver, expiry)."),
    click.option("--strict", is_flag=True, help="Warnings fail the gate too."),
    engine_option,
    setting_option("--opa-url", setting="opa_url", default=None,
                   help="Evaluate with this OPA server (goes with --engine auto)."),
    click.option("--manifests", type=click.Choice(["provider", "all"]), default="provider", show_default=True,
                 help="Rendered manifests in the policy input: those of spec.provider.type (what apply "
                      "creates) or every target (what render writes)."),
    setting_option("--engine-timeout", setting="engine_timeout", type=click.FloatRange(min=MIN_ENGINE_TIMEOUT),
                   default=DEFAULT_TIMEOUT_S, show_default=True, metavar="SECONDS",
                   help="The engine's time limit for one evaluation (the gate fails past it)."),
    setting_option("--engine-memory", setting="engine_memory_mb", type=click.IntRange(min=MIN_ENGINE_MEMORY_MB),
                   default=DEFAULT_MEMORY_MB, show_default=True, metavar="MB",
                   help="The engine's memory limit for one evaluation (the gate fails past it)."),
)


def check_options(settings: Settings, environment: str | None, state_dir: Path | None,
                  policy_dirs: tuple[Path, ...], data_files: tuple[Path, ...], waivers: Path | None, strict: bool,
                  engine: str, opa_url: str | None, manifests: str, engine_timeout: float,
                  engine_memory: int) -> CheckOptions:
    """The use case's options from those of ``gate_options``."""
    from hcops.usecases.check import CheckOptions

    return CheckOptions(environment=environment, state_dir=state_dir, policy_dirs=tuple(policy_dirs),
                        data_files=tuple(data_files), waivers=waivers, strict=strict, opa_url=opa_url,
                        engine=engine, manifests="all" if manifests == "all" else "provider",
                        engine_limits=EngineLimits(engine_timeout, engine_memory), settings=settings)


def pack_words(pack: PackSeal | None) -> str:
    """The built-in pack a gate evaluated, for the verdict line."""
    if pack is None:
        return ""
    return f"; pack {pack.digest[:12]}{'' if pack.shipped else ' (not the shipped pack)'}, {pack.total} rules"


def warn_pack(pack: PackSeal | None) -> None:
    if pack is not None and not pack.shipped:
        output.text(f"warning: the built-in policy pack evaluated (digest {pack.digest[:12]}) is not the one "
                    "shipped with this hcops (HCOPS_POLICY_DIR); the run is recorded with its digest", err=True)


def warn_recording(recording: Recording) -> None:
    if recording.error:
        output.text(f"warning: {recording.error} (the gate verdict stands)", err=True)


def gate_verdict(report: GateReport) -> None:
    """The one-line verdict of a gate that runs ahead of a change (apply, certs rotate)."""
    s = report.summary
    output.text(f"policy gate {'passed' if report.passed else 'FAILED'}: {s.deny} deny, {s.warn} warn, "
                f"{s.waived} waived", err=True)


@click.command(name="check")
@spec_option
@env_option
@state_option
@gate_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "sarif", "junit", "github"]),
              default="table", show_default=True, help="Report format.")
@click.option("--output-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the report to this file (the verdict is still printed).")
@pass_settings
@run
def check_command(settings: Settings, spec_file: Path, environment: str | None, state_dir: Path | None,
                  policy_dirs: tuple[Path, ...], data_files: tuple[Path, ...], waivers: Path | None,
                  strict: bool, engine: str, opa_url: str | None, manifests: str, engine_timeout: float,
                  engine_memory: int, fmt: str, output_file: Path | None) -> int:
    """Gate a release on the HIPAA policies: spec + rendered manifests against the Rego policy pack.

    Exit 0 when no deny finding is left after waivers, 1 when one is (or a warning with --strict),
    2 on invalid input or broken policies.
    """
    from hcops.policy import formats
    from hcops.usecases.check import check

    outcome = check(spec_file, check_options(settings, environment, state_dir, policy_dirs, data_files, waivers,
                                             strict, engine, opa_url, manifests, engine_timeout, engine_memory))
    report = outcome.report
    warn_recording(outcome.recording)
    warn_pack(report.pack)
    s = report.summary
    if fmt == "table":
        if output_file is not None:
            output.table_file(formats.findings_table(report), output_file)
        elif report.findings or report.waived:
            output.wide_table(formats.findings_table(report))
        output.text(f"{spec_file}{f' (env {environment})' if environment else ''}: gate "
                    f"{'passed' if report.passed else 'FAILED'} ({s.deny} deny, {s.warn} warn, "
                    f"{s.waived} waived{', strict' if strict else ''}; engine {report.engine}"
                    f"{pack_words(report.pack)})")
    elif output_file is not None:
        output.text_file(formats.render(report, fmt), output_file)
        output.text(f"gate {'passed' if report.passed else 'FAILED'}: {s.deny} deny, {s.warn} warn, "
                    f"{s.waived} waived; {fmt} report written to {output_file}", err=True)
    else:
        output.raw(formats.render(report, fmt))
    return 0 if report.passed else ExitCode.CHECK_FAILED


@click.group(name="policy")
def policy_group() -> None:
    """The policy pack: list its rules, run its tests."""


@policy_group.command(name="test")
@click.argument("dirs", nargs=-1, type=click.Path(path_type=Path, file_okay=False))
@engine_option
@setting_option("--opa-url", setting="opa_url", default=None,
                help="Run the tests on this OPA server (goes with --engine auto).")
@click.option("--builtin/--no-builtin", default=True, show_default=True,
              help="Also load (and test) the built-in pack.")
@pass_settings
@run
def policy_test_command(settings: Settings, dirs: tuple[Path, ...], engine: str, opa_url: str | None,
                        builtin: bool) -> int:
    """Run the test_* rules of the *_test.rego files (built-in pack and DIRs); exit 1 on a failure."""
    from hcops.policy.formats import policy_tests_table
    from hcops.usecases.check import policy_tests

    results = policy_tests(dirs, opa_url=opa_url, builtin=builtin, engine=engine, settings=settings)
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
@pass_settings
@run
def policy_list_command(settings: Settings, policy_dirs: tuple[Path, ...], fmt: str) -> int:
    """List the gate's rules: id, level, severity, control, HIPAA citations, title."""
    from hcops.policy.formats import rules_table
    from hcops.usecases.check import rules

    metas = rules(policy_dirs, settings)
    if fmt == "json":
        output.as_json([{"id": m.id, "level": m.level, "severity": m.severity, "control": m.control,
                         "hipaa": list(m.hipaa), "title": m.title, "description": m.description,
                         "remediation": m.remediation, "package": m.package,
                         "location": {"file": m.file, "line": m.line}} for m in metas])
    else:
        output.wide_table(rules_table(metas))
    return 0


COMMANDS = (check_command, policy_group)
