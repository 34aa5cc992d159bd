"""Field types of the spec: names, durations, quantities, image references. Each parses once, here.

Every pattern is anchored with ``\\A``/``\\Z`` and applied with ``fullmatch``: ``$`` also matches before a
trailing newline, which would let ``"net\\n"`` through as a name. Digits and word characters are ASCII only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, GetCoreSchemaHandler, GetJsonSchemaHandler, PlainSerializer
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from hcops.spec.diagnostics import UNSAFE_CHARS, quote

DNS1123_LABEL = re.compile(r"\A[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
DNS1123_SUBDOMAIN = re.compile(r"\A[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
CHAIN_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,49}\Z")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}
_MEM_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
               "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_MEM = re.compile(r"\A([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?\Z")
_CPU = re.compile(r"\A([0-9]+(?:\.[0-9]+)?)(m)?\Z")
IMAGE_REF = re.compile(
    r"\A(?P<repository>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>\w[\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?\Z", re.ASCII)
# A CORS origin as browsers send it: scheme://host[:port], nothing after. CometBFT's CORS library reads one
# "*" inside an origin as a wildcard ("https://*.example.com", even "h*"), so only a lone "*" may hold one.
_ORIGIN = re.compile(r"\A(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)"
                     r"(?::(?P<port>[0-9]{1,5}))?\Z")
_HOST_LABEL = re.compile(r"\A[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")


def _got(value: Any) -> str:
    return quote(value) if isinstance(value, str) else repr(value)


def _dns_label(value: str) -> str:
    if len(value) > 63 or not DNS1123_LABEL.fullmatch(value):
        raise PydanticCustomError(
            "dns1123", 'expected a DNS-1123 label (lowercase letters, digits and "-", at most 63, '
            "starting and ending with a letter or digit), got {got}", {"got": _got(value)})
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not DNS1123_SUBDOMAIN.fullmatch(value):
        raise PydanticCustomError(
            "dns1123_subdomain", 'expected a DNS-1123 subdomain (lowercase letters, digits, "-" and ".", at '
            "most 253), got {got}", {"got": _got(value)})
    return value


def _chain_id(value: str) -> str:
    if not CHAIN_ID.fullmatch(value):
        raise PydanticCustomError("chain_id", "expected a chain id of 1 to 50 letters, digits, '.', '_' or '-'"
                                  " starting with a letter or digit, got {got}", {"got": _got(value)})
    return value


@dataclass(frozen=True)
class Matching:
    """``Annotated[str, Matching(pattern, expected)]``: the whole string must match ``pattern``."""

    pattern: str
    expected: str

    def check(self, value: str) -> str:
        if not re.fullmatch(self.pattern, value, re.ASCII):
            raise PydanticCustomError("pattern", f"expected {self.expected}, got {{got}}", {"got": _got(value)})
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        out = handler(schema)
        out["pattern"] = f"^(?:{self.pattern})$"
        return out


@dataclass(frozen=True)
class Text:
    """``Annotated[str, Text()]``: free text (a contact, a label) that is printable, so that it can rewrite
    neither a terminal nor a rendered file, and of bounded length."""

    min_length: int = 0
    max_length: int = 256

    def check(self, value: str) -> str:
        if UNSAFE_CHARS.search(value):
            raise PydanticCustomError("text", "expected text without control or bidirectional formatting "
                                      "characters, got {got}", {"got": _got(value)})
        if not self.min_length <= len(value) <= self.max_length:
            raise PydanticCustomError("text_length", f"expected {self.min_length} to {self.max_length} "
                                      f"characters, got {len(value)}", {})
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        out = handler(schema)
        out.update(minLength=self.min_length, maxLength=self.max_length)
        return out


def _origin(value: str) -> str:
    if value == "*":
        return value  # any origin: valid for CometBFT, denied by the gate (HC-AC1-CORS-WILDCARD)
    if "*" in value:
        raise PydanticCustomError(
            "origin_wildcard", 'expected an exact origin; a "*" inside an origin is a wildcard for CometBFT '
            '(only a lone "*", which the gate denies, may hold one), got {got}', {"got": _got(value)})
    m = _ORIGIN.fullmatch(value)
    if not m or not _origin_host(m.group("host")) or (m.group("port") and not 0 < int(m.group("port")) < 65536):
        raise PydanticCustomError(
            "origin", 'expected an origin scheme://host[:port] such as "https://portal.example" (no path), '
            "got {got}", {"got": _got(value)})
    return value


def _origin_host(host: str) -> bool:
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in host.split("."))


def parse_duration_ns(text: str) -> int:
    """Go-style durations: ``1s``, ``500ms``, ``1m30s``."""
    pos, total = 0, Decimal(0)
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += Decimal(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(text)
    return int(total)


def format_duration(value: dt.timedelta) -> str:
    """Shortest Go-style form, for CometBFT's config (``1s``, ``500ms``, ``1m30s``)."""
    ns = int(value / dt.timedelta(microseconds=1)) * 1000
    if ns == 0:
        return "0s"
    parts: list[str] = []
    for unit in ("h", "m", "s"):
        size = _UNIT_NS[unit]
        if ns >= size:
            count, ns = divmod(ns, size)
            parts.append(f"{count}{unit}")
    if ns:
        parts.append(f"{ns // 1_000_000}ms" if ns % 1_000_000 == 0 else f"{ns // 1000}us")
    return "".join(parts)


def _duration(value: Any) -> Any:
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, str):
        try:
            ns = parse_duration_ns(value.strip())
        except ValueError:
            pass
        else:
            if ns <= 0:
                raise PydanticCustomError("duration", "expected a positive duration, got {got}",
                                          {"got": _got(value)})
            return dt.timedelta(microseconds=ns / 1000)
    raise PydanticCustomError("duration", 'expected a duration such as "1s", "500ms" or "1m30s", got {got}',
                              {"got": _got(value)})


def memory_bytes(text: str) -> int:
    m = _MEM.fullmatch(text)
    if not m:
        raise ValueError(text)
    return int(Decimal(m.group(1)) * _MEM_SUFFIX[m.group(2) or ""])


def cpu_millis(text: str) -> int:
    m = _CPU.fullmatch(text)
    if not m:
        raise ValueError(text)
    amount = Decimal(m.group(1))
    return int(amount if m.group(2) else amount * 1000)


def _quantity(kind: str) -> Any:
    def check(value: Any) -> str:
        text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        try:
            if not isinstance(text, str):
                raise ValueError
            amount = memory_bytes(text) if kind == "memory" else cpu_millis(text)
            if amount <= 0:
                raise ValueError
        except (ValueError, InvalidOperation):
            example = '"512Mi" or "10Gi"' if kind == "memory" else '"500m" or "2"'
            raise PydanticCustomError("quantity", f"expected a positive {kind} quantity such as {example},"
                                      " got {got}", {"got": _got(value)}) from None
        return text
    return check


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PydanticCustomError("positive_int", "expected a positive integer, got {got}", {"got": _got(value)})
    return value


def _image(value: Any) -> str:
    if not isinstance(value, str) or not IMAGE_REF.fullmatch(value):
        raise PydanticCustomError(
            "image_ref", "expected an image reference such as \"cometbft/cometbft:v0.38.17\" or "
            "\"repo@sha256:<64 hex>\", got {got}", {"got": _got(value)})
    return value


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        m = IMAGE_REF.fullmatch(text)
        if not m:
            raise ValueError(text)
        return cls(m.group("repository"), m.group("tag"), m.group("digest"))


Name = Annotated[str, AfterValidator(_dns_label)]
Subdomain = Annotated[str, AfterValidator(_dns_subdomain)]
Origin = Annotated[str, AfterValidator(_origin)]
ChainId = Annotated[str, AfterValidator(_chain_id)]
Duration = Annotated[dt.timedelta, BeforeValidator(_duration), PlainSerializer(format_duration, return_type=str)]
Memory = Annotated[str, BeforeValidator(_quantity("memory"))]
Cpu = Annotated[str, BeforeValidator(_quantity("cpu"))]
PositiveInt = Annotated[int, BeforeValidator(_positive_int)]
Image = Annotated[str, BeforeValidator(_image)]
