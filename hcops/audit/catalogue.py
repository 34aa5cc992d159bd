"""The vendored HIPAA control catalogue (``catalogue.yaml``): one compliance report row per control, and
per control the parts that make up its evidence (which gate rules judge a part, which runtime rules and
sweep probes measure it, whether an attestation may stand in)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from importlib import resources
from typing import Any

from hcops.spec.source import parse_yaml

EVIDENCE_CLASSES = ("verified", "attested", "declared", "none")  # strongest first


@dataclass(frozen=True)
class Part:
    """One thing a control asks for, and how hcops can know it."""

    id: str
    what: str
    gate_rules: tuple[str, ...] = ()  # fnmatch patterns over gate rule ids
    runtime_rules: tuple[str, ...] = ()  # fnmatch patterns over runtime rule ids
    measures: tuple[str, ...] = ()  # evidence records (probes) of the sweep
    attestable: bool = False
    production: tuple[str, ...] = ()  # evidence classes the production tier accepts; () = any

    def judges(self, rule_ids: Iterable[str], patterns: tuple[str, ...]) -> list[str]:
        return sorted(r for r in rule_ids if any(fnmatchcase(r, p) for p in patterns))


@dataclass(frozen=True)
class Control:
    id: str
    citation: str
    implementation: str  # R | A | ""
    title: str
    gate: str
    runtime: str
    parts: tuple[Part, ...] = ()

    @property
    def citation_label(self) -> str:
        suffix = f" {self.implementation}" if self.implementation else ""
        return f"45 CFR {self.citation}{suffix}"


def _part(p: dict[str, Any]) -> Part:
    production = tuple(str(x) for x in p.get("production") or ())
    if not set(production) <= set(EVIDENCE_CLASSES):
        raise ValueError(f"catalogue part {p.get('id')}: unknown evidence class in {production}")
    return Part(
        id=str(p["id"]),
        what=str(p["what"]),
        gate_rules=tuple(str(x) for x in p.get("gateRules") or ()),
        runtime_rules=tuple(str(x) for x in p.get("runtimeRules") or ()),
        measures=tuple(str(x) for x in p.get("measures") or ()),
        attestable=bool(p.get("attestable", False)),
        production=production,
    )


@cache
def controls() -> tuple[Control, ...]:
    text = resources.files("hcops.audit").joinpath("catalogue.yaml").read_text(encoding="utf-8")
    doc: Any = parse_yaml(text, "hcops/audit/catalogue.yaml", what="control catalogue")[0]
    return tuple(
        Control(
            id=str(c["id"]),
            citation=str(c["citation"]),
            implementation=str(c.get("implementation") or ""),
            title=str(c["title"]),
            gate=str(c.get("gate") or ""),
            runtime=str(c.get("runtime") or ""),
            parts=tuple(_part(p) for p in c.get("parts") or ()),
        )
        for c in doc["controls"]
    )


def control(cid: str) -> Control | None:
    return next((c for c in controls() if c.id == cid), None)


def ids() -> tuple[str, ...]:
    return tuple(c.id for c in controls())
