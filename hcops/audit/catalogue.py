"""The vendored HIPAA control catalogue (``catalogue.yaml``): one compliance report row per control."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from hcops.spec.source import parse_yaml


@dataclass(frozen=True)
class Control:
    id: str
    citation: str
    implementation: str  # R | A | ""
    title: str
    gate: str
    runtime: str

    @property
    def citation_label(self) -> str:
        suffix = f" {self.implementation}" if self.implementation else ""
        return f"45 CFR {self.citation}{suffix}"


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
        )
        for c in doc["controls"]
    )


def control(cid: str) -> Control | None:
    return next((c for c in controls() if c.id == cid), None)


def ids() -> tuple[str, ...]:
    return tuple(c.id for c in controls())
