"""Spec field paths as text (``spec.organizations[1].nodes[0].power``) and back."""

from __future__ import annotations

import re

from hcops.spec.source import PathKey

_PART = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def parse_path(text: str) -> PathKey:
    out: list[str | int] = []
    for m in _PART.finditer(text):
        out.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
    return tuple(out)
