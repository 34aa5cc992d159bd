"""The policy gate: evaluate the policy pack on the input document, apply waivers, decide."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hcops.errors import Location
from hcops.policy.engines.base import Engine, TestResult
from hcops.policy.findings import Finding, build_findings, sort_findings
from hcops.policy.metadata import RuleMeta, collect_metadata, rules_by_id
from hcops.policy.regosrc import scan
from hcops.policy.seal import PackManifest, PackSeal, check_user_policies, seal
from hcops.policy.sources import (
    PolicyFile,
    builtin_policy_dir,
    collect_policies,
    load_data_files,
    modules_of,
)
from hcops.policy.waivers import WAIVER_RULES, WaivedFinding, apply_waivers, load_waivers


@dataclass(frozen=True)
class Summary:
    deny: int = 0
    warn: int = 0
    waived: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"deny": self.deny, "warn": self.warn, "waived": self.waived}


@dataclass(frozen=True)
class GateReport:
    passed: bool
    findings: tuple[Finding, ...]
    waived: tuple[WaivedFinding, ...]
    summary: Summary
    rules: tuple[RuleMeta, ...]  # one per rule id, sorted by id
    strict: bool = False
    environment: str | None = None
    engine: str = ""
    policy_files: tuple[str, ...] = field(default=())
    pack: PackSeal | None = None  # what was evaluated of the built-in pack

    @property
    def deny(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "deny")

    @property
    def warn(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "warn")


def _metadata(files: Sequence[PolicyFile]) -> list[RuleMeta]:
    return collect_metadata((scan(f.name, f.source), f.builtin) for f in files)


def load_policy_set(
    policy_dirs: Sequence[Path] = (),
    *,
    builtin_dir: Path | None = None,
    include_runtime: bool = False,
) -> tuple[list[PolicyFile], list[RuleMeta]]:
    """The gate's policy files (tests excluded) and their validated metadata."""
    files = collect_policies(policy_dirs, builtin_dir=builtin_dir, include_runtime=include_runtime)
    return files, _metadata(files)


def list_rules(
    policy_dirs: Sequence[Path] = (),
    *,
    builtin_dir: Path | None = None,
    include_runtime: bool = False,
) -> list[RuleMeta]:
    """Every annotated deny/warn rule (for ``hcops policy list``), sorted by id, then file:line."""
    if builtin_dir is None:
        builtin_dir = builtin_policy_dir()
    _, metas = load_policy_set(policy_dirs, builtin_dir=builtin_dir, include_runtime=include_runtime)
    return sorted(metas, key=lambda m: (m.id, m.file, m.line))


def run_gate(
    input_doc: dict[str, Any],
    *,
    policy_dirs: Sequence[Path],
    builtin_dir: Path,
    data_files: Sequence[Path],
    waivers: Path | None,
    engine: Engine,
    locate: Callable[[str], Location | None],
    environment: str | None,
    strict: bool = False,
    today: dt.date | None = None,
    expected: PackManifest | None = None,
) -> GateReport:
    """Evaluate the built-in pack (without ``runtime/``) and the user policies on ``input_doc``.

    Passes when no deny finding is left after waivers (with ``strict``, no warn either). Raises
    InvalidInput for bad policies, data or waivers, and whatever the engine raises when it cannot
    evaluate: the gate never passes on an evaluation it could not complete.

    Sealed (hcops.policy.seal): user policies and data cannot reach into the built-in packages, and a
    run that evaluated no built-in rule, or less of the pack than ``expected`` (the shipped pack's
    manifest), fails closed.
    """
    files = collect_policies(policy_dirs, builtin_dir=builtin_dir)
    check_user_policies(files)
    data = load_data_files(data_files)
    # The engine (an OPA server: another process, another core) evaluates while the policies' metadata
    # and the waivers are read here; a problem with either still fails the gate.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(engine.evaluate, modules_of(files), input_doc, data)
        try:
            metas = _metadata(files)
            waiver_list = load_waivers(waivers) if waivers is not None else []
        except BaseException:
            engine.cancel()  # the policies' own problem is the one to report
            wait([pending])
            raise
        result = pending.result()
    pack = seal(files, metas, (p.package for p in result.packages), builtin_dir=builtin_dir,
                expected=expected.gate if expected else None,
                expected_digest=expected.gate_digest if expected else None)
    rules = rules_by_id([*metas, *(WAIVER_RULES if waivers is not None else ())])
    findings = build_findings(result, rules, locate)
    outcome = apply_waivers(findings, waiver_list, today=today, environment=environment)
    open_findings = sort_findings(outcome.findings)
    waived = sorted(outcome.waived, key=lambda w: w.finding.sort_key())
    summary = Summary(
        deny=sum(1 for f in open_findings if f.level == "deny"),
        warn=sum(1 for f in open_findings if f.level == "warn"),
        waived=len(waived),
    )
    passed = summary.deny == 0 and (not strict or summary.warn == 0)
    return GateReport(
        passed=passed,
        findings=tuple(open_findings),
        waived=tuple(waived),
        summary=summary,
        rules=tuple(rules.values()),
        strict=strict,
        environment=environment,
        engine=engine.name,
        policy_files=tuple(f.name for f in files),
        pack=pack,
    )


def run_policy_tests(
    policy_dirs: Sequence[Path] = (),
    *,
    builtin_dir: Path | None,
    engine: Engine,
    data_files: Sequence[Path] = (),
) -> list[TestResult]:
    """Run the ``test_*`` rules of every ``*_test.rego`` (built-in pack, runtime included, and user
    directories) with ``engine``."""
    files = collect_policies(policy_dirs, builtin_dir=builtin_dir, include_tests=True, include_runtime=True)
    check_user_policies(files)
    return engine.run_tests(modules_of(files), load_data_files(data_files))
