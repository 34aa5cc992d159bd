"""``config.toml`` text: byte-identical to ``tomli_w.dumps`` for the plain documents hcops renders, but fast.

``tomli_w`` escapes strings one character at a time in Python; a node's ``persistent_peers`` line is a few
kilobytes, which makes it the single largest cost of rendering thousands of nodes. This writer handles the
shapes CometBFT's config uses (tables of strings, booleans, integers and arrays of those) with the same
layout rules as ``tomli_w`` and hands anything else, including every string that needs escaping, to
``tomli_w`` itself. ``tests/render/test_toml.py`` checks the two agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import tomli_w

_PLAIN_STRING = re.compile(r'[^\x00-\x08\x0a-\x1f\x7f"\\]*')  # nothing a TOML basic string must escape
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_INDENT = "    "


class _Unsupported(Exception):
    """A value this writer leaves to tomli_w."""


def dumps(doc: Mapping[str, Any]) -> str:
    try:
        return "".join(_table(doc, ""))
    except _Unsupported:
        return tomli_w.dumps(doc)


def _string(value: str) -> str:
    if _PLAIN_STRING.fullmatch(value):
        return f'"{value}"'
    return tomli_w.dumps({"k": value})[4:-1]  # 'k = "<escaped>"\n'


_KEYS: dict[str, str] = {}


def _key(key: Any) -> str:
    text = _KEYS.get(key) if type(key) is str else None
    if text is None:
        if not isinstance(key, str):
            raise _Unsupported
        text = key if _BARE_KEY.fullmatch(key) else _string(key)
        if len(_KEYS) < 4096:
            _KEYS[key] = text
    return text


def _literal(value: Any, nest: int) -> str:
    if isinstance(value, str):
        return _string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        inner = _INDENT * (nest + 1)
        items = ",\n".join([inner + _literal(v, nest + 1) for v in value])
        return f"[\n{items},\n{_INDENT * nest}]"
    raise _Unsupported  # floats, dates, inline tables: tomli_w's job


def _is_table(value: Any) -> bool:
    if isinstance(value, dict):
        return True
    return not isinstance(value, str | int | list | tuple) and isinstance(value, Mapping)


_LINES: dict[tuple[Any, type, Any], str] = {}  # "key = value" lines: most recur in every node's config
_SCALARS = (str, int, bool)


def _line(key: Any, value: Any) -> str:
    cls = value.__class__
    if cls in _SCALARS and (cls is not str or len(value) <= 128):
        memo = (key, cls, value)  # the class keeps True apart from 1
        line = _LINES.get(memo)
        if line is None:
            line = f"{_key(key)} = {_literal(value, 0)}\n"
            if len(_LINES) >= 8192:
                _LINES.clear()
            _LINES[memo] = line
        return line
    return f"{_key(key)} = {_literal(value, 0)}\n"


def _table(table: Mapping[str, Any], name: str) -> list[str]:
    literals: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in table.items():
        cls = value.__class__
        if cls is dict:
            tables.append((key, value))
        elif cls in _SCALARS:
            literals.append(_line(key, value))
        elif _is_table(value):
            tables.append((key, value))
        elif isinstance(value, list | tuple) and value and all(_is_table(v) for v in value):
            raise _Unsupported  # array of tables
        else:
            literals.append(_line(key, value))
    out: list[str] = []
    if name and (literals or not tables):
        out.append(f"[{name}]\n")
    out += literals
    for key, value in tables:
        if out:
            out.append("\n")
        part = _key(key)
        out += _table(value, f"{name}.{part}" if name else part)
    return out
