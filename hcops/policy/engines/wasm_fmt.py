"""Rego values as the wasm engine's host built-ins see them (parsed from ``opa_value_dump``: JSON, plus
Rego sets ``{a, b}`` / ``set()``; a number keeps its text, as ast.Number does), OPA's text of them
(``ast.Value.String()``) and Go's ``fmt`` as OPA's ``sprintf`` uses it.

Covered: the verbs ``%s %v %d %q %x %X %f %e %g %t`` with flags, width and precision, ``%%``, and Go's
``%!verb(type=value)``, ``%!v(MISSING)`` and ``%!(EXTRA ...)`` texts. Argument indexes and ``*`` widths
raise BuiltinError (the evaluation fails) rather than print something OPA would not.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from typing import Any


class BuiltinError(Exception):
    """A built-in function's error (OPA: a builtin error, fatal with strict built-in errors)."""


@dataclass(frozen=True)
class Num:
    text: str


@dataclass(frozen=True)
class RObj:
    items: tuple[tuple[Any, Any], ...]


@dataclass(frozen=True)
class RSet:
    items: tuple[Any, ...]


# ----------------------------------------------------------------------------------- value dump parser
_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_WS = re.compile(rb"[ \t\n\r]*")


def parse_value_dump(text: bytes) -> Any:
    """Parse the text of ``opa_value_dump``: JSON (most values, parsed by the json module) or Rego."""
    try:
        return json.loads(text, parse_int=Num, parse_float=Num, parse_constant=_no_constant)
    except ValueError:
        pass  # a set, or an object with keys that are not strings
    value, pos = _parse(text, _WS.match(text, 0).end())  # type: ignore[union-attr]
    pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
    if pos != len(text):
        raise BuiltinError(f"unexpected value text at {pos}")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _parse(t: bytes, i: int) -> tuple[Any, int]:
    c = t[i : i + 1]
    if c == b'"':
        m = _STRING.match(t, i)
        if not m:
            raise BuiltinError("unterminated string")
        return json.loads(m.group(0)), m.end()
    if c == b"[":
        items, i = _items(t, i + 1, b"]")
        return [v for v, _ in items], i
    if c == b"{":
        items, i = _items(t, i + 1, b"}")
        if items and items[0][1] is not _NO_VALUE:
            return RObj(tuple(items)), i
        return RSet(tuple(v for v, _ in items)), i
    for word, value in ((b"set()", RSet(())), (b"null", None), (b"true", True), (b"false", False)):
        if t.startswith(word, i):
            return value, i + len(word)
    m = _NUMBER.match(t, i)
    if m and m.end() > i:
        return Num(m.group(0).decode()), m.end()
    raise BuiltinError(f"unexpected value text at {i}")


_NO_VALUE = object()


def _items(t: bytes, i: int, close: bytes) -> tuple[list[tuple[Any, Any]], int]:
    out: list[tuple[Any, Any]] = []
    i = _WS.match(t, i).end()  # type: ignore[union-attr]
    if t[i : i + 1] == close:
        return out, i + 1
    while True:
        key, i = _parse(t, _WS.match(t, i).end())  # type: ignore[union-attr]
        i = _WS.match(t, i).end()  # type: ignore[union-attr]
        value: Any = _NO_VALUE
        if close == b"}" and t[i : i + 1] == b":":
            value, i = _parse(t, _WS.match(t, i + 1).end())  # type: ignore[union-attr]
            i = _WS.match(t, i).end()  # type: ignore[union-attr]
        out.append((key, value))
        c = t[i : i + 1]
        if c == close:
            return out, i + 1
        if c != b",":
            raise BuiltinError(f"unexpected value text at {i}")
        i += 1


# ----------------------------------------------------------------------------------- Rego text of values
def _order(v: Any) -> tuple[Any, ...]:
    """Rego's order of values: null < boolean < number < string < array < object < set."""
    if v is None:
        return (0,)
    if isinstance(v, bool):
        return (1, v)
    if isinstance(v, Num):
        return (2, float(v.text))
    if isinstance(v, str):
        return (3, v.encode("utf-8"))
    if isinstance(v, list):
        return (4, tuple(_order(x) for x in v))
    if isinstance(v, dict):
        v = RObj(tuple(v.items()))
    if isinstance(v, RObj):
        return (5, tuple((_order(k), _order(x)) for k, x in sorted(v.items, key=lambda kv: _order(kv[0]))))
    if isinstance(v, RSet):
        return (6, tuple(sorted(_order(x) for x in v.items)))
    raise BuiltinError(f"unexpected value {v!r}")


def go_quote(s: str) -> str:
    """Go's strconv.Quote."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable() and code != 0xFFFD or ch == " ":
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def rego_text(v: Any) -> str:
    """ast.Value.String() of OPA."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Num):
        return v.text
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, list):
        return "[" + ", ".join(rego_text(x) for x in v) + "]"
    if isinstance(v, dict):
        v = RObj(tuple(v.items()))
    if isinstance(v, RObj):
        items = sorted(v.items, key=lambda kv: _order(kv[0]))
        return "{" + ", ".join(f"{rego_text(k)}: {rego_text(x)}" for k, x in items) + "}"
    if isinstance(v, RSet):
        if not v.items:
            return "set()"
        return "{" + ", ".join(rego_text(x) for x in sorted(v.items, key=_order)) + "}"
    raise BuiltinError(f"unexpected value {v!r}")


# ----------------------------------------------------------------------------------- sprintf (Go fmt)
_INT = re.compile(r"-?[0-9]+")
_VERB = re.compile(r"%([-+# 0]*)([0-9]+)?(?:\.([0-9]*))?(.)", re.S)


def _go_arg(v: Any) -> Any:
    """OPA's conversion of a sprintf argument: integer -> int, other number -> float, string -> str,
    anything else -> its Rego text (a string)."""
    if isinstance(v, Num):
        if _INT.fullmatch(v.text):
            return int(v.text)
        try:
            return float(v.text)
        except ValueError:  # pragma: no cover - _NUMBER only matches valid numbers
            return v.text
    if isinstance(v, str):
        return v
    return rego_text(v)


def _type_name(a: Any) -> str:
    return "string" if isinstance(a, str) else "int" if isinstance(a, int) else "float64"


def go_float_v(f: float) -> str:
    """Go's %v of a float64 (strconv 'g', shortest digits, exponent form below 1e-4 and from 1e21)."""
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if math.isnan(f):
        return "NaN"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    from decimal import Decimal

    sign, digits, exp = Decimal(repr(f)).normalize().as_tuple()
    assert isinstance(exp, int)
    ds = "".join(map(str, digits))
    x = len(ds) - 1 + exp  # the decimal exponent of the first digit
    s = "-" if sign else ""
    if x < -4 or x >= 21:
        body = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{s}{body}e{'-' if x < 0 else '+'}{abs(x):02d}"
    point = x + 1
    if point <= 0:
        return f"{s}0.{'0' * -point}{ds}"
    if point >= len(ds):
        return f"{s}{ds}{'0' * (point - len(ds))}"
    return f"{s}{ds[:point]}.{ds[point:]}"


def _value_v(a: Any) -> str:
    if isinstance(a, bool):  # pragma: no cover - _go_arg never yields booleans
        return "true" if a else "false"
    if isinstance(a, int):
        return str(a)
    if isinstance(a, float):
        return go_float_v(a)
    return str(a)


def _pad(text: str, flags: str, width: str | None, zero_ok: bool) -> str:
    if not width:
        return text
    w = int(width)
    if len(text) >= w:
        return text
    if "-" in flags:
        return text + " " * (w - len(text))
    if "0" in flags and zero_ok:
        sign = text[0] if text[:1] in "+-" else ""
        return sign + "0" * (w - len(text)) + text[len(sign):]
    return " " * (w - len(text)) + text


def _format(flags: str, width: str | None, prec: str | None, verb: str, a: Any) -> str:
    bad = f"%!{verb}({_type_name(a)}={_value_v(a)})"
    if verb in "sv" and isinstance(a, str) or verb == "v":
        text = _value_v(a)
        if prec is not None and isinstance(a, str):
            text = text[: int(prec or 0)]
        if verb == "v" and isinstance(a, (int, float)) and "+" in flags and not text.startswith("-"):
            text = "+" + text
        return _pad(text, flags, width, zero_ok=not isinstance(a, str))
    if verb == "s":
        return bad
    if verb == "d":
        if not isinstance(a, int):
            return bad
        text = str(a)
        if "+" in flags and a >= 0:
            text = "+" + text
        elif " " in flags and a >= 0:
            text = " " + text
        return _pad(text, flags, width, zero_ok=True)
    if verb == "q":
        if not isinstance(a, str):
            raise BuiltinError("sprintf: %q of a non-string is not supported by hcops' wasm engine")
        return _pad(go_quote(a), flags, width, zero_ok=False)
    if verb in "xX":
        if isinstance(a, str):
            text = a.encode("utf-8").hex()
        elif isinstance(a, int):
            text = format(a, "x")
        else:
            raise BuiltinError("sprintf: %x of a float is not supported by hcops' wasm engine")
        return _pad(text.upper() if verb == "X" else text, flags, width, zero_ok=True)
    if verb in "feEgG":
        if not isinstance(a, float):
            return bad
        spec = ("+" if "+" in flags else "") + ("." + (prec or "0") if prec is not None else (".6" if verb in "feE"
                                                                                              else "")) + verb
        text = format(a, spec)
        if verb in "gG" and prec is None:
            text = go_float_v(a)
        return _pad(text, flags, width, zero_ok=True)
    if verb == "t":
        return bad
    raise BuiltinError(f"sprintf: the verb %{verb} is not supported by hcops' wasm engine")


@functools.lru_cache(maxsize=512)
def _compile_format(fmt: str) -> tuple[tuple[str, tuple[str, str | None, str | None, str] | None], ...]:
    """``fmt`` as (literal text, verb or None) pieces; raises for what is not supported."""
    pieces: list[tuple[str, tuple[str, str | None, str | None, str] | None]] = []
    pos = 0
    literal: list[str] = []
    while True:
        at = fmt.find("%", pos)
        if at < 0:
            literal.append(fmt[pos:])
            break
        literal.append(fmt[pos:at])
        if fmt.startswith("%%", at):
            literal.append("%")
            pos = at + 2
            continue
        m = _VERB.match(fmt, at)
        if not m:
            literal.append("%!(NOVERB)")
            break
        flags, width, prec, verb = m.groups()
        if verb in "*[":
            raise BuiltinError("sprintf: argument indexes and * widths are not supported by hcops' wasm engine")
        pieces.append(("".join(literal), (flags, width, prec, verb)))
        literal = []
        pos = m.end()
    pieces.append(("".join(literal), None))
    return tuple(pieces)


def sprintf(fmt: Any, args: Any) -> str:
    if not isinstance(fmt, str):
        raise BuiltinError("sprintf: operand 1 must be string")
    if not isinstance(args, list):
        raise BuiltinError("sprintf: operand 2 must be array")
    values = [_go_arg(v) for v in args]
    out: list[str] = []
    used = 0
    for literal, spec in _compile_format(fmt):
        out.append(literal)
        if spec is None:
            continue
        flags, width, prec, verb = spec
        if used >= len(values):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = values[used]
        used += 1
        if verb == "s" and not flags and width is None and prec is None and isinstance(a, str):
            out.append(a)  # the common case
        else:
            out.append(_format(flags, width, prec, verb, a))
    if used < len(values):
        extra = ", ".join(f"{_type_name(a)}={_value_v(a)}" for a in values[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


