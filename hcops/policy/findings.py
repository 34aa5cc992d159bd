"""Findings: raw deny/warn values joined with rule metadata and located in the spec."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hcops.errors import Location
from hcops.policy.engines.base import EngineResult, canonical
from hcops.policy.metadata import RuleMeta

Level = Literal["deny", "warn"]
Locate = Callable[[str], Location | None]

UNKNOWN_SEVERITY = "high"
UNKNOWN_CONTROL = "unknown"
_LEVEL_ORDER = {"deny": 0, "warn": 1}
_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class Finding:
    id: str
    level: Level
    severity: str
    control: str
    hipaa: tuple[str, ...]
    resource: str
    message: str
    remediation: str
    path: str | None = None
    location: Location | None = None
    title: str = ""
    package: str = ""

    def sort_key(self) -> tuple[Any, ...]:
        return (
            _LEVEL_ORDER.get(self.level, 9),
            _SEVERITY_ORDER.get(self.severity, 9),
            self.id,
            self.resource,
            self.path or "",
            self.message,
        )

    def to_dict(self) -> dict[str, Any]:
        """The finding as it appears in ``--format json``."""
        return {
            "id": self.id,
            "severity": self.severity,
            "level": self.level,
            "control": self.control,
            "hipaa": list(self.hipaa),
            "resource": self.resource,
            "message": self.message,
            "remediation": self.remediation,
            "location": (
                {"file": self.location.file, "line": self.location.line} if self.location else None
            ),
        }


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=Finding.sort_key)


_LAST_SEGMENT = re.compile(r"(\[[^\[\]]*\]|\.[^.\[\]]+)$")


def parent_path(path: str) -> str:
    """``spec.a[1].b`` -> ``spec.a[1]`` -> ``spec.a`` -> ``spec`` -> ``""``."""
    m = _LAST_SEGMENT.search(path)
    return path[: m.start()] if m else ""


def locate_path(locate: Locate, path: str | None) -> Location | None:
    """The location of ``path``, else of its longest prefix that locates."""
    p = (path or "").strip()
    while p:
        loc = locate(p)
        if loc is not None:
            return loc
        p = parent_path(p)
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else canonical(value)


def make_finding(
    package: str, level: Level, raw: Any, rules: Mapping[str, RuleMeta], locate: Locate
) -> Finding:
    """Join one raw deny/warn value with its rule's metadata. Nothing is ever dropped: a value that
    is not a finding object, or whose id has no metadata, is still reported (severity high, control
    unknown)."""
    if isinstance(raw, Mapping):
        rid = raw.get("id")
        rid = rid if isinstance(rid, str) and rid.strip() else f"{package}.{level}"
        message = _text(raw.get("msg", raw.get("message", "")))
        if not message:
            message = canonical(dict(raw))
        resource = _text(raw.get("resource", "")) if raw.get("resource") is not None else ""
        path_value = raw.get("path")
        path = path_value if isinstance(path_value, str) and path_value else None
    else:
        rid, message, resource, path = f"{package}.{level}", _text(raw), "", None
    meta = rules.get(rid)
    return Finding(
        id=rid,
        level=level,
        severity=meta.severity if meta else UNKNOWN_SEVERITY,
        control=meta.control if meta else UNKNOWN_CONTROL,
        hipaa=meta.hipaa if meta else (),
        resource=resource,
        message=message,
        remediation=meta.remediation if meta else "",
        path=path,
        location=locate_path(locate, path),
        title=meta.title if meta else "",
        package=package,
    )


def build_findings(result: EngineResult, rules: Mapping[str, RuleMeta], locate: Locate) -> list[Finding]:
    """Every raw finding of an evaluation as a Finding, deduplicated, sorted."""
    seen: set[tuple[Any, ...]] = set()
    out: list[Finding] = []
    for package, level, raw in result.raw():
        f = make_finding(package, level, raw, rules, locate)
        key = (f.level, f.id, f.resource, f.path, f.message)
        if key in seen:
            continue
        seen.add(key)
        out.append(f)
    return sort_findings(out)
