"""The boundary: a spec file (plus an environment overlay) becomes a validated ``Consortium``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from hcops.errors import Diagnostic, InvalidInput, Location
from hcops.spec import rules
from hcops.spec.diagnostics import escape_text, from_validation_error
from hcops.spec.models import Consortium, Tier, effective_tier
from hcops.spec.overlay import apply_overlay, check_environment_name, load_overlay
from hcops.spec.paths import parse_path
from hcops.spec.source import SourceDoc, SourceMap, load_yaml


@dataclass(frozen=True)
class LoadedSpec:
    """A validated consortium and where each of its values was written."""

    consortium: Consortium
    sources: SourceMap
    spec_file: Path
    environment: str | None
    files: tuple[Path, ...]
    warnings: tuple[Diagnostic, ...] = ()

    @property
    def tier(self) -> Tier | None:
        """``spec.tier``, else the tier the environment's name implies; None: unspecified."""
        return effective_tier(self.consortium.spec.tier, self.environment)

    def locate(self, path: str) -> Location | None:
        return self.sources.locate(parse_path(path))


def load_document(spec_file: Path, environment: str | None = None) -> tuple[SourceDoc, tuple[Path, ...]]:
    if environment is not None:
        check_environment_name(spec_file, environment)  # "" included: it would silently mean no overlay
    doc = load_yaml(spec_file)
    files: tuple[Path, ...] = (spec_file,)
    if environment:
        overlay = load_overlay(spec_file, environment)
        doc = apply_overlay(doc, overlay)
        files += (overlay.path,)
    return doc, files


def _printable(d: Diagnostic) -> Diagnostic:
    location = d.location and dataclasses.replace(d.location, file=escape_text(d.location.file))
    return dataclasses.replace(d, message=escape_text(d.message), path=escape_text(d.path), location=location)


def load_spec(spec_file: Path, environment: str | None = None) -> LoadedSpec:
    """Load, merge, validate. Raises ``InvalidInput`` carrying every problem found, never only the first.

    Whatever it reports is printable: file names and values that carry control or bidi characters come out
    escaped, so a hostile spec cannot rewrite the terminal that shows its errors."""
    try:
        loaded = _load(spec_file, environment)
    except InvalidInput as exc:
        raise InvalidInput(escape_text(exc.message), [_printable(d) for d in exc.diagnostics],
                           hint=exc.hint and escape_text(exc.hint)) from None
    return dataclasses.replace(loaded, warnings=tuple(_printable(d) for d in loaded.warnings))


def _load(spec_file: Path, environment: str | None) -> LoadedSpec:
    doc, files = load_document(spec_file, environment)
    try:
        consortium = Consortium.model_validate(doc.data)
    except ValidationError as exc:
        diags = from_validation_error(exc, Consortium, doc.sources)
        raise InvalidInput(f"{len(diags)} error(s) in {spec_file}", diags) from None
    found = rules.check(consortium, doc.sources, environment)
    errors = [d for d in found if d.severity == "error"]
    if errors:
        raise InvalidInput(f"{len(errors)} error(s) in {spec_file}", found)
    return LoadedSpec(consortium, doc.sources, spec_file, environment, files,
                      tuple(d for d in found if d.severity != "error"))
