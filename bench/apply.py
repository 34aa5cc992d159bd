"""Benchmark: `hcops apply` to the first committed block, against `docker-compose up -d` of hcops' own
rendered compose file, for 4, 8 and 16 validators; and the time of a no-op re-apply.

Needs a running Docker engine with the node image (scripts/bootstrap docker image) and Debian's
docker-compose (`apt-get install docker-compose`). Every object it creates is removed at the end.

    python bench/apply.py [--sizes 4 8 16] [--noop-sizes 4 16] [--repeat 2] [--block-interval 1s]
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROLES = ["provider", "payer", "pharmacy", "laboratory", "regulator", "research"]
TARGET_FIRST_BLOCK_4 = 5.0
TARGET_RATIO = 1.2
TARGET_NOOP_4 = 1.0
# The provider is timed on its own (the policy gate in front of apply has its own benchmark); the
# no-op re-apply is also timed with the gate, in its own column.
NO_GATE = ("--skip-gate", "--reason", "bench/apply.py times the provider")
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def spec_text(name: str, validators: int, port_base: int, subnet: str, block_interval: str) -> str:
    orgs = []
    for i in range(validators):
        orgs.append(f"""    - name: org-{i}
      role: {ROLES[i % len(ROLES)]}
      coveredEntity: true
      baa: {{signed: true, signedOn: 2026-01-15}}
      contact: {{breakGlass: oncall@org-{i}.example}}
      nodes:
        - {{name: val-{i}, role: validator, power: 10}}""")
    return f"""apiVersion: hcops/v1alpha1
kind: Consortium
metadata:
  name: {name}
spec:
  chain:
    version: "0.38.17"
    image: hcops/cometbft:0.38.17
    chainId: bench-1
    blockInterval: {block_interval}
  organizations:
{chr(10).join(orgs)}
  network:
    rpc: {{exposure: host}}
  audit: {{enabled: true, interval: 30s, anchorToChain: true, retentionDays: 2190}}
  defaults:
    resources: {{cpu: "500m", memory: 512Mi}}
    storage: {{size: 10Gi, encrypted: true}}
  data: {{phiOnChain: none, txIndex: "off"}}
  backup: {{enabled: true, schedule: "0 2 * * *", retentionDays: 2190}}
  provider:
    type: docker
    docker: {{rpcHostPortBase: {port_base}, subnet: {subnet}}}
    kubernetes: {{namespace: {name}}}
"""


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> int:
    for _ in range(500):
        base = random.randrange(20000, 32000 - count)  # below the ephemeral range (32768-60999)
        if all(port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free port range")


def free_subnet() -> str:
    ids = subprocess.run(["docker", "network", "ls", "-q"], capture_output=True, text=True,
                         check=True).stdout.split()
    fmt = "{{range .IPAM.Config}}{{.Subnet}} {{end}}"
    out = subprocess.run(["docker", "network", "inspect", "--format", fmt, *ids],
                         capture_output=True, text=True, check=True).stdout.split()
    used = [ipaddress.ip_network(s, strict=False) for s in out if ":" not in s]
    for _ in range(500):
        cand = ipaddress.ip_network(f"10.{random.randrange(200, 255)}.{random.randrange(256)}.0/24")
        if not any(cand.overlaps(u) for u in used):
            return str(cand)
    raise RuntimeError("no free subnet")


def height(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=0.5) as resp:
            return int(json.load(resp)["result"]["sync_info"]["latest_block_height"])
    except (OSError, ValueError, KeyError):
        return -1


def wait_first_block(port: int, started: float, timeout: float = 120) -> float:
    while time.monotonic() - started < timeout:
        if height(port) >= 1:
            return time.monotonic() - started
        time.sleep(0.05)
    raise RuntimeError(f"no block on port {port} after {timeout} s")


@dataclass
class Case:
    validators: int
    root: Path
    block_interval: str
    name: str = ""
    port_base: int = 0
    spec: Path = field(default_factory=Path)

    def prepare(self, tag: str) -> None:
        self.name = f"bench-{tag}{self.validators}-{uuid.uuid4().hex[:6]}"
        self.port_base = free_ports(self.validators)
        folder = self.root / self.name
        folder.mkdir(parents=True)
        self.spec = folder / "network.yaml"
        self.spec.write_text(spec_text(self.name, self.validators, self.port_base, free_subnet(),
                                       self.block_interval))

    @property
    def state_dir(self) -> Path:
        return self.spec.parent / "state"

    def hcops(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "hcops", argv[0], "-f", str(self.spec),
               "--state-dir", str(self.state_dir), *argv[1:]]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.spec.parent)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc


@contextlib.contextmanager
def cleanup_label(name: str) -> Iterator[None]:
    try:
        yield
    finally:
        for kind in ("container", "network", "volume"):
            ids = subprocess.run(["docker", kind, "ls", "-q", *(["-a"] if kind == "container" else []),
                                  "--filter", f"label=hcops.network={name}"],
                                 capture_output=True, text=True).stdout.split()
            if ids:
                rm = ["docker", kind, "rm", *(["-f"] if kind != "network" else []), *ids]
                subprocess.run(rm, capture_output=True, text=True)


def run_hcops(case: Case, noop: bool) -> dict[str, float]:
    case.prepare("h")
    with cleanup_label(case.name):
        started = time.monotonic()
        cmd = [sys.executable, "-m", "hcops", "apply", "-f", str(case.spec), "--state-dir",
               str(case.state_dir), "--yes", *NO_GATE]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=case.spec.parent)
        first = wait_first_block(case.port_base, started)
        out, err = proc.communicate(timeout=300)
        total = time.monotonic() - started
        if proc.returncode != 0:
            raise RuntimeError(f"hcops apply failed:\n{out}\n{err}")
        result = {"first_block": first, "apply_total": total}
        if noop:
            t = time.monotonic()
            again = case.hcops("apply", "--yes", *NO_GATE)
            result["noop"] = time.monotonic() - t
            if "no changes" not in again.stdout:
                raise RuntimeError(f"re-apply was not a no-op:\n{again.stdout}\n{again.stderr}")
            t = time.monotonic()
            case.hcops("apply", "--yes")  # the same with the policy gate in front
            result["noop_gate"] = time.monotonic() - t
        case.hcops("destroy", "--prune-volumes")
    return result


def run_compose(case: Case, compose: str) -> dict[str, float]:
    case.prepare("c")
    out_dir = case.spec.parent / "rendered"
    case.hcops("render", "-o", str(out_dir), "--target", "docker", "--generate-keys")
    project = out_dir / "docker"
    with cleanup_label(case.name):
        try:
            started = time.monotonic()
            subprocess.run([compose, "-p", case.name, "up", "-d"], cwd=project, check=True,
                           capture_output=True, text=True)
            first = wait_first_block(case.port_base, started)
        finally:
            subprocess.run([compose, "-p", case.name, "down", "-v", "--remove-orphans"], cwd=project,
                           capture_output=True, text=True)
    return {"first_block": first}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--noop-sizes", type=int, nargs="*", default=[4, 16])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--block-interval", default="1s")
    ap.add_argument("--compose", default=shutil.which("docker-compose") or "")
    args = ap.parse_args()
    image = subprocess.run(["docker", "image", "inspect", "hcops/cometbft:0.38.17"], capture_output=True)
    if image.returncode:
        console.print("the node image is missing: run scripts/bootstrap docker image")
        return 2
    if not args.compose:
        console.print("docker-compose not found (apt-get install docker-compose); comparing against nothing")

    rows = []
    ok = True
    with tempfile.TemporaryDirectory(prefix="hcops-bench-") as tmp:
        root = Path(tmp)
        for n in args.sizes:
            runs = [run_hcops(Case(n, root, args.block_interval), noop=n in args.noop_sizes)
                    for _ in range(args.repeat)]
            comp = [run_compose(Case(n, root, args.block_interval), args.compose)
                    for _ in range(args.repeat)] if args.compose else []
            h_first = statistics.median(r["first_block"] for r in runs)
            h_total = statistics.median(r["apply_total"] for r in runs)
            noop = statistics.median(r["noop"] for r in runs) if "noop" in runs[0] else None
            noop_gate = statistics.median(r["noop_gate"] for r in runs) if "noop" in runs[0] else None
            c_first = statistics.median(r["first_block"] for r in comp) if comp else None
            ratio = h_first / c_first if c_first else None
            rows.append((n, h_first, c_first, ratio, h_total, noop, noop_gate))
            console.print(f"{n} validators: hcops {h_first:.2f} s, compose "
                          f"{'-' if c_first is None else f'{c_first:.2f} s'}", style="dim")
            if n == 4:
                ok &= h_first <= TARGET_FIRST_BLOCK_4 and (noop is None or noop <= TARGET_NOOP_4)
            ok &= ratio is None or ratio <= TARGET_RATIO

    table = Table(title=f"apply: time to first committed block (median of {args.repeat}; blockInterval "
                        f"{args.block_interval})", title_justify="left")
    for col in ("validators", "hcops apply (s)", "docker-compose up (s)", "ratio", "apply until 3 signed (s)",
                "no-op re-apply (s)", "no-op with gate (s)"):
        table.add_column(col, justify="right")
    def cell(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    for n, h, c, r, total, noop, noop_gate in rows:
        table.add_row(str(n), cell(h), cell(c), cell(r), cell(total), cell(noop), cell(noop_gate))
    console.print(table)
    console.print(f"targets: first block <= {TARGET_FIRST_BLOCK_4:g} s for 4 validators, "
                  f"ratio <= {TARGET_RATIO}, no-op re-apply <= {TARGET_NOOP_4:g} s for 4 nodes: "
                  f"{'met' if ok else 'NOT met'}")
    console.print(f"engine: {os.popen('docker version --format {{.Server.Version}}').read().strip()}, "
                  f"{os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
