"""The one place that writes to the terminal, and that puts a report shown there into a file instead.
Core modules return data; this module shows it."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hcops.errors import Diagnostic

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table


# The consoles (and rich) load on first use: a command printing JSON for a pipeline does not need them.
@functools.cache
def _console(err: bool) -> Console:
    from rich.console import Console

    return Console(stderr=err, highlight=False, soft_wrap=True)


def _stdout() -> Console:
    return _console(False)


def _stderr() -> Console:
    return _console(True)


def text(message: str, *, err: bool = False, style: str | None = None) -> None:
    if style is None:  # plain text needs no rich (and no emoji codes replaced in it)
        stream = sys.stderr if err else sys.stdout
        stream.write(message + "\n")
        stream.flush()
        return
    _console(err).print(message, style=style, markup=False)


def raw(content: str) -> None:
    """Exact text for machines (JSON, SARIF, XML): no wrapping, no markup."""
    sys.stdout.write(content if content.endswith("\n") else content + "\n")
    sys.stdout.flush()


def as_json(document: Any) -> None:
    raw(json.dumps(document, indent=2, sort_keys=False, default=str))


def json_line(document: Any) -> None:
    """One event of a stream, one line each, for a consumer that reads line by line."""
    raw(json.dumps(document, default=str))


def text_file(content: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")


def table(t: Table) -> None:
    _stdout().print(t)


def diagnostics(items: Iterable[Diagnostic]) -> None:
    for d in items:
        style = "red" if d.severity == "error" else "yellow"
        _stderr().print(d.format(), style=style, markup=False, highlight=False)


def error(message: str, hint: str | None = None) -> None:
    _stderr().print(f"error: {message}", style="bold red", markup=False)
    if hint:
        _stderr().print(f"hint: {hint}", markup=False)


def diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    loc = d.location
    return {"severity": d.severity, "path": d.path, "message": d.message,
            "file": loc.file if loc else None, "line": loc.line if loc else None,
            "column": loc.column if loc else None}


def simple_table(columns: Iterable[str], rows: Iterable[Iterable[Any]], title: str | None = None) -> Table:
    """A plain rich table; ``None`` cells show as "-"."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for c in columns:
        t.add_column(c)
    for row in rows:
        t.add_row(*("-" if v is None else str(v) for v in row))
    return t


def wide_table(t: Table) -> None:
    """A table that, when not shown on a terminal, keeps its natural width (no truncated cells)."""
    from rich.console import Console
    from rich.measure import Measurement

    out = _stdout()
    need = Measurement.get(out, out.options.update_width(10_000), t).maximum
    if out.is_terminal or need <= out.width:
        out.print(t)
    else:  # piped or captured: keep every cell whole
        Console(highlight=False, soft_wrap=True, width=need, file=sys.stdout).print(t)


def table_file(t: Table, path: Path) -> None:
    """A table written to a file, 200 columns wide: no terminal gives a file its width."""
    from rich.console import Console

    path.parent.mkdir(parents=True, exist_ok=True)  # as the other formats do
    with path.open("w", encoding="utf-8") as fh:
        Console(file=fh, width=200, highlight=False, soft_wrap=True).print(t)


class ConsoleReporter:
    """A ``hcops.progress.Reporter`` on stderr: one line per step, counted progress when it moves."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or _stderr()
        self._last: dict[str, tuple[int, int, str]] = {}

    def step(self, message: str) -> None:
        self.console.print(f"==> {message}", markup=False, highlight=False)

    def update(self, task: str, completed: int, total: int, detail: str = "") -> None:
        if self._last.get(task, (-1, -1, ""))[:2] == (completed, total):
            return
        self._last[task] = (completed, total, detail)
        extra = f" ({detail})" if detail else ""
        self.console.print(f"    {task}: {completed}/{total}{extra}", markup=False, highlight=False)

    def warn(self, message: str) -> None:
        self.console.print(f"warning: {message}", style="yellow", markup=False, highlight=False)
