"""YAML loading that remembers where every value came from (file, line, column)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from hcops.errors import Diagnostic, InvalidInput, Location

PathKey = tuple[str | int, ...]


def format_path(path: PathKey) -> str:
    """``("spec", "organizations", 1, "name")`` -> ``spec.organizations[1].name``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass
class SourceMap:
    """Maps field paths to the location of their value (and of their key, for mappings)."""

    values: dict[PathKey, Location] = field(default_factory=dict)
    keys: dict[PathKey, Location] = field(default_factory=dict)

    def locate(self, path: PathKey, *, key: bool = False) -> Location | None:
        """The location of ``path``, or of its nearest located ancestor."""
        probe = tuple(path)
        while True:
            found = (self.keys.get(probe) if key else None) or self.values.get(probe)
            if found is not None:
                return found
            if not probe:
                return None
            probe = probe[:-1]

    def subtree(self, prefix: PathKey) -> Iterator[PathKey]:
        n = len(prefix)
        for table in (self.values, self.keys):
            for p in list(table):
                if p[:n] == prefix:
                    yield p

    def drop(self, prefix: PathKey) -> None:
        for p in list(self.subtree(prefix)):
            self.values.pop(p, None)
            self.keys.pop(p, None)

    def graft(self, other: SourceMap, src: PathKey, dst: PathKey) -> None:
        """Copy ``other``'s locations under ``src`` to live under ``dst`` here."""
        n = len(src)
        for mine, theirs in ((self.values, other.values), (self.keys, other.keys)):
            for p, loc in theirs.items():
                if p[:n] == src:
                    mine[dst + p[n:]] = loc


@dataclass
class SourceDoc:
    """A parsed YAML document as plain Python data plus where each value stands."""

    path: Path
    data: Any
    sources: SourceMap


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _plain(node: Any, here: PathKey, fname: str, smap: SourceMap) -> Any:
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for k, v in node.items():
            child = here + (str(k),)
            kl, kc, vl, vc = _map_positions(node, k)
            smap.keys[child] = Location(fname, kl + 1, kc + 1)
            smap.values[child] = Location(fname, vl + 1, vc + 1)
            out[str(k)] = _plain(v, child, fname, smap)
        return out
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for i, v in enumerate(node):
            child = here + (i,)
            line, col = node.lc.item(i)
            smap.values[child] = Location(fname, line + 1, col + 1)
            items.append(_plain(v, child, fname, smap))
        return items
    if isinstance(node, dt.datetime):
        return node
    if isinstance(node, bool | int | float | str | dt.date) or node is None:
        # ruamel's scalar subclasses (ScalarFloat, etc.) become plain builtins
        if isinstance(node, bool) or node is None:
            return node
        for kind in (int, float, str):
            if isinstance(node, kind):
                return kind(node)
        return node
    return node


def _map_positions(node: CommentedMap, key: Any) -> tuple[int, int, int, int]:
    kl, kc = node.lc.key(key)
    try:
        vl, vc = node.lc.value(key)
    except (KeyError, TypeError):
        vl, vc = kl, kc
    return kl, kc, vl, vc


def load_yaml(path: Path, *, what: str = "spec") -> SourceDoc:
    """Parse one YAML file; every failure is an ``InvalidInput`` pointing into the file."""
    fname = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"{fname}: {what} file not found", [Diagnostic(
            f"{what} file not found", location=Location(fname, 1, 1))]) from None
    except IsADirectoryError:
        raise InvalidInput(f"{fname}: is a directory, expected a {what} file", [Diagnostic(
            f"is a directory, expected a {what} YAML file", location=Location(fname, 1, 1))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{fname}: cannot read {what} file: {exc}", [Diagnostic(
            f"cannot read {what} file: {exc}", location=Location(fname, 1, 1))]) from None
    yaml = YAML(typ="rt")
    try:
        docs = list(yaml.load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        diag = Diagnostic(f"invalid YAML: {problem}", location=Location(fname, line, col))
        raise InvalidInput(diag.format(), [diag]) from None
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. bad tags)
        diag = Diagnostic(f"invalid YAML: {exc}", location=Location(fname, 1, 1))
        raise InvalidInput(diag.format(), [diag]) from None
    docs = [d for d in docs if d is not None]
    if not docs:
        diag = Diagnostic(f"the {what} file is empty; expected a YAML mapping", location=Location(fname, 1, 1))
        raise InvalidInput(diag.format(), [diag])
    if len(docs) > 1:
        diag = Diagnostic(f"expected one YAML document, found {len(docs)}", location=Location(fname, 1, 1))
        raise InvalidInput(diag.format(), [diag])
    root = docs[0]
    if not isinstance(root, CommentedMap):
        diag = Diagnostic(f"expected a YAML mapping at the top of the {what}, got {type(root).__name__}",
                          location=Location(fname, 1, 1))
        raise InvalidInput(diag.format(), [diag])
    smap = SourceMap()
    smap.values[()] = Location(fname, 1, 1)
    data = _plain(root, (), fname, smap)
    return SourceDoc(path=path, data=data, sources=smap)
