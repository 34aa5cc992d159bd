"""Evaluate the runtime policy pack (``policies/runtime/``) on a fact document with the gate's engines,
finding model and waivers, so that ``hcops audit`` reports exactly like ``hcops check``."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcops.errors import InvalidInput, Location
from hcops.policy.engines.base import Engine
from hcops.policy.findings import Finding, build_findings, sort_findings
from hcops.policy.gate import GateReport, Summary, load_policy_set
from hcops.policy.metadata import RuleMeta, rules_by_id
from hcops.policy.seal import PackManifest, load_manifest, seal
from hcops.policy.sources import RUNTIME_DIR, PolicyFile, builtin_policy_dir, modules_of
from hcops.policy.waivers import WAIVER_UNUSED, Waiver, apply_waivers
from hcops.settings import Settings

SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}
Locate = Callable[[str], Location | None]


def runtime_policy_dir(settings: Settings | None = None) -> Path:
    return builtin_policy_dir(settings) / RUNTIME_DIR


@dataclass(frozen=True)
class RuntimePack:
    files: tuple[PolicyFile, ...]
    rules: Mapping[str, RuleMeta]
    root: Path | None = None
    expected: PackManifest | None = None  # the shipped pack, when this is the installed runtime pack

    @property
    def modules(self) -> dict[str, str]:
        return modules_of(self.files)


def load_runtime_pack(directory: Path | None = None, settings: Settings | None = None) -> RuntimePack:
    root = directory or runtime_policy_dir(settings)
    if not root.is_dir():
        raise InvalidInput(f"runtime policy directory not found: {root}")
    files, metas = load_policy_set(builtin_dir=root)
    return RuntimePack(tuple(files), rules_by_id(metas), root, load_manifest() if directory is None else None)


def at_or_above(f: Finding, fail_on: str) -> bool:
    return f.level == "deny" and SEVERITY_RANK.get(f.severity, 0) <= SEVERITY_RANK[fail_on]


def evaluate(
    facts: dict[str, Any],
    pack: RuntimePack,
    engine: Engine,
    *,
    locate: Locate,
    waivers: Sequence[Waiver] = (),
    environment: str | None = None,
    fail_on: str = "high",
    today: dt.date | None = None,
) -> GateReport:
    """Runtime findings as a GateReport; ``passed`` is False when an open deny finding is at or above
    ``fail_on``. Waivers shared with the gate apply; a waiver matching no runtime finding is not
    reported here (it may well match a gate finding)."""
    result = engine.evaluate(pack.modules, facts, {})
    sealed = seal(pack.files, list(pack.rules.values()), (p.package for p in result.packages),
                  builtin_dir=pack.root or Path("."), expected=pack.expected.runtime if pack.expected else None,
                  expected_digest=pack.expected.runtime_digest if pack.expected else None)
    findings = build_findings(result, pack.rules, locate)
    outcome = apply_waivers(findings, list(waivers), today=today, environment=environment)
    open_findings = sort_findings(f for f in outcome.findings if f.id != WAIVER_UNUSED)
    waived = sorted(outcome.waived, key=lambda w: w.finding.sort_key())
    summary = Summary(
        deny=sum(f.level == "deny" for f in open_findings),
        warn=sum(f.level == "warn" for f in open_findings),
        waived=len(waived),
    )
    return GateReport(
        passed=not any(at_or_above(f, fail_on) for f in open_findings),
        findings=tuple(open_findings),
        waived=tuple(waived),
        summary=summary,
        rules=tuple(pack.rules.values()),
        environment=environment,
        engine=engine.name,
        policy_files=tuple(f.name for f in pack.files),
        pack=sealed,
    )


def with_findings(report: GateReport, extra: Sequence[Finding], fail_on: str) -> GateReport:
    """The report with findings made outside the policies (expired attestations) added and judged alike."""
    if not extra:
        return report
    findings = tuple(sort_findings([*report.findings, *extra]))
    summary = Summary(deny=sum(f.level == "deny" for f in findings), warn=sum(f.level == "warn" for f in findings),
                      waived=report.summary.waived)
    return dataclasses.replace(report, findings=findings, summary=summary,
                               passed=not any(at_or_above(f, fail_on) for f in findings))
