#!/usr/bin/env python3
"""Hostile and large YAML through `hcops validate`, next to ruamel.yaml's safe loader on the same bytes.

    python bench/yaml_limits.py [--repeat 3] [--anchor-timeout 30] [--anchor-memory-mb 2048] [--write-results]

Each case is a file written into a temp folder (about 1 MB, or as large as its shape needs):

    small spec            4 organizations: interpreter start-up and imports, for scale
    plain spec, 1 MB      a valid spec, 2,000 organizations of 10 nodes (118,000 values and keys)
    spec, aliases         a valid spec of 10,000 nodes whose resources and storage are aliases (`*r`, `*s`)
    fan-out < limit       one anchored list of 1,000 items used until just under MAX_NODES once expanded
                          (read, then refused by the schema: unknown top-level keys)
    alias bomb 9^9, 1 MB  a 9-level alias bomb of 9-item lists (9^9 values) inside a 1 MB valid spec
    nesting at the limit  lists nested to level MAX_DEPTH under `spec` (read, then refused by the schema)
    values 100 deep       a list 100 levels down with values just under MAX_PATH_STEPS
    nesting 500,000       1 MB of `[` (PyYAML's C composer used to overflow the C stack on this)
    flat list 500,000     `[a,a,a,...]`, 1 MB: over MAX_NODES without any alias, refused while composed
    block list < limit    `- 0` lines just under MAX_NODES: the most values a plain document may build

hcops: `python -m hcops validate -f FILE` as a subprocess: wall time and CPU time (user + system; best
of --repeat; CPU time says more than wall time on a busy machine) and peak RSS (ru_maxrss of a fresh
wrapper process's only child, so each number is that one run's). Anchors: the same file read by
ruamel.yaml's safe loader (`YAML(typ="safe")`, pure Python here: no ruamel.yaml.clib) and by PyYAML's
`yaml.load(f, Loader=yaml.CSafeLoader)` (libyaml), each in a child capped at --anchor-timeout seconds and
--anchor-memory-mb of address space, one run each: "loaded" / the exception / "timeout" / "crashed".

--write-results replaces (or appends) the "## yaml limits" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hcops.spec.limits import MAX_DEPTH, MAX_NODES, MAX_PATH_STEPS  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## yaml limits"
MB = 1_000_000

# Runs one command and reports its exit status, wall time and peak RSS: a fresh process per measurement,
# because RUSAGE_CHILDREN's ru_maxrss is the largest of all children a process ever waited for.
_MEASURE = r"""
import json, resource, subprocess, sys, time
timeout, memory = float(sys.argv[1]), int(sys.argv[2])
def cap():
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
start = time.perf_counter()
try:
    p = subprocess.run(sys.argv[3:], capture_output=True, timeout=timeout, preexec_fn=cap)
    out = {"rc": p.returncode, "out": (p.stdout + p.stderr).decode("utf-8", "replace")[-4000:]}
except subprocess.TimeoutExpired:
    out = {"rc": None, "out": ""}
out["wall"] = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
out["rss_mb"] = usage.ru_maxrss / 1024
out["cpu"] = usage.ru_utime + usage.ru_stime
print(json.dumps(out))
"""

_ANCHOR = r"""
import sys
try:
    with open(sys.argv[2], encoding="utf-8") as f:
        if sys.argv[1] == "ruamel":
            from ruamel.yaml import YAML
            YAML(typ="safe").load(f)
        else:
            import yaml
            yaml.load(f, Loader=yaml.CSafeLoader)
except BaseException as exc:
    print(f"{type(exc).__name__}: {str(exc)[:200]}")
    sys.exit(1)
print("loaded")
"""


@dataclass
class Run:
    rc: int | None
    out: str
    wall: float
    rss_mb: float
    cpu: float


def measure(cmd: list[str], timeout: float, memory_mb: int = 0, cwd: Path | None = None) -> Run:
    p = subprocess.run([sys.executable, "-c", _MEASURE, str(timeout), str(memory_mb * 1024 * 1024), *cmd],
                       capture_output=True, text=True, cwd=cwd, check=True)
    return Run(**json.loads(p.stdout))


def _org(i: int, nodes: int, node: Callable[[int, int], str]) -> str:
    lines = [f"    - name: org-{i}", "      role: provider", "      nodes:"]
    lines += [f"        - {node(i, k)}" for k in range(nodes)]
    return "\n".join(lines) + "\n"


def _header(extra: str = "") -> str:
    return ("apiVersion: hcops/v1alpha1\nkind: Consortium\nmetadata: {name: bench-yaml}\n" + extra + "spec:\n"
            '  chain: {version: "0.38.17", image: "hcops/cometbft:0.38.17", chainId: bench-1}\n'
            "  organizations:\n")


def _plain_node(i: int, k: int) -> str:
    return f"{{name: n-{i}-{k}, role: validator, power: 10}}" if k == 0 else f"{{name: n-{i}-{k}, role: observer}}"


def _aliased_node(i: int, k: int) -> str:
    if i == k == 0:
        return _plain_node(i, k)[:-1] + ", resources: &r {cpu: 250m, memory: 256Mi}, storage: &s {size: 10Gi}}"
    return _plain_node(i, k)[:-1] + ", resources: *r, storage: *s}"


def _spec(node: Callable[[int, int], str], *, size: int = 0, orgs: int = 0, extra: str = "") -> str:
    parts, total, i = [_header(extra)], 0, 0
    while (total < size) if size else (i < orgs):
        parts.append(_org(i, 10, node))
        total += len(parts[-1])
        i += 1
    return "".join(parts)


def _bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["x-lol:", "  a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def cases() -> dict[str, str]:
    fan_uses = (MAX_NODES - 5000) // 1001
    deep = 100
    deep_items = MAX_PATH_STEPS // (deep + 1) - 1000
    return {
        "small spec (start-up)": _spec(_plain_node, orgs=4),
        "plain spec, 1 MB": _spec(_plain_node, size=MB),
        "spec, aliases (10,000 nodes)": _spec(_aliased_node, orgs=1000),
        f"fan-out < limit ({fan_uses} x 1,000)": _header() + "    - name: org-0\n      role: provider\n"
        + "x-items: &items [" + ", ".join(["item"] * 1000) + "]\n"
        + "x-fan-out: [" + ", ".join(["*items"] * fan_uses) + "]\n",
        "alias bomb 9^9, 1 MB": _spec(_plain_node, size=MB - 1000, extra=_bomb()),
        f"nesting at the limit ({MAX_DEPTH})": _spec(_plain_node, orgs=4).replace(
            "spec:\n", "spec:\n  x-deep: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"),
        f"{deep_items:,} values {deep} deep": "x: " + "[" * deep + ",".join(["0"] * deep_items) + "]" * deep + "\n",
        "nesting 500,000, 1 MB": "[" * (MB // 2) + "]" * (MB // 2),
        "flat list 500,000, 1 MB": "[" + ",".join(["a"] * (MB // 2 - 1)) + "]\n",
        f"block list {MAX_NODES - 1000:,} < limit": "".join(f"- {i % 10}\n" for i in range(MAX_NODES - 1000)),
    }


def _verdict(run: Run, ok_word: str) -> str:
    if run.rc is None:
        return "timeout"
    if run.rc < 0:
        return f"crashed ({signal.Signals(-run.rc).name})"
    if run.rc == 0:
        return ok_word
    lines = [ln for ln in run.out.splitlines() if ln.strip()]
    return f"exit {run.rc}: " + (lines[0] if lines else "")


def _short_error(run: Run) -> str:
    if run.rc is None or run.rc <= 0:
        return _verdict(run, "valid")
    first = next((ln for ln in run.out.splitlines() if ": error: " in ln or "error:" in ln), "")
    msg = first.split("error: ", 1)[-1]
    where = first.split(": error: ", 1)[0].rsplit("/", 1)[-1] if ": error: " in first else ""
    return f"exit {run.rc}: {where} {msg[:60]}".rstrip()


def _anchor(loader: str, path: Path, args: Any) -> str:
    run = measure([sys.executable, "-c", _ANCHOR, loader, str(path)], args.anchor_timeout, args.anchor_memory_mb)
    if run.rc == 1 and "MemoryError" in run.out:
        word = f"killed (MemoryError at the {args.anchor_memory_mb} MB cap)"
    elif run.rc == 1:
        word = run.out.strip().splitlines()[-1].split(":")[0]
    else:
        word = _verdict(run, "loaded")
    return f"{word}, {run.wall:.2f} s, {run.rss_mb:.0f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--anchor-timeout", type=float, default=30.0)
    ap.add_argument("--anchor-memory-mb", type=int, default=2048)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()

    rows: list[list[str]] = []
    args.load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, text in cases().items():
            path = work / (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".yaml")
            path.write_text(text, encoding="utf-8")
            runs = [measure([sys.executable, "-m", "hcops", "validate", "-f", path.name], 60, cwd=work)
                    for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r.wall)
            anchors = [_anchor(loader, path, args) for loader in ("ruamel", "pyyaml")]
            rows.append([name, f"{len(text.encode()) / MB:.2f}", _short_error(best), f"{best.wall:.2f}",
                         f"{min(r.cpu for r in runs):.2f}", f"{max(r.rss_mb for r in runs):.0f}", *anchors])
            print(name, rows[-1][2:], flush=True)

    headers = ["case", "MB", "hcops validate", "hcops s", "hcops CPU s", "hcops RSS MB",
               "ruamel.yaml safe load", "PyYAML C safe_load"]
    table = Table(*headers, title=f"YAML limits (MAX_DEPTH {MAX_DEPTH}, MAX_NODES {MAX_NODES:,}, "
                                  f"MAX_PATH_STEPS {MAX_PATH_STEPS:,})")
    for row in rows:
        table.add_row(*row)
    Console(width=200).print(table)
    if args.write_results:
        _write_results(headers, rows, args)


def _verdict_on(rows: list[list[str]], column: int, limit: float, unit: str) -> str:
    over = [row[0] for row in rows if float(row[column]) >= limit]
    worst = max(float(row[column]) for row in rows)
    return (f"missed for {'; '.join(over)}" if over else "met") + f" (largest {worst:g} {unit})"


def _write_results(headers: list[str], rows: list[list[str]], args: Any) -> None:
    command = (f"python bench/yaml_limits.py --repeat {args.repeat} --anchor-timeout {args.anchor_timeout:g} "
               f"--anchor-memory-mb {args.anchor_memory_mb} --write-results")
    md = [SECTION, "", f"Command: `{command}` (Python {platform.python_version()}, {platform.machine()}, "
          "shared 2-core VM; hcops: best of the repeats, peak RSS the largest; anchors: one run each). The "
          "anchors only load: they share an aliased value between its uses instead of copying it, so the alias "
          "bomb costs them nothing until something walks the result (json.dumps, a schema, hcops' positions).",
          "",
          "| " + " | ".join(headers) + " |", "|---|---:|---|---:|---:|---:|---|---|"]
    md += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    md += ["", "Target, every case read or refused by `hcops validate` in < 2 s and < 200 MB: "
           f"RSS {_verdict_on(rows, 5, 200, 'MB')}; CPU time {_verdict_on(rows, 4, 2, 's')}; wall time "
           f"{_verdict_on(rows, 3, 2, 's')}, with a load average of {args.load:.1f}-{os.getloadavg()[0]:.1f} on "
           f"the 2 cores while measuring (the small spec's start-up alone took {rows[0][3]} s)."]
    block = "\n".join(md) + "\n"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    if SECTION in text:
        head, _, rest = text.partition(SECTION)
        nxt = rest.find("\n## ")
        text = head + block + ("\n" + rest[nxt + 1:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
