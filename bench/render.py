#!/usr/bin/env python3
"""Validate + render time by network size.

    python bench/render.py [--sizes 10,100,1000,5000] [--repeat 3] [--write-results]

For each size a spec is generated into a temp folder: ceil(n/10) organizations (at least 4), each with one
validator (power 10) and the rest of the nodes as observers spread round-robin. Keys are generated once,
untimed (they are made once per network in real use too). Then, in-process, best of --repeat:

    load      load_spec: YAML with source positions, overlay, models, validation rules
    plan      build_plan: keys read back from the state folder, genesis, addresses
    render    render_targets(docker, kubernetes, ansible) into an empty folder
    re-render the same again into the now populated folder (unchanged files are not rewritten)
    input     hcops.policy.input.build_input: the policy gate's input document

--write-results replaces the "## render" section of bench/RESULTS.md with the table and the command.
"""

from __future__ import annotations

import argparse
import math
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hcops.plan.desired import build_plan  # noqa: E402
from hcops.policy.input import build_input  # noqa: E402
from hcops.render import TARGETS, render_targets  # noqa: E402
from hcops.spec.loader import load_spec  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
MEMORY = Path("/dev/shm")
SECTION = "## render"


def spec_text(nodes: int) -> str:
    orgs = max(4, math.ceil(nodes / 10))
    members: list[list[str]] = [[] for _ in range(orgs)]
    for i in range(nodes):
        o = i % orgs
        role = "validator, power: 10" if not members[o] else "observer"
        members[o].append(f"        - {{name: node-{i}, role: {role}}}")
    lines = ["apiVersion: hcops/v1alpha1", "kind: Consortium", f"metadata: {{name: bench-{nodes}}}", "spec:",
             '  chain: {version: "0.38.17", image: "hcops/cometbft:0.38.17", chainId: bench-1}',
             "  organizations:"]
    for o, names in enumerate(members):
        lines += [f"    - name: org-{o}", "      role: provider",
                  "      nodes:" if names else "      nodes: []", *names]
    return "\n".join(lines) + "\n"


def best(repeat: int, func: Callable[[], Any]) -> tuple[float, Any]:
    return best_cpu(repeat, func)[0::2]


def best_cpu(repeat: int, func: Callable[[], Any]) -> tuple[float, float, Any]:
    """Best wall time, best CPU time (user + system, all threads of this process) and the result."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = func()
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - w0)
    return min(walls), min(cpus), result


def run_size(nodes: int, repeat: int, work: Path) -> dict[str, Any]:
    folder = work / f"n{nodes}"
    folder.mkdir()
    spec = folder / "network.yaml"
    spec.write_text(spec_text(nodes))
    state = folder / "state"
    build_plan(load_spec(spec), state)  # keys, untimed
    t_load, loaded = best(repeat, lambda: load_spec(spec))
    t_plan, plan = best(repeat, lambda: build_plan(loaded, state))

    counter = iter(range(10**6))

    def fresh() -> list[Path]:
        out = folder / f"out-{next(counter)}"
        files = render_targets(plan, TARGETS, out)
        return files

    t_render, c_render, files = best_cpu(repeat, fresh)
    out = folder / "out-0"
    t_rerender, _ = best(repeat, lambda: render_targets(plan, TARGETS, out))
    t_input, c_input, _ = best_cpu(repeat, lambda: build_input(plan))
    size = sum(f.stat().st_size for f in files)
    for extra in folder.glob("out-*"):
        shutil.rmtree(extra)
    t_memory = float("nan")
    if MEMORY.is_dir():  # the same render into tmpfs: what is left without the disk's file-system work
        with tempfile.TemporaryDirectory(prefix="hcops-bench-render-", dir=MEMORY) as mem:
            memory_counter = iter(range(10**6))
            t_memory, _ = best(repeat, lambda: render_targets(plan, TARGETS,
                                                              Path(mem) / str(next(memory_counter))))
    return {"nodes": nodes, "load": t_load, "plan": t_plan, "render": t_render, "rerender": t_rerender,
            "input": t_input, "render_cpu": c_render, "input_cpu": c_input, "memory": t_memory,
            "files": len(files), "mb": size / 1e6}


def table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="hcops validate + render (seconds, best of N)")
    for col in COLUMNS:
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(*cells(r))
    return t


COLUMNS = ("nodes", "load", "plan", "render", "render CPU", "re-render", "render to tmpfs", "input",
           "input CPU", "render+input", "load+plan+render", "files", "MB")


def cells(r: dict[str, Any]) -> list[str]:
    seconds = [r["load"], r["plan"], r["render"], r["render_cpu"], r["rerender"], r["memory"], r["input"],
               r["input_cpu"], r["render"] + r["input"], r["load"] + r["plan"] + r["render"]]
    return [str(r["nodes"]), *(f"{v:.3f}" for v in seconds), str(r["files"]), f"{r['mb']:.1f}"]


def markdown(rows: list[dict[str, Any]], command: str, repeat: int) -> str:
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---:|" * len(COLUMNS) + "\n"
    body = "".join("| " + " | ".join(cells(r)) + " |\n" for r in rows)
    return (f"{SECTION}\n\nCommand: `{command}` (best of {repeat}, seconds; Python "
            f"{platform.python_version()}, {platform.machine()}, shared 2-core VM).\n\n{head}{body}\n{NOTES}")


NOTES = """\
- Specs: ceil(n/10) organizations with one validator each, the other nodes observers (5,000 nodes: 500
  validators, 4,500 observers). Keys exist before timing (they are made once per network).
- load = `load_spec`, plan = `build_plan`, render = `render_targets` of docker, kubernetes and ansible into
  an empty folder on this VM's disk (ext4, shared with other builds); render CPU = user + system time of the
  process, writer threads included; re-render = the same into the populated folder (files compared, none
  rewritten); render to tmpfs = the same render into /dev/shm; input = `hcops.policy.input.build_input` (the
  provider's manifests: Docker for these specs).
- Peers: above 24 nodes each node lists a bounded set of persistent peers (hcops/plan/topology.py: the
  validator mesh while there are at most 24 validators, plus nodes 1, 2, 4, ... places ahead), 13 to 22
  per node at 5,000 nodes. A full mesh would be O(n^2): about 300 KB of config.toml per node and 1.5 GB
  per target at 5,000 nodes; and CometBFT's 40 inbound connections per node stop a full mesh from working
  beyond about 80 nodes anyway.
- Growth is close to linear for hcops' own work (render to tmpfs, input). On disk, 5,000 nodes are 45,012
  files in 20,000 folders, and creating them is kernel file-system time that varies from run to run on this
  shared VM (a bare Python loop creating the same entries took about 8 s of CPU here).
"""


def write_results(section: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        RESULTS.write_text(text.rstrip("\n") + "\n\n" + section)
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    RESULTS.write_text("".join(lines[:start]) + section + ("\n" + tail if tail else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,100,1000,5000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    console = Console()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hcops-bench-render-") as tmp:
        for n in sizes:
            rows.append(run_size(n, args.repeat, Path(tmp)))
            console.log(f"{n} nodes done")
    console.print(table(rows))
    if args.write_results:
        command = "python bench/render.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_results(markdown(rows, command.strip(), args.repeat))
        console.print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
