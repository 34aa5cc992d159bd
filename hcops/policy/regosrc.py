"""A small, lenient scanner for Rego source: package, imports, top-level rule heads, calls, comments.

It is not a parser. It tokenizes (strings, raw strings and comments are recognised so that nothing
inside them is mistaken for code), tracks bracket depth and finds the statements that start a line
at depth 0. That is enough to associate METADATA comment blocks with rules, to list the packages that
define ``deny``/``warn``, to find ``test_*`` rules and to spot calls to built-ins an engine lacks.
Syntax errors are left to the engines, which report them with file:line.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass

_TOKEN_RE = re.compile(
    r"""
     (?P<ws>[ \t\r\f]+)
    |(?P<nl>\n)
    |(?P<comment>\#[^\n]*)
    |(?P<str>"(?:[^"\\\n]|\\.)*")
    |(?P<raw>`[^`]*`)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    |(?P<op>:=|==|!=|<=|>=|[-+*/%|&<>=!:;,.\[\]{}()])
    |(?P<bad>.)
    """,
    re.VERBOSE,
)

# A line whose first token follows one of these continues the previous statement.
_CONTINUATION = frozenset(
    {
        ":=", "=", "==", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "|", "&", ",", ".", ":",
        "if", "contains", "else", "in", "not", "some", "every", "with", "as", "default",
    }
)
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = frozenset(_OPEN.values())
_NOT_RULES = frozenset({"package", "import", "else"})


@dataclass(frozen=True)
class Token:
    kind: str  # str | raw | ident | num | op | bad
    text: str
    line: int  # 1-based
    col: int  # 1-based, in characters
    depth: int  # bracket depth before this token
    first_on_line: bool


@dataclass(frozen=True)
class Comment:
    line: int
    col: int  # column of the '#'
    text: str  # everything after '#'
    own_line: bool  # nothing but whitespace before it on its line


@dataclass(frozen=True)
class Import:
    path: tuple[str, ...]  # ("data", "hcops", "hipaa", "lib")
    alias: str
    line: int


@dataclass(frozen=True)
class RuleHead:
    name: str  # first segment of the head reference: "deny", "test_x", "port_matches"
    line: int
    col: int
    default: bool = False
    function: bool = False


@dataclass(frozen=True)
class Call:
    name: str  # dotted: "net.cidr_contains", "sprintf", "lib.port_matches"
    line: int
    col: int


@dataclass(frozen=True)
class Statement:
    """A top-level statement start: a package, an import or a rule head."""

    kind: str  # package | import | rule
    line: int
    col: int


@dataclass(frozen=True)
class ModuleInfo:
    filename: str
    package: tuple[str, ...] | None
    package_line: int
    imports: tuple[Import, ...]
    rules: tuple[RuleHead, ...]
    calls: tuple[Call, ...]
    comments: tuple[Comment, ...]
    statements: tuple[Statement, ...]

    @property
    def package_name(self) -> str:
        return ".".join(self.package or ())

    @property
    def is_test(self) -> bool:
        return self.filename.endswith("_test.rego")


def _tokenize(source: str) -> tuple[list[Token], list[Comment]]:
    line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
    tokens: list[Token] = []
    comments: list[Comment] = []
    depth = 0
    line_has_token = False
    for m in _TOKEN_RE.finditer(source):
        kind = m.lastgroup or "bad"
        if kind == "ws":
            continue
        if kind == "nl":
            line_has_token = False
            continue
        pos = m.start()
        line_index = bisect.bisect_right(line_starts, pos) - 1
        line, col = line_index + 1, pos - line_starts[line_index] + 1
        text = m.group()
        if kind == "comment":
            comments.append(Comment(line, col, text[1:], own_line=not line_has_token))
            line_has_token = True
            continue
        if text in _CLOSE:
            depth = max(0, depth - 1)
        tokens.append(Token(kind, text, line, col, depth, first_on_line=not line_has_token))
        if text in _OPEN:
            depth += 1
        line_has_token = True
        if kind == "raw" and "\n" in text:  # a raw string spanning lines: the line after is fresh
            line_has_token = True
    return tokens, comments


def _ref_segments(tokens: list[Token], i: int) -> tuple[tuple[str, ...], int]:
    """Read ``a.b["c"].d`` starting at tokens[i]; return the segments and the index after it."""
    segs: list[str] = []
    if i < len(tokens) and tokens[i].kind == "ident":
        segs.append(tokens[i].text)
        i += 1
    while i < len(tokens):
        t = tokens[i]
        if t.text == "." and i + 1 < len(tokens) and tokens[i + 1].kind == "ident":
            segs.append(tokens[i + 1].text)
            i += 2
        elif (
            t.text == "["
            and i + 2 < len(tokens)
            and tokens[i + 1].kind == "str"
            and tokens[i + 2].text == "]"
        ):
            segs.append(tokens[i + 1].text[1:-1])
            i += 3
        else:
            break
    return tuple(segs), i


@functools.lru_cache(maxsize=512)
def scan(filename: str, source: str) -> ModuleInfo:
    """Scan one module (cached: the result is immutable). Never raises: what it cannot make sense
    of, it skips."""
    tokens, comments = _tokenize(source)
    package: tuple[str, ...] | None = None
    package_line = 0
    imports: list[Import] = []
    rules: list[RuleHead] = []
    statements: list[Statement] = []
    head_indexes: set[int] = set()
    prev: Token | None = None
    for i, tok in enumerate(tokens):
        starts = (
            tok.depth == 0
            and tok.first_on_line
            and tok.kind == "ident"
            and (prev is None or prev.text not in _CONTINUATION)
        )
        prev = tok
        if not starts:
            continue
        if tok.text == "package":
            segs, _ = _ref_segments(tokens, i + 1)
            if package is None and segs:
                package, package_line = segs, tok.line
            statements.append(Statement("package", tok.line, tok.col))
        elif tok.text == "import":
            segs, j = _ref_segments(tokens, i + 1)
            alias = segs[-1] if segs else ""
            if j + 1 < len(tokens) and tokens[j].text == "as" and tokens[j + 1].kind == "ident":
                alias = tokens[j + 1].text
            if segs:
                imports.append(Import(segs, alias, tok.line))
            statements.append(Statement("import", tok.line, tok.col))
        elif tok.text not in _NOT_RULES:
            default = tok.text == "default"
            k = i + 1 if default else i
            if k >= len(tokens) or tokens[k].kind != "ident":
                continue
            segs, j = _ref_segments(tokens, k)
            function = j < len(tokens) and tokens[j].text == "(" and tokens[j].line == tokens[k].line
            rules.append(RuleHead(segs[0], tok.line, tok.col, default=default, function=function))
            head_indexes.add(k)
            statements.append(Statement("rule", tok.line, tok.col))

    calls: list[Call] = []
    for i, tok in enumerate(tokens):
        if tok.kind != "ident" or i in head_indexes:
            continue
        if i > 0 and tokens[i - 1].text == ".":
            continue
        segs, j = _ref_segments(tokens, i)
        if j < len(tokens) and tokens[j].text == "(" and all(s.isidentifier() for s in segs):
            calls.append(Call(".".join(segs), tok.line, tok.col))

    return ModuleInfo(
        filename=filename,
        package=package,
        package_line=package_line,
        imports=tuple(imports),
        rules=tuple(rules),
        calls=tuple(calls),
        comments=tuple(comments),
        statements=tuple(statements),
    )


_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def rego_ref(segments: tuple[str, ...] | list[str]) -> str:
    """``("hcops", "hipaa", "ac")`` -> ``data.hcops.hipaa.ac``; non-identifiers are bracketed."""
    out = "data"
    for s in segments:
        out += f".{s}" if _IDENT_RE.match(s) else '["' + s.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out


def offset_to_position(source: str, byte_offset: int) -> tuple[int, int]:
    """A UTF-8 byte offset into ``source`` -> (line, column), both 1-based, column in characters."""
    raw = source.encode("utf-8")
    byte_offset = max(0, min(byte_offset, len(raw)))
    before = raw[:byte_offset].decode("utf-8", errors="replace")
    line = before.count("\n") + 1
    col = len(before) - (before.rfind("\n") + 1) + 1
    return line, col
