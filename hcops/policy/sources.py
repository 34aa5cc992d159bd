"""Finding policy modules and data files on disk."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcops.errors import Diagnostic, InvalidInput, Location
from hcops.settings import Settings, resolve
from hcops.spec.source import SourceMap, parse_yaml

RUNTIME_DIR = "runtime"  # policies/runtime/: evaluated by the audit, never by the gate
# data.hcops.* holds the built-in pack; the others are the engines' entry modules, the OPA server's
# record of the uploaded pack and the managed server's staged input (hcops.policy.engines). Users cannot
# write under them.
RESERVED_ROOTS = frozenset({"hcops", "hcops_engine_entry", "hcops_engine_pack", "hcops_engine_staged",
                            "hcops_engine_input"})


def builtin_policy_dir(settings: Settings | None = None) -> Path:
    """The built-in pack: ``$HCOPS_POLICY_DIR`` if set, else the one installed with hcops."""
    return resolve(settings).policies


def display_path(path: Path) -> str:
    """A path relative to the working directory when it lies below it, else absolute; '/'-separated."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def read_yaml_file(path: Path, what: str) -> tuple[Any, SourceMap]:
    """A side file (waivers, attestations) parsed with positions; unreadable or malformed is InvalidInput."""
    name = display_path(Path(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {what} {name}: {exc}") from exc
    try:
        return parse_yaml(text, name, what=what)
    except InvalidInput as exc:
        raise InvalidInput(f"malformed {what}", exc.diagnostics) from None


@dataclass(frozen=True)
class PolicyFile:
    name: str  # display path, the module name in messages
    path: Path
    source: str
    builtin: bool

    @property
    def is_test(self) -> bool:
        return self.name.endswith("_test.rego")


def _rego_files(root: Path, exclude: Iterable[str]) -> list[Path]:
    if root.is_file():
        return [root] if root.suffix == ".rego" else []
    if not root.is_dir():
        raise InvalidInput(f"policy directory not found: {root}")
    skip = {root / e for e in exclude}
    out = []
    for path in sorted(root.rglob("*.rego")):
        rel_parts = path.relative_to(root).parts
        if any(part.startswith(".") for part in rel_parts):
            continue
        if any(path.is_relative_to(s) for s in skip):
            continue
        out.append(path)
    return out


def collect_policies(
    policy_dirs: Sequence[Path] = (),
    *,
    builtin_dir: Path | None = None,
    include_tests: bool = False,
    include_runtime: bool = False,
) -> list[PolicyFile]:
    """Every ``.rego`` file of the built-in pack (without ``runtime/`` unless asked) and the user
    directories, each file once, in a stable order."""
    found: dict[Path, PolicyFile] = {}
    sources: list[tuple[Path, bool, tuple[str, ...]]] = []
    if builtin_dir is not None:
        sources.append((builtin_dir, True, () if include_runtime else (RUNTIME_DIR,)))
    sources.extend((Path(d), False, ()) for d in policy_dirs)
    for root, builtin, exclude in sources:
        for path in _rego_files(root, exclude):
            key = path.resolve()
            if key in found:
                continue
            name = display_path(path)
            if not include_tests and name.endswith("_test.rego"):
                continue
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInput(f"cannot read policy file {name}: {exc}") from exc
            found[key] = PolicyFile(name, path, source, builtin)
    files = sorted(found.values(), key=lambda f: f.name)
    names = [f.name for f in files]
    if len(set(names)) != len(names):  # pragma: no cover - display paths are unique per file
        raise InvalidInput("two policy files share a name")
    return files


def modules_of(files: Iterable[PolicyFile]) -> dict[str, str]:
    return {f.name: f.source for f in files}


def _merge(into: dict[str, Any], new: Mapping[str, Any], origin: str, prefix: str,
           diags: list[Diagnostic]) -> None:
    for key, value in new.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key in into:
            if isinstance(into[key], dict) and isinstance(value, Mapping):
                _merge(into[key], value, origin, path, diags)
            elif into[key] != value:
                diags.append(Diagnostic(f"data.{path} is set by more than one data file",
                                        path=path, location=Location(origin, 1)))
        else:
            into[key] = json.loads(json.dumps(value, default=str)) if not isinstance(value, dict) else {}
            if isinstance(value, Mapping):
                _merge(into[key], value, origin, path, diags)


def load_data_files(paths: Sequence[Path]) -> dict[str, Any]:
    """Merge JSON/YAML data files into one ``data`` document; conflicting values are InvalidInput."""
    merged: dict[str, Any] = {}
    diags: list[Diagnostic] = []
    for path in paths:
        name = display_path(Path(path))
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read data file {name}: {exc}") from exc
        doc: Any
        where: Any = None
        if Path(path).suffix.lower() == ".json":
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvalidInput("malformed JSON data file", [
                    Diagnostic(exc.msg, location=Location(name, exc.lineno, exc.colno))]) from exc
        else:
            try:
                doc, where = parse_yaml(text, name, what="data file")
            except InvalidInput as exc:
                raise InvalidInput("malformed YAML data file", exc.diagnostics) from None
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            raise InvalidInput("a data file must hold a mapping", [
                Diagnostic("expected a mapping at the top level", location=Location(name, 1))])
        reserved = sorted(str(k) for k in doc if k in RESERVED_ROOTS)
        if reserved:
            # Rego merges data into the same tree as the policies: data.hcops.* would override the
            # built-in rules and helpers.
            raise InvalidInput("policy data reaches into the built-in policy pack", [
                Diagnostic(f"data.{k} is reserved for the built-in policy pack; put your data under a key of "
                           "your own (for example `acme:`)", path=k,
                           location=(where.locate((k,), key=True) if where else None) or Location(name, 1))
                for k in reserved])
        _merge(merged, doc, name, "", diags)
    if diags:
        raise InvalidInput("conflicting policy data", diags)
    return merged
