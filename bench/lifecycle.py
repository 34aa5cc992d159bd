"""Benchmark: a validator joining a live chain. On a running 4-validator network (4 organizations), the spec
gains a 5th organization with one validator (power 10); timed from the start of `hcops apply` to that
validator's first signed block, with the heights it missed from the one its update took effect at, the
longest gap between block times while apply ran, and the whole apply (which then rolls the other nodes'
peer lists).

Needs a running Docker engine with the node image (scripts/bootstrap docker image). Every object it creates
is removed at the end.

    python bench/lifecycle.py [--repeat 2] [--block-interval 1s]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from apply import NO_GATE, Case, cleanup_label, free_ports, free_subnet, spec_text  # noqa: E402

TARGET_JOIN = 30.0
TARGET_MISSED = 0
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def rpc(port: int, method: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{method}", timeout=2) as resp:
        result: dict[str, Any] = json.load(resp)["result"]
        return result


def signers(port: int, height: int) -> set[str]:
    sigs = rpc(port, f"commit?height={height}")["signed_header"]["commit"]["signatures"]
    return {s["validator_address"] for s in sigs if s.get("block_id_flag") == 2}


def latest(port: int) -> int:
    return int(rpc(port, "status")["sync_info"]["latest_block_height"])


def block_time(port: int, height: int) -> dt.datetime:
    value = rpc(port, f"commit?height={height}")["signed_header"]["header"]["time"]
    head, _, frac = value.rstrip("Z").partition(".")
    return dt.datetime.fromisoformat(head).replace(microsecond=int((frac + "000000")[:6] or 0))


def one_run(root: Path, block_interval: str) -> dict[str, float]:
    case = Case(4, root, block_interval)
    case.prepare("join")
    case.port_base, subnet = free_ports(5), free_subnet()  # room for the 5th node's RPC port
    case.spec.write_text(spec_text(case.name, 4, case.port_base, subnet, block_interval))
    with cleanup_label(case.name):
        case.hcops("apply", "--yes", *NO_GATE)
        port = case.port_base
        known = {v["address"] for v in rpc(port, "validators")["validators"]}
        start_height = latest(port)
        case.spec.write_text(spec_text(case.name, 5, case.port_base, subnet, block_interval))
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "hcops", "apply", "-f", str(case.spec), "--state-dir",
                                 str(case.state_dir), "--yes", *NO_GATE], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=case.spec.parent)
        joined = None
        joined_at = 0
        next_h = start_height
        while joined is None and proc.poll() is None and time.monotonic() - started < 300:
            try:
                top = latest(port)
                for h in range(next_h, top + 1):
                    if signers(port, h) - known:
                        joined, joined_at = time.monotonic() - started, h
                        break
                    next_h = h + 1
            except OSError:
                pass
            time.sleep(0.1)
        out, err = proc.communicate(timeout=600)
        total = time.monotonic() - started
        if proc.returncode != 0:
            raise RuntimeError(f"hcops apply failed:\n{out}\n{err}")
        lock = json.loads((case.spec.parent / "network.lock.json").read_text())
        change = lock["validatorSetChanges"][0]
        address = change["validatorAddress"]
        if joined is None:  # signed only after apply returned (never the case when it works)
            joined = total
        end = latest(port)
        missed = [h for h in range(change["effectiveHeight"], end) if address not in signers(port, h)]
        times = [block_time(port, h) for h in range(start_height, end + 1)]
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
        joined_at = joined_at or end
        worst_join = max(gaps[: max(1, joined_at - start_height)])  # until the validator signed
        worst = max(gaps)
        case.hcops("destroy", "--prune-volumes")
    return {"join": joined, "missed": float(len(missed)), "gap": worst, "gap_join": worst_join, "total": total,
            "height": float(change["height"] - start_height)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--block-interval", default="1s")
    args = ap.parse_args()
    image = subprocess.run(["docker", "image", "inspect", "hcops/cometbft:0.38.17"], capture_output=True)
    if image.returncode:
        console.print("the node image is missing: run scripts/bootstrap docker image")
        return 2
    with tempfile.TemporaryDirectory(prefix="hcops-bench-") as tmp:
        runs = [one_run(Path(tmp), args.block_interval) for _ in range(args.repeat)]
    table = Table(title=f"lifecycle: a 5th organization's validator joins a live 4-validator chain "
                        f"(blockInterval {args.block_interval})", title_justify="left")
    for col in ("run", "apply -> first signed block (s)", "heights missed", "longest block gap until joined (s)",
                "longest block gap, whole apply (s)", "update committed after (blocks)", "whole apply (s)"):
        table.add_column(col, justify="right")
    for i, r in enumerate(runs, 1):
        table.add_row(str(i), f"{r['join']:.1f}", f"{r['missed']:.0f}", f"{r['gap_join']:.2f}", f"{r['gap']:.2f}",
                      f"{r['height']:.0f}", f"{r['total']:.1f}")
    join = statistics.median(r["join"] for r in runs)
    missed = max(r["missed"] for r in runs)

    def med(key: str) -> str:
        return f"{statistics.median(r[key] for r in runs):.2f}"

    table.add_row("median", f"{join:.1f}", f"{missed:.0f} (max)", med("gap_join"), med("gap"), "",
                  f"{statistics.median(r['total'] for r in runs):.1f}")
    console.print(table)
    ok = join <= TARGET_JOIN and missed <= TARGET_MISSED
    console.print(f"targets: first signed block <= {TARGET_JOIN:g} s, {TARGET_MISSED} heights missed: "
                  f"{'met' if ok else 'NOT met'}")
    console.print(f"engine: {os.popen('docker version --format {{.Server.Version}}').read().strip()}, "
                  f"{os.cpu_count()} CPUs")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
