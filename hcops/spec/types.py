"""Field types of the spec: names, durations, quantities, image references. Each parses once, here."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer
from pydantic_core import PydanticCustomError

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CHAIN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}
_MEM_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
               "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_MEM = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m)?$")
IMAGE_REF = re.compile(
    r"^(?P<repository>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$")


def _got(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else f'"{value}"'


def _dns_label(value: str) -> str:
    if len(value) > 63 or not DNS1123_LABEL.match(value):
        raise PydanticCustomError(
            "dns1123", 'expected a DNS-1123 label (lowercase letters, digits and "-", at most 63, '
            "starting and ending with a letter or digit), got {got}", {"got": _got(value)})
    return value


def _chain_id(value: str) -> str:
    if not CHAIN_ID.match(value):
        raise PydanticCustomError("chain_id", "expected a chain id of 1 to 50 letters, digits, '.', '_' or '-'"
                                  " starting with a letter or digit, got {got}", {"got": _got(value)})
    return value


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
    m = _MEM.match(text)
    if not m:
        raise ValueError(text)
    return int(Decimal(m.group(1)) * _MEM_SUFFIX[m.group(2) or ""])


def cpu_millis(text: str) -> int:
    m = _CPU.match(text)
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
    if not isinstance(value, str) or not IMAGE_REF.match(value):
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
        m = IMAGE_REF.match(text)
        if not m:
            raise ValueError(text)
        return cls(m.group("repository"), m.group("tag"), m.group("digest"))


Name = Annotated[str, AfterValidator(_dns_label)]
ChainId = Annotated[str, AfterValidator(_chain_id)]
Duration = Annotated[dt.timedelta, BeforeValidator(_duration), PlainSerializer(format_duration, return_type=str)]
Memory = Annotated[str, BeforeValidator(_quantity("memory"))]
Cpu = Annotated[str, BeforeValidator(_quantity("cpu"))]
PositiveInt = Annotated[int, BeforeValidator(_positive_int)]
Image = Annotated[str, BeforeValidator(_image)]
