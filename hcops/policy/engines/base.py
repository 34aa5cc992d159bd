"""The engine contract and what both engines share.

Which packages are evaluated: every package, in the modules handed to the engine, that defines a
rule named ``deny`` or ``warn`` (built-in packages live under ``data.hcops``; user packages may be
named freely). Modules named ``*_test.rego`` are never part of an evaluation.

Both engines evaluate the same generated entry module, so that one query answers for every package
at once and both engines are asked exactly the same question::

    package hcops_engine_entry
    result := {
      "hcops.hipaa.audit": {"deny": [x | x := data.hcops.hipaa.audit.deny],
                            "warn": [x | x := data.hcops.hipaa.audit.warn]},
      ...
    }

The comprehension turns an undefined rule into ``[]`` instead of making the whole result undefined.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from hcops.errors import Diagnostic, InvalidInput, Location
from hcops.policy.regosrc import ModuleInfo, rego_ref, scan

ENTRY_PACKAGE = "hcops_engine_entry"
ENTRY_RULE = "result"
ENTRY_FILENAME = "__hcops_engine_entry__.rego"
LEVELS: tuple[Literal["deny", "warn"], ...] = ("deny", "warn")

TestStatus = Literal["pass", "fail", "error", "skip"]


def canonical(value: Any) -> str:
    """A stable text form of a JSON value (for sorting and comparing findings)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class PackageResult:
    package: str
    deny: tuple[Any, ...] = ()
    warn: tuple[Any, ...] = ()


@dataclass(frozen=True)
class EngineResult:
    """Raw deny/warn values per evaluated package, each list sorted canonically."""

    engine: str
    packages: tuple[PackageResult, ...] = ()

    def raw(self) -> list[tuple[str, Literal["deny", "warn"], Any]]:
        """``(package, level, value)`` for every raw finding."""
        out: list[tuple[str, Literal["deny", "warn"], Any]] = []
        for p in self.packages:
            out.extend((p.package, "deny", v) for v in p.deny)
            out.extend((p.package, "warn", v) for v in p.warn)
        return out

    def comparable(self) -> dict[str, dict[str, list[str]]]:
        """The result without the engine name, for comparing two engines."""
        return {
            p.package: {"deny": [canonical(v) for v in p.deny], "warn": [canonical(v) for v in p.warn]}
            for p in self.packages
        }


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest test class

    package: str
    name: str
    status: TestStatus
    file: str
    line: int
    message: str = ""
    duration_s: float = 0.0

    @property
    def location(self) -> Location:
        return Location(self.file, self.line)

    @property
    def passed(self) -> bool:
        return self.status in ("pass", "skip")


@runtime_checkable
class Engine(Protocol):
    """Evaluates Rego modules. ``modules`` maps a filename (used in messages) to its source."""

    name: str

    def evaluate(
        self, modules: Mapping[str, str], input: dict[str, Any], data: dict[str, Any]
    ) -> EngineResult: ...

    def run_tests(self, modules: Mapping[str, str], data: dict[str, Any]) -> list[TestResult]: ...

    def cancel(self) -> None:
        """Stop an evaluation under way in another thread, where the engine can."""
        ...

    def close(self) -> None:
        """Release what the engine holds (connections, processes)."""
        ...


@dataclass(frozen=True)
class Analysis:
    infos: tuple[ModuleInfo, ...]
    packages: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    # package name -> (package segments, levels defined)


def analyse(modules: Mapping[str, str]) -> Analysis:
    """Scan every module; find the policy packages. A module without a package is InvalidInput."""
    infos: list[ModuleInfo] = []
    diags: list[Diagnostic] = []
    for name in sorted(modules):
        info = scan(name, modules[name])
        if info.package is None:
            diags.append(Diagnostic("no package declaration", location=Location(name, 1)))
        infos.append(info)
    if diags:
        raise InvalidInput("invalid policy module", diags)
    packages: dict[str, tuple[tuple[str, ...], set[str]]] = {}
    for info in infos:
        if info.is_test or info.package is None:
            continue
        levels = {r.name for r in info.rules if r.name in LEVELS and not r.function}
        if levels:
            entry = packages.setdefault(info.package_name, (info.package, set()))
            entry[1].update(levels)
    return Analysis(
        infos=tuple(infos),
        packages={
            k: (segs, tuple(lv for lv in LEVELS if lv in levels))
            for k, (segs, levels) in sorted(packages.items())
        },
    )


def package_values(segs: tuple[str, ...], levels: tuple[str, ...]) -> str:
    """The Rego object of one package's deny/warn values (an undefined rule gives ``[]``)."""
    parts = ", ".join(f'"{lv}": [x | x := {rego_ref(segs)}.{lv}]' for lv in levels)
    return f"{{{parts}}}"


def entry_module(analysis: Analysis) -> str:
    """The generated module whose ``result`` holds every package's deny/warn values."""
    lines = [f"package {ENTRY_PACKAGE}", "", f"{ENTRY_RULE} := {{"]
    for name, (segs, levels) in analysis.packages.items():
        lines.append(f"\t{canonical(name)}: {package_values(segs, levels)},")
    lines.append("}")
    return "\n".join(lines) + "\n"


def parse_entry_result(engine: str, analysis: Analysis, value: Any) -> EngineResult:
    """Turn the entry module's ``result`` into an EngineResult; anything unexpected raises."""
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{engine}: policy evaluation returned no result (got {canonical(value)[:200]})")
    packages: list[PackageResult] = []
    for name in analysis.packages:
        pkg = value.get(name)
        if not isinstance(pkg, Mapping):
            raise InvalidInput(f"{engine}: package {name} returned no result")
        found: dict[str, tuple[Any, ...]] = {"deny": (), "warn": ()}
        for level in LEVELS:
            wrapped = pkg.get(level, [])
            if not isinstance(wrapped, list) or len(wrapped) > 1:
                raise InvalidInput(f"{engine}: unexpected shape for {name}.{level}")
            if not wrapped:
                continue
            values = wrapped[0]
            if not isinstance(values, list):
                raise InvalidInput(
                    f"{name}.{level} must be a set of findings (`{level} contains f if ...`), "
                    f"got {canonical(values)[:200]}"
                )
            found[level] = tuple(sorted(values, key=canonical))
        packages.append(PackageResult(name, found["deny"], found["warn"]))
    return EngineResult(engine=engine, packages=tuple(packages))


@dataclass(frozen=True)
class TestCase:
    __test__ = False  # not a pytest test class

    package: str
    segments: tuple[str, ...]
    name: str
    file: str
    line: int

    @property
    def skipped(self) -> bool:
        return self.name.startswith("todo_test_")


def discover_tests(analysis: Analysis) -> list[TestCase]:
    """``test_*`` (and ``todo_test_*``, reported as skipped) rules of ``*_test.rego`` modules."""
    seen: set[tuple[str, str]] = set()
    cases: list[TestCase] = []
    for info in analysis.infos:
        if not info.is_test or info.package is None:
            continue
        for head in info.rules:
            if head.function or not (head.name.startswith("test_") or head.name.startswith("todo_test_")):
                continue
            key = (info.package_name, head.name)
            if key in seen:
                continue
            seen.add(key)
            cases.append(TestCase(info.package_name, info.package, head.name, info.filename, head.line))
    return cases


QueryTest = Callable[[TestCase], tuple[TestStatus, str]]


def run_test_cases(cases: list[TestCase], query: QueryTest) -> list[TestResult]:
    results: list[TestResult] = []
    for case in cases:
        if case.skipped:
            results.append(TestResult(case.package, case.name, "skip", case.file, case.line, "todo"))
            continue
        start = time.perf_counter()
        status, message = query(case)
        results.append(
            TestResult(case.package, case.name, status, case.file, case.line, message,
                       round(time.perf_counter() - start, 6))
        )
    return results


def verdict_of_test(defined: bool, value: Any) -> tuple[TestStatus, str]:
    if not defined:
        return "fail", "test rule is undefined"
    if value is True:
        return "pass", ""
    return "fail", f"test rule evaluated to {canonical(value)[:200]}"
