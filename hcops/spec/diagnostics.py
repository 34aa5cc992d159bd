"""Turn pydantic validation errors into user diagnostics: file:line:col, field path, what was expected."""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from hcops.errors import Diagnostic
from hcops.spec.source import PathKey, SourceMap, format_path

_EXPECT = {
    "missing": "required field is missing",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "float_type": "expected a number",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "date_type": "expected a date (YYYY-MM-DD)",
    "date_parsing": "expected a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "expected a date (YYYY-MM-DD)",
}


# Characters a terminal acts on or that reorder or hide text: C0 and C1 controls, DEL, the bidirectional
# embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), the marks (U+061C, U+200E, U+200F),
# zero-width characters and U+2028/U+2029, which some readers (YAML 1.1) treat as line breaks.
UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
MAX_QUOTED = 120  # a hostile value may be megabytes long; the message needs only enough to recognise it


def _escape_char(m: re.Match[str]) -> str:
    c = m.group()
    if c in _NAMED:
        return _NAMED[c]
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def escape_text(text: str) -> str:
    """``text`` with every character of ``UNSAFE_CHARS`` written as a visible escape (``\\x1b``, ``\\u202e``).

    Backslashes are left alone, so escaping twice changes nothing: any message may go through it again."""
    return UNSAFE_CHARS.sub(_escape_char, text)


def quote(value: str) -> str:
    """A user-supplied value for a message: double-quoted, escaped, and shortened when very long."""
    shown = value if len(value) <= MAX_QUOTED else f"{value[:MAX_QUOTED]}... ({len(value)} characters)"
    return f'"{escape_text(shown)}"'


def _got(value: Any) -> str:
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "null"
    return repr(value)


def _model_at(root: type[BaseModel], path: PathKey) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``path`` (for 'did you mean')."""
    current: Any = root
    for part in path:
        current = _unwrap(current)
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return None
        current = field.annotation
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            tp = args[0] if len(args) == 1 else tp
            if len(args) != 1:
                return tp
        elif origin in (tuple, list) or origin is typing.Annotated:
            tp = get_args(tp)[0]
        else:
            return tp


def _aliases(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _message(err: Any, root: type[BaseModel], path: PathKey) -> str:
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        parent = _model_at(root, path[:-1])
        known = _aliases(parent) if parent else []
        close = difflib.get_close_matches(str(path[-1]), known, n=1, cutoff=0.6)
        hint = f'; did you mean "{close[0]}"?' if close else (f"; expected one of: {', '.join(known)}" if known else "")
        return f"unknown field {quote(str(path[-1]))}{hint}"
    if kind == "missing":
        return _EXPECT[kind]
    if kind in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        return f"expected one of {expected}, got {_got(value)}"
    if kind in _EXPECT:
        return f"{_EXPECT[kind]}, got {_got(value)}"
    if kind == "too_short" and isinstance(value, list | tuple):
        return f"expected at least {err['ctx'].get('min_length')} item(s), got {len(value)}"
    if kind == "string_pattern_mismatch":
        return f"expected a value matching {err['ctx']['pattern']}, got {_got(value)}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{err['msg'].lower().replace('input should be', 'expected a value')}, got {_got(value)}"
    msg: str = err["msg"]
    return msg[0].lower() + msg[1:] if msg else kind


def from_validation_error(exc: ValidationError, root: type[BaseModel], sources: SourceMap) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        path: PathKey = tuple(p for p in err["loc"] if isinstance(p, str | int))
        # Unknown keys are user text too; the raw path still locates the value.
        shown = format_path(tuple(escape_text(p) if isinstance(p, str) else p for p in path))
        message = escape_text(_message(err, root, path))
        key = (shown, message)
        if key in seen:
            continue
        seen.add(key)
        location = sources.locate(path, key=err["type"] == "extra_forbidden")
        out.append(Diagnostic(message, path=shown, location=location))
    return out
