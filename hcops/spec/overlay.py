"""Environment overlays: deep-merge ``environments/NAME.yaml`` over the base spec, keeping sources.

Rules: maps merge deeply; lists of named items (organizations, nodes) merge by ``name``; other lists
replace; ``null`` removes a key. An overlay that names an item absent from the base is an error.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from hcops.errors import Diagnostic, InvalidInput
from hcops.spec.diagnostics import escape_text, quote
from hcops.spec.source import PathKey, SourceDoc, SourceMap, format_path, load_yaml

# An environment is a name, never a path: "./prod" or "../../x" would load an overlay from elsewhere, or the
# prod overlay under a name that is not "prod".
ENV_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,62}\Z")


def overlay_path(spec_path: Path, env: str) -> Path:
    return spec_path.parent / "environments" / f"{env}.yaml"


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path``, symbolic links followed, is a file directly in ``folder`` (followed too)."""
    try:
        return path.resolve(strict=True).parent == folder.resolve(strict=True)
    except (OSError, RuntimeError):  # a dangling link or a loop
        return False


def available_environments(spec_path: Path) -> list[str]:
    folder = spec_path.parent / "environments"
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.yaml") if ENV_NAME.fullmatch(p.stem) and _inside(p, folder))


def _known(spec_path: Path) -> str:
    known = available_environments(spec_path)
    folder = escape_text(str(spec_path.parent / "environments"))
    return f"known environments: {', '.join(known)}" if known else f"no overlay in {folder}"


def check_environment_name(spec_path: Path, env: str) -> None:
    if not ENV_NAME.fullmatch(env):
        raise InvalidInput(
            f"invalid environment name {quote(env)}: expected a plain name of letters, digits, \"_\" and \"-\" "
            f"(at most 63, starting with a letter or digit), not a path ({_known(spec_path)})")


def load_overlay(spec_path: Path, env: str) -> SourceDoc:
    check_environment_name(spec_path, env)
    path = overlay_path(spec_path, env)
    if not path.is_file():
        hint = _known(spec_path) if available_environments(spec_path) else f"create {escape_text(str(path))}"
        raise InvalidInput(f"environment '{env}' not found: no file {escape_text(str(path))} ({hint})")
    if not _inside(path, path.parent):
        raise InvalidInput(f"environment '{env}': {escape_text(str(path))} is a symbolic link to a file outside "
                           f"{escape_text(str(path.parent))}; an overlay must live in the spec's environments folder")
    return load_yaml(path, what="overlay")


def _is_named_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(item, dict) and isinstance(item.get("name"), str) for item in value)


class _Merger:
    def __init__(self, base: SourceDoc, over: SourceDoc) -> None:
        self.over = over
        self.sources = SourceMap(dict(base.sources.values), dict(base.sources.keys))
        self.errors: list[Diagnostic] = []

    def set_from_overlay(self, dst: PathKey, src: PathKey) -> None:
        self.sources.drop(dst)
        self.sources.graft(self.over.sources, src, dst)

    def merge(self, base: Any, over: Any, dst: PathKey, src: PathKey) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            out = dict(base)
            for key, value in over.items():
                if value is None:
                    out.pop(key, None)
                    self.sources.drop(dst + (key,))
                elif key in out:
                    out[key] = self.merge(out[key], value, dst + (key,), src + (key,))
                else:
                    out[key] = copy.deepcopy(value)
                    self.set_from_overlay(dst + (key,), src + (key,))
            return out
        if _is_named_list(base) and isinstance(over, list):
            return self.merge_named(base, over, dst, src)
        self.set_from_overlay(dst, src)
        return copy.deepcopy(over)

    def merge_named(self, base: list[Any], over: list[Any], dst: PathKey, src: PathKey) -> list[Any]:
        out = list(base)
        index = {item["name"]: i for i, item in enumerate(base)}
        for j, item in enumerate(over):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                self.errors.append(Diagnostic(
                    "expected an item with a 'name' that matches an item of the base spec",
                    path=format_path(src + (j,)), location=self.over.sources.locate(src + (j,))))
                continue
            if name not in index:
                self.errors.append(Diagnostic(
                    f"{quote(name)} is not in the base spec; an overlay may only change items the base declares"
                    f" (known: {escape_text(', '.join(sorted(index)))})",
                    path=format_path(src + (j, "name")),
                    location=self.over.sources.locate(src + (j, "name"))))
                continue
            i = index[name]
            out[i] = self.merge(base[i], item, dst + (i,), src + (j,))
        return out


def apply_overlay(base: SourceDoc, over: SourceDoc) -> SourceDoc:
    """The merged document; its source map points into whichever file set each value."""
    merger = _Merger(base, over)
    data = merger.merge(base.data, over.data, (), ())
    if merger.errors:
        raise InvalidInput(f"{len(merger.errors)} error(s) in overlay {over.path}", merger.errors)
    return SourceDoc(path=base.path, data=data, sources=merger.sources)
