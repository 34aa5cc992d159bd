"""YAML loading that remembers where every value came from (file, line, column)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.error import Mark, MarkedYAMLError, YAMLError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from hcops.errors import Diagnostic, InvalidInput, Location
from hcops.spec import limits

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
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SCALAR_TAGS = frozenset({_PLAIN, _STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP})
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


class _Composer(limits.NestingGuard, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Composes node graphs only (within the limits ``NestingGuard`` enforces as it goes); every untagged
    plain scalar is tagged for ``_resolve_plain``."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is ScalarNode and implicit[0]:
            return _PLAIN
        resolved: str = super().resolve(kind, value, implicit)
        return resolved


class _LargeTextComposer(limits.SizeGuard, _Composer):
    """For texts long enough to hold more nodes than the limit: counts them while composing."""


def _to_int(text: str) -> int:
    if text.isdecimal():  # most integers (10, 8080): skip the sign, underscore and base handling
        return int(text)
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
            return _timestamp(text)
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


def _short(text: str) -> str:
    """``repr`` of a scalar for a message: a 10 MB scalar must not become a 10 MB message."""
    return repr(text) if len(text) <= 80 else repr(text[:60]) + f" (and {len(text) - 60:,} more characters)"


def _timestamp(text: str) -> Any:
    # PyYAML's constructor assumes its own pattern matched (else AttributeError on None).
    if not _TIMESTAMP_RE.fullmatch(text):
        raise ValueError("not a YAML timestamp (YYYY-MM-DD or YYYY-MM-DD hh:mm:ss)")
    return _TIMESTAMPS.construct_yaml_timestamp(ScalarNode(_TIMESTAMP, text))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError, RuntimeError):  # elsewhere; cwd gone; a symlink loop (read_text says so)
        return str(path)


def _tag_name(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


class _Builder:
    """Turns composed nodes into plain data, recording each value's position; YAML 1.2 core schema.

    Recursive: ``parse_yaml`` has bounded the depth (aliases included) and ruled out cycles first."""

    def __init__(self, fname: str, smap: SourceMap) -> None:
        self.fname = fname
        self.smap = smap
        self.problems: list[Diagnostic] = []
        self.budget = limits.Budget()

    def at(self, node: Node) -> Location:
        mark = node.start_mark
        return Location(self.fname, mark.line + 1, mark.column + 1)

    def problem(self, message: str, node: Node) -> None:
        self.problems.append(Diagnostic(message, location=self.at(node)))
        if len(self.problems) >= limits.MAX_PROBLEMS:
            raise limits.TooManyProblems

    def build(self, node: Node, here: PathKey) -> Any:
        if isinstance(node, MappingNode):
            if node.tag != _MAP:  # !!set, !!omap, !!python/object/apply:..., !custom: nothing here builds them
                self.problem(f"invalid YAML: unsupported tag {_tag_name(node.tag)} on a mapping", node)
            return self._mapping(node, here)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                self.problem(f"invalid YAML: unsupported tag {_tag_name(node.tag)} on a list", node)
            self.budget.spend(len(node.value), len(here) + 1, node)
            values, at, build = self.smap.values, self.at, self.build  # hot loop: a lookup less per item
            items: list[Any] = []
            for i, item in enumerate(node.value):
                child = here + (i,)
                values[child] = at(item)
                items.append(build(item, child))
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
                        self.problem("invalid YAML: a merge key (<<) expects a mapping or a list of mappings",
                                     src)
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
        pairs = self._pairs(node)
        self.budget.spend(2 * len(pairs), len(here) + 1, node)
        for key, value in pairs:
            if not isinstance(key, ScalarNode):
                self.problem("invalid YAML: mapping keys must be plain scalars", key)
                continue
            if key.tag not in _SCALAR_TAGS:
                self.problem(f"invalid YAML: unsupported tag {_tag_name(key.tag)} on a key", key)
            name = key.value
            if name in first:
                line = first[name].start_mark.line + 1
                self.problem(f"invalid YAML: duplicate key {_short(name)} (first defined on line {line})", key)
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
                self.problem(f"invalid YAML: {_short(text)} is not a valid number or date ({exc}); "
                             "quote it if it is meant as text", node)
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
                return _timestamp(text)
        except (ValueError, KeyError):
            self.problem(f"invalid YAML: {_short(text)} is not a valid {_tag_name(tag)}", node)
            return text
        self.problem(f"invalid YAML: unsupported tag {_tag_name(tag)}", node)
        return text


def _error(message: str, fname: str, line: int = 1, column: int = 1) -> InvalidInput:
    diag = Diagnostic(message, location=Location(fname, line, column))
    return InvalidInput(diag.format(), [diag])


def _line_col(text: str, index: int) -> tuple[int, int]:
    return text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)


def _mark_error(message: str, mark: Mark | None, fname: str) -> InvalidInput:
    return _error(message, fname, *((mark.line + 1, mark.column + 1) if mark else (1, 1)))


def _compose(text: str, fname: str) -> list[Node]:
    """Every document's node graph; every failure (bad characters included) is a positioned InvalidInput."""
    try:
        loader = (_Composer if len(text) < limits.SIZE_GUARD_FROM else _LargeTextComposer)(text)
        try:
            docs: list[Node] = []
            while loader.check_node():
                docs.append(loader.get_node())
            return docs
        finally:
            loader.dispose()
    except limits.LimitExceeded as exc:
        raise _mark_error(exc.message, exc.mark, fname) from None
    except ReaderError as exc:  # a character YAML excludes (NUL, other C0 controls); position in UTF-8 bytes
        before = text.encode("utf-8")[:exc.position].decode("utf-8", "replace")
        char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        raise _error(f"invalid YAML: character {char} is not allowed ({exc.reason})", fname,
                     *_line_col(before, len(before))) from None
    except MarkedYAMLError as exc:
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise _mark_error(f"invalid YAML: {problem}", exc.problem_mark or exc.context_mark, fname) from None
    except YAMLError as exc:
        raise _error(f"invalid YAML: {exc}", fname) from None
    except UnicodeEncodeError as exc:  # lone surrogates (text decoded with surrogateescape): not Unicode text
        raise _error(f"invalid YAML: {exc.reason} ({exc.object[exc.start:exc.end]!a})", fname,
                     *_line_col(text, exc.start)) from None


def parse_yaml(text: str, fname: str, *, what: str = "document") -> tuple[Any, SourceMap]:
    """One YAML document (or none: ``None``) as plain data and the position of every value in ``text``.

    Every failure is an ``InvalidInput`` whose diagnostics point into ``text`` (named ``fname``), including
    documents over the limits of ``hcops.spec.limits`` (depth, size once aliases are expanded)."""
    with limits.gc_paused():
        docs = _compose(text, fname)
        docs = [d for d in docs if not (isinstance(d, ScalarNode) and d.tag == _PLAIN and d.value in _NULLS)]
        if len(docs) > 1:
            raise _mark_error(f"expected one YAML document in the {what}, found {len(docs)} (the second starts "
                              "here)", docs[1].start_mark, fname)
        smap = SourceMap()
        smap.values[()] = Location(fname, 1, 1)
        if not docs:
            return None, smap
        builder = _Builder(fname, smap)
        try:
            if "&" in text:  # no anchor, no alias: nothing expands and nothing can refer to itself
                limits.check_expansion(docs[0])
            data = builder.build(docs[0], ())
        except limits.TooManyProblems:
            builder.problems.append(Diagnostic(f"stopped after {limits.MAX_PROBLEMS} problems",
                                               location=builder.problems[-1].location))
        except limits.LimitExceeded as exc:
            found = limits.recursive_alias(text) if exc.recursive else None
            raise _mark_error((found or exc).message, (found or exc).mark, fname) from None
        if builder.problems:
            raise InvalidInput(builder.problems[0].format(), builder.problems)
        del docs  # freed while the collector sleeps, the node graph is not walked once it wakes up
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
    except UnicodeDecodeError:
        raise _not_utf8(path, fname, what) from None
    except OSError as exc:
        raise InvalidInput(f"{fname}: cannot read {what} file: {exc}", [Diagnostic(
            f"cannot read {what} file: {exc}", location=Location(fname, 1, 1))]) from None
    data, smap = parse_yaml(text, fname, what=what)
    if not isinstance(data, dict):
        got = "nothing" if data is None else "a list" if isinstance(data, list) else "a scalar"
        if data is None:
            message = f"the {what} file is empty; expected a YAML mapping"
        else:
            message = f"expected a YAML mapping at the top of the {what}, got {got}"
        raise _error(message, fname)
    return SourceDoc(path=path, data=data, sources=smap)


def _not_utf8(path: Path, fname: str, what: str) -> InvalidInput:
    # The text reader's error only knows its own buffer: find the first bad byte in the whole file.
    offset, line, column = limits.first_non_utf8(path.read_bytes())
    return _error(f"cannot read {what} file: not UTF-8 text (byte offset {offset})", fname, line, column)
