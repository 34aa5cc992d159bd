"""The policy engine layer: Rego HIPAA policies evaluated on the policy input, findings, waivers,
the gate decision and its report formats.

Typical use (the CLI)::

    from hcops.policy import builtin_policy_dir, make_engine, run_gate, render, findings_table

    report = run_gate(input_doc, policy_dirs=[...], builtin_dir=builtin_policy_dir(), data_files=[...],
                      waivers=path_or_None, engine=make_engine(opa_url), locate=locate,
                      environment=env, strict=strict)
    text = render(report, "sarif")          # json | sarif | junit | github
    table = findings_table(report)          # the human default
    exit_code = 0 if report.passed else 1   # the CLI raises CheckFailed

``hcops.policy.input`` (the input document builder) is a separate module, imported on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hcops.lazy import lazy_attributes

if TYPE_CHECKING:
    from hcops.policy.engines import (
        EmbeddedEngine,
        EmbeddedError,
        Engine,
        EngineResult,
        OpaServerEngine,
        PackageResult,
        TestResult,
        make_engine,
    )
    from hcops.policy.findings import Finding, locate_path
    from hcops.policy.formats import (
        FORMATS,
        findings_table,
        policy_tests_junit,
        policy_tests_table,
        render,
        rules_table,
        to_github,
        to_json,
        to_junit,
        to_sarif,
    )
    from hcops.policy.gate import GateReport, Summary, list_rules, load_policy_set, run_gate, run_policy_tests
    from hcops.policy.metadata import RuleMeta, parse_metadata
    from hcops.policy.sources import builtin_policy_dir, collect_policies, load_data_files
    from hcops.policy.waivers import (
        WAIVER_EXPIRED,
        WAIVER_INVALID,
        WAIVER_UNUSED,
        WaivedFinding,
        Waiver,
        apply_waivers,
        load_waivers,
    )

# Names are imported on first use: a command pays only for the engine and formats it uses.
_EXPORTS: dict[str, str] = {
    "EmbeddedEngine": "hcops.policy.engines",
    "EmbeddedError": "hcops.policy.engines",
    "Engine": "hcops.policy.engines",
    "EngineResult": "hcops.policy.engines",
    "OpaServerEngine": "hcops.policy.engines",
    "PackageResult": "hcops.policy.engines",
    "TestResult": "hcops.policy.engines",
    "make_engine": "hcops.policy.engines",
    "Finding": "hcops.policy.findings",
    "locate_path": "hcops.policy.findings",
    "FORMATS": "hcops.policy.formats",
    "findings_table": "hcops.policy.formats",
    "policy_tests_junit": "hcops.policy.formats",
    "policy_tests_table": "hcops.policy.formats",
    "render": "hcops.policy.formats",
    "rules_table": "hcops.policy.formats",
    "to_github": "hcops.policy.formats",
    "to_json": "hcops.policy.formats",
    "to_junit": "hcops.policy.formats",
    "to_sarif": "hcops.policy.formats",
    "GateReport": "hcops.policy.gate",
    "Summary": "hcops.policy.gate",
    "list_rules": "hcops.policy.gate",
    "load_policy_set": "hcops.policy.gate",
    "run_gate": "hcops.policy.gate",
    "run_policy_tests": "hcops.policy.gate",
    "RuleMeta": "hcops.policy.metadata",
    "parse_metadata": "hcops.policy.metadata",
    "builtin_policy_dir": "hcops.policy.sources",
    "collect_policies": "hcops.policy.sources",
    "load_data_files": "hcops.policy.sources",
    "WAIVER_EXPIRED": "hcops.policy.waivers",
    "WAIVER_INVALID": "hcops.policy.waivers",
    "WAIVER_UNUSED": "hcops.policy.waivers",
    "WaivedFinding": "hcops.policy.waivers",
    "Waiver": "hcops.policy.waivers",
    "apply_waivers": "hcops.policy.waivers",
    "load_waivers": "hcops.policy.waivers",
}

__getattr__ = lazy_attributes(__name__, _EXPORTS)


__all__ = [
    "FORMATS",
    "WAIVER_EXPIRED",
    "WAIVER_INVALID",
    "WAIVER_UNUSED",
    "EmbeddedEngine",
    "EmbeddedError",
    "Engine",
    "EngineResult",
    "Finding",
    "GateReport",
    "OpaServerEngine",
    "PackageResult",
    "RuleMeta",
    "Summary",
    "TestResult",
    "WaivedFinding",
    "Waiver",
    "apply_waivers",
    "builtin_policy_dir",
    "collect_policies",
    "findings_table",
    "list_rules",
    "load_data_files",
    "load_policy_set",
    "load_waivers",
    "locate_path",
    "make_engine",
    "parse_metadata",
    "render",
    "rules_table",
    "run_gate",
    "run_policy_tests",
    "policy_tests_table",
    "policy_tests_junit",
    "to_github",
    "to_json",
    "to_junit",
    "to_sarif",
]
