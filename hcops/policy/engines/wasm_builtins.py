"""Built-in functions the OPA Wasm target leaves to the host, implemented as OPA (Go) does them.

``opa build -t wasm`` compiles most built-ins into the module; the others become imports that the
host must provide (the module lists them in its ``builtins()`` export). The policies hcops ships need
three: ``sprintf``, ``regex.split`` and ``time.parse_duration_ns``. A module calling any other
host built-in is refused before it is evaluated (hcops.policy.engines.wasm_runtime).

These are strict, like the other engines (``strict-builtin-errors``): a bad argument raises
BuiltinError, which stops the evaluation; a format that this implementation of Go's ``fmt`` does not
cover raises too, rather than print something OPA would not.

Values arrive as Python values (hcops.policy.engines.wasm_fmt: strings, ``Num``, lists, dicts, ``RObj``,
``RSet``); ``sprintf`` (Go's fmt) is in hcops.policy.engines.wasm_fmt too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hcops.policy.engines.wasm_fmt import BuiltinError, Num, RObj, RSet, go_quote, parse_value_dump, sprintf

__all__ = ["HOST_BUILTINS", "BuiltinError", "Num", "RObj", "RSet", "parse_duration_ns", "parse_value_dump",
           "regex_split", "sprintf"]


# ----------------------------------------------------------------------------------- regex.split
def regex_split(pattern: Any, value: Any) -> list[str]:
    if not isinstance(pattern, str):
        raise BuiltinError("regex.split: operand 1 must be string")
    if not isinstance(value, str):
        raise BuiltinError("regex.split: operand 2 must be string")
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise BuiltinError(f"regex.split: invalid regular expression: {exc}") from None
    if pattern and not value:
        return [""]
    out: list[str] = []
    beg = end = 0
    last_end = -1
    for m in rx.finditer(value):
        if m.start() == m.end() and m.start() == last_end:
            continue  # Go skips an empty match right after the previous match
        last_end = m.end()
        end = m.start()
        if m.end() != 0:
            out.append(value[beg:end])
        beg = m.end()
    if end != len(value):
        out.append(value[beg:])
    return out


# ----------------------------------------------------------------------------------- time.parse_duration_ns
_UNITS = {"ns": 1, "us": 10**3, "\u00b5s": 10**3, "\u03bcs": 10**3, "ms": 10**6, "s": 10**9,
          "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_duration_ns(text: Any) -> int:
    """Go's time.ParseDuration."""
    if not isinstance(text, str):
        raise BuiltinError("time.parse_duration_ns: operand 1 must be string")
    invalid = BuiltinError(f"time: invalid duration {go_quote(text)}")
    s = text
    neg = False
    if s[:1] in ("-", "+"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise invalid
    total = 0
    while s:
        if not (s[0] == "." or s[0].isascii() and s[0].isdigit()):
            raise invalid
        m = re.match(r"[0-9]*", s)
        assert m is not None
        pre = bool(m.group(0))
        whole = int(m.group(0) or "0")
        if whole > (1 << 63):
            raise invalid
        s = s[m.end():]
        frac_digits = ""
        post = False
        if s[:1] == ".":
            m = re.match(r"[0-9]*", s[1:])
            assert m is not None
            frac_digits = m.group(0)
            post = bool(frac_digits)
            s = s[1 + m.end():]
        if not pre and not post:
            raise invalid
        i = 0
        while i < len(s) and not (s[i] == "." or s[i].isascii() and s[i].isdigit()):
            i += 1
        if i == 0:
            raise BuiltinError(f"time: missing unit in duration {go_quote(text)}")
        unit_name, s = s[:i], s[i:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise BuiltinError(f"time: unknown unit {go_quote(unit_name)} in duration {go_quote(text)}")
        if whole > (1 << 63) // unit:
            raise invalid
        v = whole * unit
        if frac_digits:
            f, scale = 0, 1.0
            for ch in frac_digits:
                if f > ((1 << 63) - 1) // 10:
                    break  # Go stops accumulating, keeps consuming
                f, scale = f * 10 + int(ch), scale * 10
            v += int(float(f) * (float(unit) / scale))
            if v > (1 << 63):
                raise invalid
        total += v
        if total > (1 << 63):
            raise invalid
    if neg:
        return -total
    if total > (1 << 63) - 1:
        raise invalid
    return total


HOST_BUILTINS: dict[str, Callable[..., Any]] = {
    "sprintf": sprintf,
    "regex.split": regex_split,
    "time.parse_duration_ns": parse_duration_ns,
}
