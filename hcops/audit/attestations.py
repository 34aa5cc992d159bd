"""Attestations: what no spec field and no running node can show (procedures, signed paperwork, retention),
each stated by a named person, signed off on a date and valid until it expires.

File format (``attestations.yaml`` next to the spec, or ``--attestations FILE``)::

    attestations:
      - control: AC-3                    # a control id of the catalogue (hcops/audit/catalogue.yaml)
        statement: The break-glass procedure is documented and was exercised this year.
        attestedBy: "Security officer, St Mary"
        attestedOn: 2026-01-31
        expires: 2027-01-31
        evidence: "https://wiki.example.org/break-glass"   # optional: a document reference or URL

Validated like the spec (pydantic models, every problem at FILE:LINE:COL). An attestation in effect
(signed off on or before today, not past its expiry) makes the *attestable* parts of its control
``attested`` in the report; an expired one is a finding (HC-RT-ATTESTATION-EXPIRED) on its control.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from hcops.audit import catalogue
from hcops.errors import Diagnostic, InvalidInput, Location
from hcops.policy.findings import Finding
from hcops.policy.sources import display_path, read_yaml_file
from hcops.spec.diagnostics import from_validation_error, quote
from hcops.spec.models import camel
from hcops.spec.source import SourceMap
from hcops.spec.types import Text

FILE_NAME = "attestations.yaml"
ATTESTATION_EXPIRED = "HC-RT-ATTESTATION-EXPIRED"
_REVIEW = ("164.316(b)(2)(iii)",)  # documentation: review periodically and update


def _control_id(value: str) -> str:
    known = catalogue.ids()
    if value not in known:
        close = difflib.get_close_matches(value, known, n=1, cutoff=0.5)
        hint = f'; did you mean "{close[0]}"?' if close else f"; expected one of: {', '.join(known)}"
        raise PydanticCustomError("control", "unknown control {got}" + hint, {"got": quote(value)})
    return value


def _one_line(value: Any) -> Any:
    """A folded or literal block reads as one paragraph: line breaks become spaces (then Text checks it)."""
    return re.sub(r"[ \t]*[\r\n]+[ \t]*", " ", value).strip() if isinstance(value, str) else value


def _date(value: Any) -> Any:
    """A YAML date or an ISO date string only: pydantic would read a bare number as a Unix time."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise PydanticCustomError("date_type", "expected a date (YYYY-MM-DD), got {got}",
                              {"got": quote(value) if isinstance(value, str) else repr(value)})


Date = Annotated[dt.date, BeforeValidator(_date)]
ControlId = Annotated[str, AfterValidator(_control_id)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=camel)


class Attestation(_Model):
    control: ControlId
    statement: Annotated[str, BeforeValidator(_one_line), Text(10, 2000)]
    attested_by: Annotated[str, Text(3, 200)]
    attested_on: Date
    expires: Date
    evidence: Annotated[str, Text(3, 500)] | None = None

    @model_validator(mode="after")
    def _expires_after_sign_off(self) -> Attestation:
        if self.expires < self.attested_on:
            raise PydanticCustomError("expires_before", "expires ({expires}) is before attestedOn ({on})",
                                      {"expires": self.expires.isoformat(), "on": self.attested_on.isoformat()})
        return self


class AttestationsFile(_Model):
    api_version: Literal["hcops/v1alpha1"] | None = None
    kind: Literal["Attestations"] | None = None
    attestations: tuple[Attestation, ...] | None = ()


@dataclass(frozen=True)
class Attested:
    """One entry of the file with its place in it."""

    index: int
    attestation: Attestation
    location: Location | None = None

    def status(self, today: dt.date) -> str:
        a = self.attestation
        if a.expires < today:
            return "expired"
        return "pending" if a.attested_on > today else "active"  # signed off in the future: not yet

    def to_dict(self, today: dt.date) -> dict[str, Any]:
        a = self.attestation
        return {"index": self.index, "control": a.control, "statement": a.statement, "attestedBy": a.attested_by,
                "attestedOn": a.attested_on.isoformat(), "expires": a.expires.isoformat(),
                "evidence": a.evidence, "status": self.status(today),
                "location": str(self.location) if self.location else None}


@dataclass(frozen=True)
class Attestations:
    path: Path | None
    entries: tuple[Attested, ...] = ()

    def active(self, today: dt.date) -> frozenset[str]:
        """Controls with at least one attestation in effect on ``today``."""
        return frozenset(e.attestation.control for e in self.entries if e.status(today) == "active")

    def of(self, control: str) -> list[Attested]:
        return [e for e in self.entries if e.attestation.control == control]

    def findings(self, today: dt.date) -> list[Finding]:
        """One finding per expired attestation, on the control it attested (the evidence it gave is gone)."""
        out = []
        for e in self.entries:
            if e.status(today) != "expired":
                continue
            a = e.attestation
            c = catalogue.control(a.control)
            out.append(Finding(
                id=ATTESTATION_EXPIRED, level="deny", severity="medium", control=a.control,
                hipaa=(*(c.citation.split(", ")[:1] if c else ()), *_REVIEW), resource=f"attestation/{e.index}",
                message=f"the attestation of {a.control} by {a.attested_by} expired on {a.expires.isoformat()}: "
                        f"{a.control} is no longer attested",
                remediation="Review the control again and renew the attestation (new attestedOn and expires), "
                            "or remove it.",
                path=f"attestations[{e.index}]", location=e.location, title="Attestation expired",
                package="hcops.attestations"))
        return out

    def facts(self, today: dt.date) -> dict[str, Any]:
        """The fact document's ``attestations`` section: control ids only, never the statements."""
        return {"active": sorted(self.active(today)),
                "expired": sorted({e.attestation.control for e in self.entries if e.status(today) == "expired"})}


def default_path(spec_file: Path) -> Path | None:
    """``attestations.yaml`` next to the spec, when there is one."""
    candidate = spec_file.parent / FILE_NAME
    return candidate if candidate.is_file() else None


def load(path: Path | None) -> Attestations:
    """Read and validate an attestations file; every problem is an InvalidInput diagnostic at FILE:LINE:COL."""
    if path is None:
        return Attestations(None)
    name = display_path(Path(path))
    doc, positions = read_yaml_file(Path(path), "attestations file")
    if doc is None:
        return Attestations(Path(path))
    if not isinstance(doc, dict):
        raise InvalidInput("malformed attestations file", [Diagnostic(
            "expected a mapping with `attestations:` (a list of entries)", location=Location(name, 1))])
    try:
        parsed = AttestationsFile.model_validate(doc)
    except ValidationError as exc:
        diags = from_validation_error(exc, AttestationsFile, positions)
        raise InvalidInput(f"{len(diags)} error(s) in {name}", diags) from None
    return Attestations(Path(path), _located(parsed.attestations or (), positions))


def _located(entries: Sequence[Attestation], positions: SourceMap) -> tuple[Attested, ...]:
    return tuple(Attested(i, a, positions.locate(("attestations", i))) for i, a in enumerate(entries))
