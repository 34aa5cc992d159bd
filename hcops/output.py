"""The one place that writes to the terminal. Core modules return data; this module shows it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

from hcops.errors import Diagnostic

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def text(message: str, *, err: bool = False, style: str | None = None) -> None:
    (stderr if err else stdout).print(message, style=style, markup=False)


def raw(content: str) -> None:
    """Exact text for machines (JSON, SARIF, XML): no wrapping, no markup."""
    sys.stdout.write(content if content.endswith("\n") else content + "\n")
    sys.stdout.flush()


def as_json(document: Any) -> None:
    raw(json.dumps(document, indent=2, sort_keys=False, default=str))


def table(t: Table) -> None:
    stdout.print(t)


def diagnostics(items: Iterable[Diagnostic]) -> None:
    for d in items:
        style = "red" if d.severity == "error" else "yellow"
        stderr.print(d.format(), style=style, markup=False, highlight=False)


def error(message: str, hint: str | None = None) -> None:
    stderr.print(f"error: {message}", style="bold red", markup=False)
    if hint:
        stderr.print(f"hint: {hint}", markup=False)


def diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    loc = d.location
    return {"severity": d.severity, "path": d.path, "message": d.message,
            "file": loc.file if loc else None, "line": loc.line if loc else None,
            "column": loc.column if loc else None}
