"""Renderers for a GateReport: json, sarif, junit, github annotations, and a rich table.

Decisions:

* junit: one ``<testsuite>`` per control; one ``<testcase>`` per rule x resource, classname = rule
  id, name = resource; a rule without findings is one passing testcase named after its title.
  deny -> ``<failure>``; warn -> ``<skipped message="warn: ...">`` (visible but not failing, which
  is what a warning means to a CI test view); waived -> a passing testcase whose ``<system-out>``
  records the waiver.
* github: one ``::error``/``::warning`` workflow command per open finding; waived ones are not
  annotated. Without a location the command has no ``file``/``line`` (GitHub shows it on the run).
* sarif: waived findings are results with an ``external`` suppression carrying the justification.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

import orjson

import hcops
from hcops.errors import InvalidInput, Location
from hcops.policy.engines.base import TestResult
from hcops.policy.findings import Finding
from hcops.policy.gate import GateReport
from hcops.policy.metadata import RuleMeta
from hcops.policy.waivers import WaivedFinding

if TYPE_CHECKING:
    from rich.table import Table

FORMATS = ("json", "sarif", "junit", "github")
SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_SARIF_LEVEL = {"deny": "error", "warn": "warning"}
_SECURITY_SEVERITY = {"high": "8.0", "medium": "5.0", "low": "3.0"}


# --------------------------------------------------------------------------------------- json
def _pretty(doc: Any) -> str:
    """Indented JSON (as ``json.dumps(indent=2, ensure_ascii=False)``), fast for thousands of findings."""
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


def to_json(report: GateReport) -> str:
    doc = {
        "passed": report.passed,
        "summary": report.summary.to_dict(),
        "findings": [f.to_dict() for f in report.findings],
        "waived": [w.to_dict() for w in report.waived],
        "engine": report.engine,
        **({"pack": report.pack.to_dict()} if report.pack else {}),
    }
    return _pretty(doc)


# --------------------------------------------------------------------------------------- sarif
def _uri(file: str, cwd: Path | None = None) -> str:
    path = Path(file)
    base = (cwd or Path.cwd()).resolve()
    if path.is_absolute():
        try:
            path = path.resolve().relative_to(base)
        except ValueError:
            return path.resolve().as_uri()
    return quote(PurePosixPath(*path.parts).as_posix(), safe="/-._~")


def _rule_name(meta: RuleMeta) -> str:
    words = re.findall(r"[A-Za-z0-9]+", meta.title) or re.findall(r"[A-Za-z0-9]+", meta.id)
    return "".join(w[:1].upper() + w[1:] for w in words)


def _sarif_rule(meta: RuleMeta) -> dict[str, Any]:
    return {
        "id": meta.id,
        "name": _rule_name(meta),
        "shortDescription": {"text": meta.title or meta.id},
        "fullDescription": {"text": meta.description or meta.title or meta.id},
        "help": {"text": meta.remediation or "No remediation recorded."},
        "defaultConfiguration": {"level": _SARIF_LEVEL[meta.level]},
        "properties": {
            "control": meta.control,
            "hipaa": list(meta.hipaa),
            "severity": meta.severity,
            "security-severity": _SECURITY_SEVERITY.get(meta.severity, "8.0"),
            "tags": ["security", "hipaa", meta.control],
            "package": meta.package,
        },
    }


def _unknown_rule(f: Finding) -> RuleMeta:
    return RuleMeta(id=f.id, title=f.id, description=f"Rule {f.id} has no METADATA.", hipaa=(),
                    control=f.control, severity=f.severity, remediation="", package=f.package,
                    rule=f.level, file="", line=0)


def _sarif_result(f: Finding, index: int, cwd: Path | None) -> dict[str, Any]:
    location: dict[str, Any] = {}
    if f.location is not None:
        location["physicalLocation"] = {
            "artifactLocation": {"uri": _uri(f.location.file, cwd)},
            "region": {"startLine": max(1, f.location.line), "startColumn": max(1, f.location.column)},
        }
    if f.resource:
        location["logicalLocations"] = [{"fullyQualifiedName": f.resource, "kind": "resource"}]
    fingerprint = hashlib.sha256(f"{f.id}\0{f.resource}\0{f.path or ''}".encode()).hexdigest()
    result: dict[str, Any] = {
        "ruleId": f.id,
        "ruleIndex": index,
        "level": _SARIF_LEVEL[f.level],
        "message": {"text": f.message or f.id},
        "partialFingerprints": {"hcopsFinding/v1": fingerprint},
        "properties": {
            "severity": f.severity,
            "control": f.control,
            "hipaa": list(f.hipaa),
            "resource": f.resource,
            **({"specPath": f.path} if f.path else {}),
        },
    }
    if location:
        result["locations"] = [location]
    return result


def to_sarif(report: GateReport, *, cwd: Path | None = None) -> str:
    rules: dict[str, RuleMeta] = {r.id: r for r in report.rules}
    for f in [*report.findings, *(w.finding for w in report.waived)]:
        rules.setdefault(f.id, _unknown_rule(f))
    ordered = sorted(rules)
    index = {rid: i for i, rid in enumerate(ordered)}
    results = [_sarif_result(f, index[f.id], cwd) for f in report.findings]
    for w in report.waived:
        r = _sarif_result(w.finding, index[w.finding.id], cwd)
        r["suppressions"] = [{
            "kind": "external",
            "status": "accepted",
            "justification": w.waiver.justification,
            "properties": {"approver": w.waiver.approver,
                           "expires": w.waiver.expires.isoformat() if w.waiver.expires else None},
        }]
        results.append(r)
    doc = {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "hcops",
                "semanticVersion": hcops.__version__,
                "version": hcops.__version__,
                "rules": [_sarif_rule(rules[rid]) for rid in ordered],
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
            "properties": {
                "passed": report.passed,
                "summary": report.summary.to_dict(),
                "engine": report.engine,
                **({"environment": report.environment} if report.environment else {}),
                **({"pack": report.pack.to_dict()} if report.pack else {}),
            },
        }],
    }
    return _pretty(doc)


# --------------------------------------------------------------------------------------- junit
def _where(loc: Location | None) -> str:
    return f"{loc.file}:{loc.line}" if loc else "unknown location"


def _xml(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def to_junit(report: GateReport) -> str:
    by_rule: dict[str, list[tuple[str, Finding | WaivedFinding]]] = {}
    for f in report.findings:
        by_rule.setdefault(f.id, []).append(("open", f))
    for w in report.waived:
        by_rule.setdefault(w.finding.id, []).append(("waived", w))
    metas = {r.id: r for r in report.rules}
    controls: dict[str, list[ET.Element]] = {}
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for rid in sorted(set(metas) | set(by_rule)):
        meta = metas.get(rid)
        entries = by_rule.get(rid, [])
        control = meta.control if meta else next(
            (e.control if isinstance(e, Finding) else e.finding.control for _, e in entries), "unknown")
        cases = controls.setdefault(control, [])
        if not entries:
            cases.append(ET.Element("testcase", classname=rid, name=(meta.title if meta else rid) or rid,
                                    time="0"))
            continue
        for kind, entry in sorted(entries, key=lambda e: (e[1] if isinstance(e[1], Finding)
                                                           else e[1].finding).sort_key()):
            f = entry if isinstance(entry, Finding) else entry.finding
            case = ET.Element("testcase", classname=rid, name=f.resource or f.id, time="0")
            if kind == "waived":
                assert isinstance(entry, WaivedFinding)
                waiver = entry.waiver
                out = ET.SubElement(case, "system-out")
                expires = waiver.expires.isoformat() if waiver.expires else "?"
                out.text = (f"waived: {waiver.justification} (approver {waiver.approver}, expires "
                            f"{expires})\n{f.message}")
            elif f.level == "deny":
                fail = ET.SubElement(case, "failure", message=f.message, type=f"deny/{f.severity}")
                fail.text = (f"{f.message}\nresource: {f.resource}\ncontrol: {f.control} "
                             f"({', '.join(f.hipaa)})\nlocation: {_where(f.location)}\n"
                             f"remediation: {f.remediation}")
            else:
                ET.SubElement(case, "skipped", message=f"warn: {f.message}")
            cases.append(case)
    root = ET.Element("testsuites", name="hcops policy gate")
    for control in sorted(controls):
        cases = controls[control]
        failures = sum(1 for c in cases if c.find("failure") is not None)
        skipped = sum(1 for c in cases if c.find("skipped") is not None)
        suite = ET.SubElement(root, "testsuite", name=control, tests=str(len(cases)),
                              failures=str(failures), errors="0", skipped=str(skipped), time="0")
        suite.extend(cases)
        totals["tests"] += len(cases)
        totals["failures"] += failures
        totals["skipped"] += skipped
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", "0")
    root.set("skipped", str(totals["skipped"]))
    return _xml(root)


def policy_tests_junit(results: Sequence[TestResult]) -> str:
    """JUnit XML for ``hcops policy test``: one testsuite per package."""
    root = ET.Element("testsuites", name="hcops policy tests")
    by_pkg: dict[str, list[TestResult]] = {}
    for r in results:
        by_pkg.setdefault(r.package, []).append(r)
    for pkg in sorted(by_pkg):
        rs = by_pkg[pkg]
        suite = ET.SubElement(root, "testsuite", name=pkg, tests=str(len(rs)),
                              failures=str(sum(r.status == "fail" for r in rs)),
                              errors=str(sum(r.status == "error" for r in rs)),
                              skipped=str(sum(r.status == "skip" for r in rs)),
                              time=f"{sum(r.duration_s for r in rs):.6f}")
        for r in rs:
            case = ET.SubElement(suite, "testcase", classname=pkg, name=r.name, file=r.file, line=str(r.line),
                                 time=f"{r.duration_s:.6f}")
            if r.status == "fail":
                ET.SubElement(case, "failure", message=r.message or "failed").text = f"{r.file}:{r.line}"
            elif r.status == "error":
                ET.SubElement(case, "error", message=r.message or "error").text = f"{r.file}:{r.line}"
            elif r.status == "skip":
                ET.SubElement(case, "skipped", message=r.message or "skipped")
    return _xml(root)


# --------------------------------------------------------------------------------------- github
def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def _relative(file: str, cwd: Path | None) -> str:
    path = Path(file)
    if path.is_absolute():
        try:
            return path.resolve().relative_to((cwd or Path.cwd()).resolve()).as_posix()
        except ValueError:
            return path.as_posix()
    return path.as_posix()


def to_github(report: GateReport, *, cwd: Path | None = None) -> str:
    lines: list[str] = []
    for f in report.findings:
        command = "error" if f.level == "deny" else "warning"
        props: list[str] = []
        if f.location is not None:
            props += [f"file={escape_property(_relative(f.location.file, cwd))}",
                      f"line={f.location.line}", f"col={f.location.column}"]
        props.append(f"title={escape_property(f.id)}")
        lines.append(f"::{command} {','.join(props)}::{escape_data(f.message)}")
    return "".join(line + "\n" for line in lines)


# --------------------------------------------------------------------------------------- table
_STYLE = {"deny": "bold red", "warn": "yellow", "waived": "dim"}


def _loc_text(loc: Location | None) -> str:
    return f"{loc.file}:{loc.line}" if loc else ""


def findings_table(report: GateReport, *, show_waived: bool = True) -> Table:
    """The human view: one row per finding (waived ones dimmed at the end)."""
    from rich.table import Table
    from rich.text import Text

    verdict = "PASSED" if report.passed else "FAILED"
    s = report.summary
    table = Table(
        title=f"hcops policy gate: {verdict}",
        caption=f"{s.deny} deny, {s.warn} warn, {s.waived} waived" + (" (strict)" if report.strict else ""),
        expand=False,
    )
    for col in ("Level", "Severity", "Rule", "Control", "Resource", "Message", "Location"):
        table.add_column(col, overflow="fold")
    rows: list[tuple[str, Finding]] = [(f.level, f) for f in report.findings]
    if show_waived:
        rows += [("waived", w.finding) for w in report.waived]
    for level, f in rows:
        table.add_row(Text(level, style=_STYLE[level]), f.severity, f.id, f.control, f.resource, f.message,
                      _loc_text(f.location), style="dim" if level == "waived" else None)
    return table


def rules_table(rules: Iterable[RuleMeta]) -> Table:
    """``hcops policy list``."""
    from rich.table import Table

    table = Table(title="hcops policy rules")
    for col in ("Rule", "Level", "Severity", "Control", "HIPAA", "Title"):
        table.add_column(col, overflow="fold")
    for r in rules:
        table.add_row(r.id, r.level, r.severity, r.control, ", ".join(r.hipaa), r.title)
    return table


def policy_tests_table(results: Sequence[TestResult]) -> Table:
    """``hcops policy test``."""
    from rich.table import Table
    from rich.text import Text

    passed = sum(r.status == "pass" for r in results)
    table = Table(title="hcops policy tests",
                  caption=f"{passed} passed, {sum(r.status == 'fail' for r in results)} failed, "
                          f"{sum(r.status == 'error' for r in results)} errors, "
                          f"{sum(r.status == 'skip' for r in results)} skipped")
    for col in ("Status", "Test", "Location", "Message"):
        table.add_column(col, overflow="fold")
    style = {"pass": "green", "fail": "bold red", "error": "bold red", "skip": "yellow"}
    for r in results:
        table.add_row(Text(r.status.upper(), style=style[r.status]), f"{r.package}.{r.name}",
                      f"{r.file}:{r.line}", r.message)
    return table


def render(report: GateReport, fmt: str, *, cwd: Path | None = None) -> str:
    """``fmt`` is one of FORMATS; the table format is built with :func:`findings_table`."""
    if fmt == "json":
        return to_json(report)
    if fmt == "sarif":
        return to_sarif(report, cwd=cwd)
    if fmt == "junit":
        return to_junit(report)
    if fmt == "github":
        return to_github(report, cwd=cwd)
    raise InvalidInput(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)} or table")


__all__ = [
    "FORMATS",
    "escape_data",
    "escape_property",
    "findings_table",
    "render",
    "rules_table",
    "policy_tests_table",
    "policy_tests_junit",
    "to_github",
    "to_json",
    "to_sarif",
    "to_junit",
]
