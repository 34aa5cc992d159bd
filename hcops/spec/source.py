"""YAML loading that remembers where every value came from (file, line, column)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.error import MarkedYAMLError, YAMLError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hcops.errors import Diagnostic, InvalidInput, Location

PathKey = tuple[str | int, ...]

# libyaml parses; scalars are resolved here by the YAML 1.2 core schema (so `on`, `yes` and `0755` stay
# what YAML 1.2 says they are), which PyYAML's own YAML 1.1 resolver would get wrong.
_PLAIN = "!hcops/plain"
_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "false": False}
_BOOL_WORDS = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
_INT_RE = re.compile(r"[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)")
_FLOAT_RE = re.compile(
    r"[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+|\.[0-9_]+(?:[eE][-+]?[0-9]+)?)"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
_TIMESTAMP_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
    r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?")
_TIMESTAMPS = SafeConstructor()


class _Composer(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Composes node graphs only; every untagged plain scalar is tagged for ``_resolve_plain``."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is ScalarNode and implicit[0]:
            return _PLAIN
        resolved: str = super().resolve(kind, value, implicit)
        return resolved


def _to_int(text: str) -> int:
    t = text.replace("_", "")
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
        if t.startswith(prefix):
            return sign * int(t[2:], base)
    return sign * int(t)


def _to_float(text: str) -> float:
    t = text.replace("_", "").lower()
    if t.endswith(".inf"):
        return float("-inf") if t.startswith("-") else float("inf")
    if t.endswith(".nan"):
        return float("nan")
    return float(t)


def _resolve_plain(text: str) -> Any:
    if text in _NULLS:
        return None
    if text in _BOOL_WORDS:
        return _BOOLS[text.lower()]
    first = text[0]
    if first.isdigit() or first in "+-.":
        if _INT_RE.fullmatch(text):
            return _to_int(text)
        if _FLOAT_RE.fullmatch(text):
            return _to_float(text)
        if _TIMESTAMP_RE.fullmatch(text):
            return _TIMESTAMPS.construct_yaml_timestamp(ScalarNode(_TIMESTAMP, text))
    return text


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


def _compose(text: str) -> list[Node]:
    loader = _Composer(text)
    try:
        docs: list[Node] = []
        while loader.check_node():
            docs.append(loader.get_node())
        return docs
    finally:
        loader.dispose()


class _Builder:
    """Turns composed nodes into plain data, recording each value's position; YAML 1.2 core schema."""

    def __init__(self, fname: str, smap: SourceMap) -> None:
        self.fname = fname
        self.smap = smap
        self.problems: list[Diagnostic] = []

    def at(self, node: Node) -> Location:
        return Location(self.fname, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node, here: PathKey) -> Any:
        if isinstance(node, MappingNode):
            return self._mapping(node, here)
        if isinstance(node, SequenceNode):
            items: list[Any] = []
            for i, item in enumerate(node.value):
                child = here + (i,)
                self.smap.values[child] = self.at(item)
                items.append(self.build(item, child))
            return items
        return self._scalar(node)

    def _pairs(self, node: MappingNode) -> list[tuple[Node, Node]]:
        """The node's key/value pairs with ``<<`` merge keys expanded (explicit keys win)."""
        own: list[tuple[Node, Node]] = []
        merged: list[tuple[Node, Node]] = []
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == "<<" and key.tag in (_PLAIN, _MERGE):
                sources = value.value if isinstance(value, SequenceNode) else [value]
                for src in sources:
                    if isinstance(src, MappingNode):
                        merged.extend(self._pairs(src))
                    else:
                        self.problems.append(Diagnostic(
                            "invalid YAML: a merge key (<<) expects a mapping or a list of mappings",
                            location=self.at(src)))
                continue
            own.append((key, value))
        names = {k.value for k, _ in own if isinstance(k, ScalarNode)}
        seen: set[str] = set()
        for k, v in merged:
            if isinstance(k, ScalarNode) and k.value not in names and k.value not in seen:
                seen.add(k.value)
                own.append((k, v))
        return own

    def _mapping(self, node: MappingNode, here: PathKey) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first: dict[str, Node] = {}
        for key, value in self._pairs(node):
            if not isinstance(key, ScalarNode):
                self.problems.append(Diagnostic("invalid YAML: mapping keys must be plain scalars",
                                                location=self.at(key)))
                continue
            name = key.value
            if name in first:
                line = first[name].start_mark.line + 1
                self.problems.append(Diagnostic(
                    f"invalid YAML: duplicate key {name!r} (first defined on line {line})",
                    location=self.at(key)))
                continue
            first[name] = key
            child = here + (name,)
            self.smap.keys[child] = self.at(key)
            self.smap.values[child] = self.at(value)
            out[name] = self.build(value, child)
        return out

    def _scalar(self, node: Node) -> Any:
        tag, text = node.tag, node.value
        if tag == _PLAIN:
            try:
                return _resolve_plain(text)
            except ValueError as exc:  # looks like a number or a date but is not one (0b_, 2026-13-45)
                self.problems.append(Diagnostic(f"invalid YAML: {text!r} is not a valid number or date ({exc}); "
                                                "quote it if it is meant as text", location=self.at(node)))
                return text
        if tag == _STR:
            return text
        try:
            if tag == _INT:
                return _to_int(text)
            if tag == _FLOAT:
                return _to_float(text)
            if tag == _BOOL:
                return _BOOLS[text.lower()]
            if tag == _NULL:
                return None
            if tag == _TIMESTAMP:
                return _TIMESTAMPS.construct_yaml_timestamp(ScalarNode(_TIMESTAMP, text))
        except (ValueError, KeyError):
            self.problems.append(Diagnostic(f"invalid YAML: {text!r} is not a valid {tag}", location=self.at(node)))
            return text
        self.problems.append(Diagnostic(f"invalid YAML: unsupported tag {tag}", location=self.at(node)))
        return text


def parse_yaml(text: str, fname: str, *, what: str = "document") -> tuple[Any, SourceMap]:
    """One YAML document (or none: ``None``) as plain data and the position of every value in ``text``.

    Every failure is an ``InvalidInput`` whose diagnostics point into ``text`` (named ``fname``)."""
    try:
        docs = _compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        diag = Diagnostic(f"invalid YAML: {problem}", location=Location(fname, line, col))
        raise InvalidInput(diag.format(), [diag]) from None
    except YAMLError as exc:
        diag = Diagnostic(f"invalid YAML: {exc}", location=Location(fname, 1, 1))
        raise InvalidInput(diag.format(), [diag]) from None
    docs = [d for d in docs if not (isinstance(d, ScalarNode) and d.tag == _PLAIN and d.value in _NULLS)]
    if len(docs) > 1:
        diag = Diagnostic(f"expected one YAML document in the {what}, found {len(docs)}",
                          location=Location(fname, 1, 1))
        raise InvalidInput(diag.format(), [diag])
    smap = SourceMap()
    smap.values[()] = Location(fname, 1, 1)
    if not docs:
        return None, smap
    builder = _Builder(fname, smap)
    data = builder.build(docs[0], ())
    if builder.problems:
        raise InvalidInput(builder.problems[0].format(), builder.problems)
    return data, smap


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
    data, smap = parse_yaml(text, fname, what=what)
    if not isinstance(data, dict):
        got = "nothing" if data is None else "a list" if isinstance(data, list) else "a scalar"
        if data is None:
            message = f"the {what} file is empty; expected a YAML mapping"
        else:
            message = f"expected a YAML mapping at the top of the {what}, got {got}"
        diag = Diagnostic(message, location=Location(fname, 1, 1))
        raise InvalidInput(diag.format(), [diag])
    return SourceDoc(path=path, data=data, sources=smap)
