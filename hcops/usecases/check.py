"""Use case of the policy gate: spec -> plan -> policy input -> Rego policies -> findings -> verdict.

``check`` is ``hcops check``; ``make_gate`` gives ``hcops apply`` the same gate as a callable that
refuses (raises CheckFailed) on deny; ``record_skip`` records an ``apply --skip-gate`` and its reason.

Fails closed: a gate that cannot be evaluated (bad spec, bad policies, engine down) raises, it never
passes. Recording in the audit log is best effort: when the log cannot be written the verdict stands
and the outcome carries the reason (the CLI prints it on stderr).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hcops.clock import Clock, format_time, now
from hcops.errors import CheckFailed, HcopsError, InvalidInput
from hcops.plan.desired import KeyMode, NetworkPlan, build_plan
from hcops.policy.engines import make_engine
from hcops.policy.engines.base import Engine, TestResult
from hcops.policy.engines.limits import EngineLimits
from hcops.policy.gate import GateReport, list_rules, run_gate, run_policy_tests
from hcops.policy.metadata import RuleMeta
from hcops.policy.seal import check_user_policies, load_manifest
from hcops.policy.sources import builtin_policy_dir, collect_policies, load_data_files, modules_of
from hcops.settings import Settings, resolve
from hcops.spec.loader import LoadedSpec, load_spec

if TYPE_CHECKING:
    from hcops.policy.input import ManifestScope


@dataclass(frozen=True)
class CheckOptions:
    environment: str | None = None
    state_dir: Path | None = None
    policy_dirs: tuple[Path, ...] = ()
    data_files: tuple[Path, ...] = ()
    waivers: Path | None = None
    strict: bool = False
    opa_url: str | None = None
    engine: str = "auto"  # hcops.policy.engines.ENGINES
    manifests: ManifestScope = "provider"  # which rendered manifests the policies see (hcops.policy.input)
    record: bool = True  # append the gate run to the network's audit log (best effort)
    engine_limits: EngineLimits | None = None  # the engine's time and memory limits
    settings: Settings | None = None  # the CLI's; None: the environment's


@dataclass(frozen=True)
class Recording:
    """Where the gate run was recorded, or why it could not be."""

    path: Path | None = None
    error: str | None = None


@dataclass(frozen=True)
class CheckOutcome:
    plan: NetworkPlan
    report: GateReport
    recording: Recording = field(default_factory=Recording)

    @property
    def passed(self) -> bool:
        return self.report.passed


def _validate_paths(options: CheckOptions) -> None:
    for d in options.policy_dirs:
        if not d.is_dir():
            raise InvalidInput(f"--policy {d}: not a directory")
    for f in options.data_files:
        if not f.is_file():
            raise InvalidInput(f"--data {f}: no such file")
    if options.waivers is not None and not options.waivers.is_file():
        raise InvalidInput(f"--waivers {options.waivers}: no such file")


def prepare(engine: Engine, options: CheckOptions, loaded: LoadedSpec, settings: Settings) -> None:
    """Let the engine start what needs no input document (the managed OPA server loads and compiles the
    pack) while the plan and the document are built. Best effort: ``evaluate`` reads the same policies
    and data again and reports any problem with them."""
    start = getattr(engine, "prepare", None)
    if start is None:
        return
    try:
        _validate_paths(options)
        files = collect_policies(options.policy_dirs, builtin_dir=builtin_policy_dir(settings))
        check_user_policies(files)
        data = load_data_files(options.data_files)
        start(modules_of(files), data, sum(len(o.nodes) for o in loaded.consortium.spec.organizations))
    except (HcopsError, OSError):
        return


def evaluate(plan: NetworkPlan, options: CheckOptions, engine: Engine | None = None) -> GateReport:
    """Run the gate (built-in pack + ``--policy`` dirs) on the plan's policy input document, with
    ``engine`` (which the caller closes) or one made from ``options``."""
    from hcops.policy.input import build_input

    _validate_paths(options)
    settings = plan.settings
    owned = engine is None
    if engine is None:
        engine = make_engine(options.opa_url, engine=options.engine, limits=options.engine_limits, settings=settings)
    sink = getattr(engine, "input_sink", None)
    try:
        return run_gate(
            build_input(plan, options.manifests, sink() if sink is not None else None),
            policy_dirs=options.policy_dirs,
            builtin_dir=builtin_policy_dir(settings),
            data_files=options.data_files,
            waivers=options.waivers,
            engine=engine,
            locate=plan.loaded.locate,
            environment=options.environment,
            strict=options.strict,
            expected=load_manifest(),
        )
    finally:
        if owned:
            engine.close()


def _audit_path(plan: NetworkPlan, state_dir: Path | None) -> Path:
    from hcops.audit.log import default_path

    return default_path(plan.name, state_dir, plan.settings)


def record(plan: NetworkPlan, report: GateReport | None, options: CheckOptions, *, command: str,
           skipped_reason: str | None = None) -> Recording:
    """Append one gate run (or a skipped gate) to the audit log; never raises for an unwritable log."""
    try:
        from hcops.audit.log import record_gate_run
    except ImportError as exc:  # the audit module is optional for the gate
        return Recording(error=f"audit log unavailable ({exc})")
    path = _audit_path(plan, options.state_dir)
    summary: dict[str, Any] = report.summary.to_dict() if report else {}
    try:
        record_gate_run(
            path,
            network=plan.name,
            passed=report.passed if report else False,
            summary=summary,
            findings=[f.to_dict() for f in report.findings] if report else [],
            waived=[w.to_dict() for w in report.waived] if report else [],
            environment=options.environment,
            command=command,
            spec_hash=plan.spec_hash(),
            skipped_reason=skipped_reason,
            pack=report.pack.to_dict() if report and report.pack else None,
            settings=plan.settings,
        )
    except (HcopsError, OSError, sqlite3.Error) as exc:
        reason = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
        return Recording(path=path, error=f"could not record the gate run in {path}: {reason}")
    return Recording(path=path)


def check(spec_file: Path, options: CheckOptions | None = None, *, command: str = "check") -> CheckOutcome:
    """``hcops check``: load the spec, build the plan and its input document, evaluate the gate."""
    options = options or CheckOptions()
    # No key is created: the gate judges the spec, the lock file and public identities only, so that a CI
    # job needs no secret (nodes with no identity yet are "pending" in the input).
    loaded = load_spec(spec_file, options.environment)
    settings = resolve(options.settings)
    engine = make_engine(options.opa_url, engine=options.engine, limits=options.engine_limits, settings=settings)
    try:
        prepare(engine, options, loaded, settings)
        plan = build_plan(loaded, options.state_dir, keys=KeyMode.existing, settings=settings)
        report = evaluate(plan, options, engine)
    except BaseException:
        engine.close()
        raise
    # A managed server takes about as long to stop (the kernel returns its memory) as the run takes to be
    # recorded: both at once. Both are done when this returns.
    with ThreadPoolExecutor(1, thread_name_prefix="hcops-engine-close") as pool:
        closing = pool.submit(engine.close)
        recording = record(plan, report, options, command=command) if options.record else Recording()
        closing.result()
    return CheckOutcome(plan, report, recording)


# ------------------------------------------------------------------------------------- apply's gate
def _write_state(plan: NetworkPlan, entry: dict[str, Any]) -> None:
    from hcops.providers.state import StateStore

    store = StateStore(plan.state_dir)
    state = store.load(plan.name, plan.consortium.spec.provider.type)
    state.extra = {**state.extra, "gate": entry}
    store.save(state)


def make_gate(options: CheckOptions, *, on_report: Callable[[GateReport, Recording], None] | None = None,
              clock: Clock = now) -> Callable[[NetworkPlan], None]:
    """The gate for ``hcops.usecases.deploy.apply``: evaluate, record, report, and refuse on deny."""

    def gate(plan: NetworkPlan) -> None:
        report = evaluate(plan, options)
        recording = record(plan, report, options, command="apply") if options.record else Recording()
        if on_report is not None:
            on_report(report, recording)
        if not report.passed:
            s = report.summary
            raise CheckFailed(
                f"the policy gate refused to apply network {plan.name}: {s.deny} deny, {s.warn} warn"
                + (" (strict)" if report.strict else ""),
                hint="fix the findings, waive them (--waivers), or apply with --skip-gate --reason \"...\"",
            )
        _write_state(plan, {"skipped": False, "passed": True, "at": format_time(clock()),
                            "summary": report.summary.to_dict()})

    return gate


def make_skip(options: CheckOptions, reason: str, *, on_record: Callable[[Recording], None] | None = None,
              clock: Clock = now) -> Callable[[NetworkPlan], None]:
    """The stand-in gate of ``apply --skip-gate --reason``: records the reason (state and audit log)."""
    reason = reason.strip()
    if not reason:
        raise InvalidInput("--skip-gate needs --reason \"...\" (recorded in the state and the audit log)")

    def skip(plan: NetworkPlan) -> None:
        _write_state(plan, {"skipped": True, "reason": reason, "user": plan.settings.user,
                            "at": format_time(clock())})
        recording = record(plan, None, options, command="apply", skipped_reason=reason)
        if on_record is not None:
            on_record(recording)

    return skip


# ------------------------------------------------------------------------------------- policy pack
def policy_tests(dirs: Sequence[Path] = (), *, opa_url: str | None = None,
                 builtin: bool = True, engine: str = "auto", settings: Settings | None = None) -> list[TestResult]:
    """``hcops policy test``: the ``test_*`` rules of the built-in pack and of ``dirs``."""
    settings = resolve(settings)
    for d in dirs:
        if not d.is_dir():
            raise InvalidInput(f"{d}: not a directory")
    chosen = make_engine(opa_url, engine=engine, settings=settings)
    try:
        return run_policy_tests(dirs, builtin_dir=builtin_policy_dir(settings) if builtin else None, engine=chosen)
    finally:
        chosen.close()


def rules(dirs: Sequence[Path] = (), settings: Settings | None = None) -> list[RuleMeta]:
    """``hcops policy list``: every annotated rule of the built-in pack (and of ``dirs``)."""
    return list_rules(dirs, builtin_dir=builtin_policy_dir(resolve(settings)))
