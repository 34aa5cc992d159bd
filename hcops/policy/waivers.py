"""Waivers: accepted risks recorded in YAML, each with a justification, an approver and an expiry.

File format (a bare list is accepted too)::

    waivers:
      - id: HC-AC1-RPC-PUBLIC          # the rule id, exactly
        resource: "network/*"          # fnmatch glob over the finding's resource
        justification: De-identified research feed, approved by the privacy board
        approver: privacy-officer@example.org
        expires: 2026-06-30            # last day the waiver applies
        environments: [staging]        # optional: only in these --env environments

A waiver that matches moves the finding to ``waived``. HIPAA risk management (164.308(a)(1)(ii)(B))
needs every accepted risk documented and reviewed, so an expired waiver, or one missing its
justification, approver or expiry, is itself a deny finding, and a waiver matching nothing is a warn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from hcops import clock
from hcops.errors import Diagnostic, InvalidInput, Location
from hcops.policy.findings import Finding, Level
from hcops.policy.metadata import RuleMeta
from hcops.policy.sources import display_path, read_yaml_file
from hcops.spec.diagnostics import from_validation_error
from hcops.spec.paths import PathKey

WAIVER_INVALID = "HC-RA1-WAIVER-INVALID"
WAIVER_EXPIRED = "HC-RA1-WAIVER-EXPIRED"
WAIVER_UNUSED = "HC-RA1-WAIVER-UNUSED"
_CITATION = ("164.308(a)(1)(ii)(B)",)
_TEXT = ("id", "resource", "justification", "approver")


def _rule(rid: str, rule: str, severity: str, title: str, description: str, remediation: str) -> RuleMeta:
    return RuleMeta(id=rid, title=title, description=description, hipaa=_CITATION, control="RA-1",
                    severity=severity, remediation=remediation, package="hcops.waivers", rule=rule,
                    file="<hcops>", line=0)


WAIVER_RULES: tuple[RuleMeta, ...] = (
    _rule(WAIVER_INVALID, "deny", "high", "Waiver incomplete",
          "A waiver must name the rule id and resource it covers and record a justification, an "
          "approver and an expiry date; an incomplete waiver documents no accepted risk and is not "
          "applied.",
          "Complete the waiver entry (id, resource, justification, approver, expires) or remove it."),
    _rule(WAIVER_EXPIRED, "deny", "high", "Waiver expired",
          "An accepted risk must be reviewed periodically; a waiver past its expiry date is not applied "
          "and must be renewed after a fresh review, or removed.",
          "Review the risk again: renew the waiver with a new expiry and approver, or fix the finding "
          "and remove the waiver."),
    _rule(WAIVER_UNUSED, "warn", "low", "Waiver matches no finding",
          "A waiver that matches no finding is stale documentation of a risk that no longer exists "
          "(or a typo in its id or resource).",
          "Remove the waiver, or correct its id or resource pattern."),
)


@dataclass(frozen=True)
class Waiver:
    index: int
    id: str
    resource: str
    justification: str
    approver: str
    expires: dt.date | None
    environments: tuple[str, ...] = ()
    location: Location | None = None
    problems: tuple[str, ...] = ()  # why the entry is incomplete; empty when valid

    @property
    def valid(self) -> bool:
        return not self.problems

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires < today

    def applies_in(self, environment: str | None) -> bool:
        return not self.environments or (environment is not None and environment in self.environments)

    def matches(self, finding: Finding) -> bool:
        return finding.id == self.id and fnmatchcase(finding.resource, self.resource)

    def describe(self) -> str:
        return f"waiver #{self.index} ({self.id or '?'} on {self.resource or '?'})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "justification": self.justification,
            "approver": self.approver,
            "expires": self.expires.isoformat() if self.expires else None,
        }


@dataclass(frozen=True)
class WaivedFinding:
    finding: Finding
    waiver: Waiver

    def to_dict(self) -> dict[str, Any]:
        return {**self.finding.to_dict(), "waiver": self.waiver.to_dict()}


class _Entry(BaseModel):
    """One waiver as written; an entry that does not validate is kept, with its problems, as a deny."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: Annotated[str, StringConstraints(min_length=1)]
    resource: Annotated[str, StringConstraints(min_length=1)]
    justification: Annotated[str, StringConstraints(min_length=1)]
    approver: Annotated[str, StringConstraints(min_length=1)]
    expires: dt.date
    environments: tuple[str, ...] = ()

    @field_validator("expires", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        return value.date() if isinstance(value, dt.datetime) else value

    @field_validator("environments", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else (value or [])


class _File(BaseModel):
    """The file's outer shape: ``waivers:`` (with optional apiVersion/kind) or a bare list."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    api_version: Any = Field(default=None, alias="apiVersion")
    kind: Any = None
    waivers: list[Any] | None = None


def _problem(err: Any) -> str:
    field = str(err["loc"][0]) if err["loc"] else "entry"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"unknown field {field!r}"
    if kind == "missing":
        return f"{field} is missing"
    if field == "expires":
        return "expires must be a date (YYYY-MM-DD)"
    if field == "environments":
        return "environments must be a list of environment names"
    return f"{field} must be a non-empty string"


def _entry(entry: dict[str, Any]) -> tuple[_Entry | None, tuple[str, ...]]:
    """The validated entry, or why it is incomplete (in the file's field order)."""
    try:
        return _Entry.model_validate(entry), ()
    except ValidationError as exc:
        return None, tuple(dict.fromkeys(_problem(e) for e in exc.errors(include_url=False)))


def load_waivers(path: Path) -> list[Waiver]:
    """Read a waivers file. Malformed YAML or a wrong structure is InvalidInput (file:line:col);
    incomplete entries are returned with their ``problems`` (they become deny findings)."""
    name = display_path(Path(path))
    doc, positions = read_yaml_file(Path(path), "waivers file")
    if doc is None:
        return []
    top: PathKey = ()
    entries: Any = doc
    if isinstance(doc, dict):
        try:
            entries = _File.model_validate(doc).waivers or []
        except ValidationError as exc:
            raise InvalidInput("malformed waivers file", from_validation_error(exc, _File, positions)) from None
        top = ("waivers",)
    if not isinstance(entries, list):
        raise InvalidInput("malformed waivers file",
                           [Diagnostic("`waivers` must be a list of entries", location=Location(name, 1))])
    waivers: list[Waiver] = []
    diags: list[Diagnostic] = []
    for i, entry in enumerate(entries):
        where = positions.values.get((*top, i)) or Location(name, 1)
        if not isinstance(entry, dict):
            diags.append(Diagnostic("a waiver must be a mapping", path=f"waivers[{i}]", location=where))
            continue
        model, problems = _entry(entry)
        raw = {k: (v.strip() if isinstance(v, str) else "") for k, v in entry.items() if k in _TEXT}
        waivers.append(Waiver(
            index=i,
            id=model.id if model else raw.get("id", ""),
            resource=model.resource if model else raw.get("resource", ""),
            justification=model.justification if model else raw.get("justification", ""),
            approver=model.approver if model else raw.get("approver", ""),
            expires=model.expires if model else None,
            environments=model.environments if model else (),
            location=where,
            problems=problems,
        ))
    if diags:
        raise InvalidInput("malformed waivers file", diags)
    return waivers


def _waiver_finding(rid: str, level: Level, w: Waiver, message: str) -> Finding:
    meta = next(r for r in WAIVER_RULES if r.id == rid)
    return Finding(
        id=rid,
        level=level,
        severity=meta.severity,
        control=meta.control,
        hipaa=meta.hipaa,
        resource=f"waiver/{w.index}",
        message=message,
        remediation=meta.remediation,
        path=f"waivers[{w.index}]",
        location=w.location,
        title=meta.title,
        package=meta.package,
    )


@dataclass(frozen=True)
class WaiverOutcome:
    findings: tuple[Finding, ...]  # still open, plus the waivers' own findings
    waived: tuple[WaivedFinding, ...]


def apply_waivers(
    findings: Sequence[Finding],
    waivers: Sequence[Waiver],
    *,
    today: dt.date | None = None,
    environment: str | None = None,
) -> WaiverOutcome:
    today = today or clock.today()
    usable = [w for w in waivers if w.valid and not w.expired(today) and w.applies_in(environment)]
    used: set[int] = set()
    kept: list[Finding] = []
    waived: list[WaivedFinding] = []
    for f in findings:
        w = next((w for w in usable if w.matches(f)), None)
        if w is None:
            kept.append(f)
        else:
            used.add(w.index)
            waived.append(WaivedFinding(f, w))
    for w in waivers:
        if not w.valid:
            kept.append(_waiver_finding(WAIVER_INVALID, "deny", w,
                                        f"{w.describe()} is not applied: {'; '.join(w.problems)}"))
        elif w.expired(today):
            assert w.expires is not None
            kept.append(_waiver_finding(
                WAIVER_EXPIRED, "deny", w,
                f"{w.describe()} expired on {w.expires.isoformat()} and is not applied"))
        elif w.applies_in(environment) and w.index not in used:
            kept.append(_waiver_finding(WAIVER_UNUSED, "warn", w, f"{w.describe()} matches no finding"))
    return WaiverOutcome(tuple(kept), tuple(waived))
