"""The boundary: a spec file (plus an environment overlay) becomes a validated ``Consortium``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from hcops.errors import Diagnostic, InvalidInput, Location
from hcops.spec import rules
from hcops.spec.diagnostics import from_validation_error
from hcops.spec.models import Consortium
from hcops.spec.overlay import apply_overlay, load_overlay
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

    def locate(self, path: str) -> Location | None:
        return self.sources.locate(parse_path(path))


def load_document(spec_file: Path, environment: str | None = None) -> tuple[SourceDoc, tuple[Path, ...]]:
    doc = load_yaml(spec_file)
    files: tuple[Path, ...] = (spec_file,)
    if environment:
        overlay = load_overlay(spec_file, environment)
        doc = apply_overlay(doc, overlay)
        files += (overlay.path,)
    return doc, files


def load_spec(spec_file: Path, environment: str | None = None) -> LoadedSpec:
    """Load, merge, validate. Raises ``InvalidInput`` carrying every problem found, never only the first."""
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
