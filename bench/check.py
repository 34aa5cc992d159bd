#!/usr/bin/env python3
"""`hcops check` wall time by network size, on every policy engine, against conftest.

    python bench/check.py [--sizes 10,100,1000,5000] [--providers docker,kubernetes] [--repeat 3]
                          [--embedded-budget 60] [--write-results]

For each provider and size a spec is generated into a temp folder (the same generator as
bench/render.py: ceil(n/10) organizations, at least 4, one validator each, the rest observers; every
organization with a signed BAA, audit and backups configured as in the example, so that the gate
evaluates every rule on a compliant network; `spec.provider.type` as given). Keys are made once,
untimed. Then, best of --repeat, each `hcops check -f SPEC --format json` end to end as a subprocess
(interpreter start, spec load, plan, manifests, input document, evaluation, findings, audit record):

    default   no engine flag and no HCOPS_ENGINE/HCOPS_OPA_URL in the environment: what a user gets
              (`--engine auto`; the engine it chose is printed beside the time)
              (at 1,000 nodes and more: opa-managed, the OPA binary as a private server that hcops
              starts while it builds the input document and stops at the end of the command)
    wasm      `--engine wasm`: the shipped pack compiled to WebAssembly, in-process (wasmtime)
    opa       `--engine opa`: the OPA binary run one-shot by hcops (`opa eval`)
    embedded  `--engine embedded` (regopy); a run is stopped at --embedded-budget seconds, and larger
              sizes are skipped once a run took more than half the budget or failed (regopy stops at
              its statement limit)
    server    `--opa-url URL`: a real OPA server started on 127.0.0.1 once for the whole run, which
              keeps the pack between checks (a CI job that starts one server for several checks)
    conftest  `conftest test --all-namespaces -p pack input.json` on the same input document (written
              once by hcops.policy.input.build_input, untimed), same built-in pack; run alternately with
              the default check (default, conftest, default, conftest, ...)
    opa eval  `opa eval` of the same pack on the same input (no hcops around it), for reference

and the ratio default/conftest (best against best, and the median of the alternating pairs' ratios),
and the 1-minute load average when the row started and ended (the machine is shared: compare rows
only with their load in mind). Before the sizes, one default check of the smallest size runs with an
empty compiled-code cache ($HCOPS_CACHE/wasm: wasmtime compiles the shipped module once per
machine); its time is printed and recorded as "cold".

--write-results replaces the "## check" section of bench/RESULTS.md with the table and the command.
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hcops.plan.desired import build_plan  # noqa: E402
from hcops.policy.input import build_input  # noqa: E402
from hcops.spec.loader import load_spec  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## check"
POLICIES = ROOT / "policies"
CACHE_BIN = Path(os.environ.get("HCOPS_CACHE") or Path.home() / ".cache" / "hcops") / "bin"


def tool(name: str) -> str:
    candidate = CACHE_BIN / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found (scripts/bootstrap {name})")
    return found


def spec_text(nodes: int, provider: str = "docker") -> str:
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
                  "      baa: {signed: true, signedOn: 2026-01-15}",
                  f"      contact: {{breakGlass: oncall@org-{o}.example}}",
                  "      nodes:" if names else "      nodes: []", *names]
    lines += ["  defaults: {storage: {size: 10Gi, encrypted: true}}",
              "  network: {rpc: {exposure: internal, tls: false, cors: []}, p2p: {pex: false, addrBookStrict: true}}",
              "  data: {phiOnChain: none, txIndex: 'off'}",
              "  audit: {enabled: true, interval: 30s, retentionDays: 2190, anchorToChain: true}",
              "  backup: {enabled: true, schedule: '0 2 * * *', retentionDays: 2190}",
              f"  provider: {{type: {provider}, kubernetes: {{namespace: bench-{nodes}}}}}"]
    return "\n".join(lines) + "\n"


def gate_pack(work: Path) -> Path:
    """The gate's policy files only (the built-in pack without tests and runtime/), as conftest and
    `opa eval` load every .rego below a directory."""
    pack = work / "pack"
    if not pack.exists():
        pack.mkdir()
        for f in POLICIES.glob("*.rego"):
            if not f.name.endswith("_test.rego"):
                shutil.copy(f, pack / f.name)
    return pack


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def opa_server(opa: str, log: Path) -> Iterator[str]:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([opa, "run", "--server", "--addr", f"127.0.0.1:{port}", "--log-level", "error"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"OPA server did not start; see {log}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


class Failed(Exception):
    """A run that exceeded its time budget or failed; the message goes into the table."""


def timed(cmd: list[str], ok: tuple[int, ...] = (0,), env: dict[str, str] | None = None,
          budget: float | None = None) -> float:
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, capture_output=True, env=env, stdin=subprocess.DEVNULL, timeout=budget)
    except subprocess.TimeoutExpired:
        raise Failed(f"> {budget:.0f} s (stopped)") from None
    dt = time.perf_counter() - t0
    if res.returncode not in ok:
        last = (res.stderr.decode().strip().splitlines() or ["?"])[0].removeprefix("error: ")
        raise Failed(f"failed: {last.split(' [')[0][:60]}")
    return dt


def best(repeat: int, cmd: list[str], **kw: Any) -> float:
    return min(timed(cmd, **kw) for _ in range(repeat))


def check_cmd(spec: Path, state: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hcops", "check", "-f", str(spec), "--state-dir", str(state),
            "--format", "json", "--output-file", os.devnull, *extra]


def default_env(folder: Path, cache: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HCOPS_ENGINE", "HCOPS_OPA_URL")}
    env["HCOPS_AUDIT_DB"] = str(folder / "audit.db")
    if cache is not None:
        env["HCOPS_CACHE"] = cache
    return env


def engine_of(spec: Path, state: Path, env: dict[str, str]) -> str:
    """The engine the default check chose (from its JSON report)."""
    cmd = [sys.executable, "-m", "hcops", "check", "-f", str(spec), "--state-dir", str(state), "--format", "json"]
    res = subprocess.run(cmd, capture_output=True, env=env, stdin=subprocess.DEVNULL)
    try:
        return str(json.loads(res.stdout).get("engine", "?"))
    except ValueError:
        return "?"


def prepare(provider: str, nodes: int, work: Path) -> tuple[Path, Path, Path]:
    folder = work / f"{provider}-{nodes}"
    folder.mkdir(parents=True)
    spec = folder / "network.yaml"
    spec.write_text(spec_text(nodes, provider))
    state = folder / "state"
    doc = build_input(build_plan(load_spec(spec), state))  # keys, untimed
    input_file = folder / "input.json"
    input_file.write_text(json.dumps(doc))
    return folder, spec, state


def cold_check(work: Path, provider: str, nodes: int) -> float:
    """One default check with an empty compiled-code cache (the OPA binary stays where it was)."""
    folder, spec, state = prepare(provider, nodes, work / "cold")
    cache = work / "cold-cache"
    (cache / "bin").mkdir(parents=True)
    opa = CACHE_BIN / "opa"
    if opa.exists():
        (cache / "bin" / "opa").symlink_to(opa)
    return timed(check_cmd(spec, state), env=default_env(folder, str(cache)))


def run_size(provider: str, nodes: int, args: argparse.Namespace, work: Path, opa_url: str, skip_embedded: bool,
             tools: dict[str, str]) -> dict[str, Any]:
    folder, spec, state = prepare(provider, nodes, work)
    input_file = folder / "input.json"
    env = default_env(folder)
    row: dict[str, Any] = {"provider": provider, "nodes": nodes, "mb": input_file.stat().st_size / 1e6,
                           "load": os.getloadavg()[0]}
    row["engine"] = engine_of(spec, state, env)
    # The default check and conftest alternate, run by run: a machine that slows down or speeds up during
    # the row (other tenants, memory freed by the stopped embedded run) then weighs on both alike.
    conftest = [tools["conftest"], "test", "--all-namespaces", "--no-color", "-p", str(gate_pack(work)),
                str(input_file)]
    pairs = [(timed(check_cmd(spec, state), env=env), timed(conftest, ok=(0, 1))) for _ in range(args.repeat)]
    row["default"] = min(d for d, _ in pairs)
    row["conftest"] = min(c for _, c in pairs)
    row["ratio_median"] = statistics.median(d / c for d, c in pairs)
    row["wasm"] = best(args.repeat, check_cmd(spec, state, "--engine", "wasm"), env=env)
    row["opa"] = best(args.repeat, check_cmd(spec, state, "--engine", "opa"), env=env)
    timed(check_cmd(spec, state, "--opa-url", opa_url), env=env)  # uploads the pack
    row["server"] = best(args.repeat, check_cmd(spec, state, "--opa-url", opa_url), env=env)
    row["embedded"] = f"> {args.embedded_budget:.0f} s (skipped)"
    if not skip_embedded:
        cmd = check_cmd(spec, state, "--engine", "embedded")
        try:
            first = timed(cmd, env=env, budget=args.embedded_budget)
            row["embedded"] = first
            if args.repeat > 1 and first < args.embedded_budget / 2:
                row["embedded"] = min(first, best(args.repeat - 1, cmd, env=env, budget=args.embedded_budget))
        except Failed as exc:
            row["embedded"] = str(exc)
    opa_eval = [tools["opa"], "eval", "--format", "raw", "-d", str(gate_pack(work)), "-i", str(input_file),
                "[data.hcops.hipaa[_].deny, data.hcops.hipaa[_].warn]"]
    row["eval"] = best(args.repeat, opa_eval)
    row["load"] = f"{row['load']:.1f}-{os.getloadavg()[0]:.1f}"
    return row


def cell(value: float | str) -> str:
    return f"{value:.2f}" if isinstance(value, float) else value


def table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="hcops check, wall seconds (best of N)")
    for col in COLUMNS:
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(*_cells(r))
    return t


COLUMNS = ("provider", "nodes", "input MB", "hcops check (default)", "default engine", "--engine wasm",
           "--engine opa", "--engine embedded", "--opa-url (server)", "conftest", "default/conftest",
           "default/conftest (median of pairs)",
           "opa eval (pack only)", "load (1 min, start-end)")


def _cells(r: dict[str, Any]) -> list[str]:
    return [r["provider"], str(r["nodes"]), f"{r['mb']:.1f}", f"{r['default']:.2f}", r["engine"], f"{r['wasm']:.2f}",
            f"{r['opa']:.2f}", cell(r["embedded"]), f"{r['server']:.2f}", f"{r['conftest']:.2f}",
            f"{r['default'] / r['conftest']:.2f}", f"{r['ratio_median']:.2f}", f"{r['eval']:.2f}", r["load"]]


def markdown(rows: list[dict[str, Any]], command: str, args: argparse.Namespace, versions: str,
             cold: float) -> str:
    head = "| " + " | ".join(COLUMNS) + " |\n|---|" + "---:|" * (len(COLUMNS) - 1) + "\n"
    body = "".join("| " + " | ".join(_cells(r)) + " |\n" for r in rows)
    return (f"{SECTION}\n\nCommand: `{command}` (best of {args.repeat}, wall seconds of a subprocess each; "
            f"Python {platform.python_version()}, {platform.machine()}, shared 2-core VM; {versions}).\n\n"
            "`hcops check` covers the whole command (spec, plan, rendered manifests, input document, "
            "evaluation, report, audit record) with the manifests of the spec's provider in the input; "
            "\"default\" is the command without any engine flag or variable; conftest and `opa eval` only "
            "evaluate the same built-in pack on the input document hcops builds (written once, untimed). "
            f"The first default check on a machine (empty compiled-code cache, {rows[0]['nodes'] if rows else 0} "
            f"nodes) took {cold:.2f} s: wasmtime compiles the shipped module once and keeps the code in "
            "$HCOPS_CACHE/wasm (`scripts/bootstrap wasm` does it ahead).\n\n"
            + head + body)


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


def version_of(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()
    return out[0] if out else "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,100,1000,5000")
    ap.add_argument("--providers", default="docker,kubernetes")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--embedded-budget", type=float, default=60.0,
                    help="Seconds; larger sizes skip the embedded engine once one run took longer.")
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the OPA server on kill too
    sizes = [int(s) for s in args.sizes.split(",") if s]
    tools = {"opa": tool("opa"), "conftest": tool("conftest")}
    versions = (f"OPA {version_of([tools['opa'], 'version']).split()[-1]}, "
                f"conftest {version_of([tools['conftest'], '--version']).split()[-1]}")
    console = Console()
    # As an installed package is: its bytecode compiled (pip does it at install). With PYTHONDONTWRITEBYTECODE
    # set and the sources changed since their .pyc, every hcops subprocess would compile ~60 modules again.
    compileall.compile_dir(str(ROOT / "hcops"), quiet=1)
    rows: list[dict[str, Any]] = []
    providers = [p for p in args.providers.split(",") if p]
    with tempfile.TemporaryDirectory(prefix="hcops-bench-check-") as tmp, \
            opa_server(tools["opa"], Path(tmp) / "opa.log") as url:
        cold = cold_check(Path(tmp), providers[0], sizes[0])
        console.log(f"first default check, empty compiled-code cache: {cold:.2f}s")
        for provider in providers:
            skip = False
            for n in sizes:
                row = run_size(provider, n, args, Path(tmp), url, skip, tools)
                rows.append(row)
                if not isinstance(row["embedded"], float) or row["embedded"] > args.embedded_budget / 2:
                    skip = True  # the next size would not finish within the budget either
                console.log(f"{provider} {n} nodes: default {row['default']:.2f}s ({row['engine']}), "
                            f"opa {row['opa']:.2f}s, embedded {cell(row['embedded'])}, server {row['server']:.2f}s, "
                            f"conftest {row['conftest']:.2f}s, default/conftest {row['default'] / row['conftest']:.2f} "
                            f"(median of the alternating pairs {row['ratio_median']:.2f})")
    console.print(table(rows))
    if args.write_results:
        command = "python bench/check.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_results(markdown(rows, command.strip(), args, versions, cold))
        console.print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
