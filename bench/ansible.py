"""Benchmark: the ansible provider on real hosts. `hcops apply` onto N fresh hosts until the first committed
block, until apply returns (3 blocks signed by every validator), and a no-op re-apply, for 4 and 8 hosts.
The anchor, on the same hosts and inventory in the same run: `ansible all -m ping` through ansible-runner
with hcops' own connection settings, the floor of any Ansible-driven re-apply (one SSH round per host).

The hosts are those of the tests (tests/integration/hosts.py: Debian bookworm containers with systemd and
sshd, `scripts/bootstrap testhost`), one validator each, reached over SSH; hcops copies the CometBFT binary
of $HCOPS_CACHE/bin to each. Everything it creates is removed at the end.

    python bench/ansible.py [--sizes 4 8] [--block-interval 1s]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from hcops.plan.desired import KeyMode, build_plan  # noqa: E402
from hcops.providers.ansible.tunnels import rpc_tunnels  # noqa: E402
from hcops.providers.ansible.workspace import Workspace  # noqa: E402
from hcops.providers.rpc import RpcClient, RpcUnavailable  # noqa: E402
from hcops.spec.loader import load_spec  # noqa: E402
from tests.integration import hosts  # noqa: E402

ROLES = ["provider", "payer", "pharmacy", "laboratory", "regulator", "research"]
NO_GATE = ("--skip-gate", "--reason", "bench/ansible.py times the provider")
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def spec_text(name: str, cluster: hosts.Hosts, block_interval: str) -> str:
    orgs, addresses = [], []
    for i, h in enumerate(cluster.hosts):
        orgs.append(f"""    - name: org-{i}
      role: {ROLES[i % len(ROLES)]}
      coveredEntity: true
      baa: {{signed: true, signedOn: 2026-01-15}}
      nodes:
        - {{name: val-{i}, role: validator, power: 10}}""")
        addresses.append(f"        val-{i}: {{address: {h.address}}}")
    return f"""apiVersion: hcops/v1alpha1
kind: Consortium
metadata:
  name: {name}
spec:
  tier: development
  chain:
    version: "0.38.17"
    image: hcops/cometbft:0.38.17
    chainId: bench-1
    blockInterval: {block_interval}
  defaults: {{resources: {{cpu: "1", memory: 512Mi}}}}
  organizations:
{chr(10).join(orgs)}
  network:
    rpc: {{exposure: host}}
  audit: {{anchorToChain: false}}
  provider:
    type: ansible
    ansible:
      connection: {{user: {hosts.LOGIN}, privateKeyFile: {cluster.key}}}
      hosts:
{chr(10).join(addresses)}
"""


@dataclass
class Result:
    hosts: int
    first_block: float
    applied: float
    noop: float
    noop_runs: list[float]
    ping: float


def first_block(urls: list[str], started: float, stop: threading.Event) -> float | None:
    """Seconds from ``started`` until any node reports height >= 1 (through the SSH tunnels)."""
    clients = [RpcClient(u, timeout=1.0, attempts=1) for u in urls]
    while not stop.is_set():
        for c in clients:
            try:
                if c.status().height >= 1:
                    return time.monotonic() - started
            except RpcUnavailable:
                pass
        time.sleep(0.2)
    return None


def ansible_ping(plan: Any) -> float:
    """Median of 3 `ping` runs over every host, as hcops connects (ControlPersist: the first warms it)."""
    import ansible_runner

    ws = Workspace(plan, None).prepare()
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        r = ansible_runner.run(private_data_dir=str(ws.root), inventory=str(ws.inventory), host_pattern="all",
                               module="ansible.builtin.ping", envvars=ws.envvars(len(plan.nodes)), quiet=True,
                               artifact_dir=str(ws.artifacts), rotate_artifacts=1)
        times.append(time.monotonic() - t0)
        if r.status != "successful":
            raise SystemExit(f"ansible ping failed: {r.status}")
    return sorted(times)[1]


def hcops(args: list[str], cwd: Path, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hcops", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def run_size(size: int, block_interval: str, noops: int) -> Result:
    console.print(f"[bold]{size} hosts[/bold]: starting them")
    cluster = hosts.start_hosts(size, f"bench{size}")
    try:
        with tempfile.TemporaryDirectory(prefix="hcops-bench-ansible-") as tmp:
            root = Path(tmp)
            spec = root / "network.yaml"
            spec.write_text(spec_text(f"bench-ansible-{size}", cluster, block_interval))
            args = ["-f", str(spec), "--state-dir", str(root / "state")]
            plan = build_plan(load_spec(spec), root / "state", keys=KeyMode.existing)
            with rpc_tunnels(Workspace(plan, None), [n.name for n in plan.nodes]) as tunnels:
                urls = [u for u in (tunnels.url(n.name) for n in plan.nodes) if u]
                stop = threading.Event()
                seen: list[float | None] = []
                started = time.monotonic()
                watcher = threading.Thread(target=lambda: seen.append(first_block(urls, started, stop)))
                watcher.start()
                proc = hcops(["apply", *args, "--yes", *NO_GATE], root)
                applied = time.monotonic() - started
                stop.set()
                watcher.join()
            if proc.returncode != 0:
                raise SystemExit(f"apply failed:\n{proc.stdout}\n{proc.stderr}")
            runs = []
            for _ in range(noops):
                t0 = time.monotonic()
                again = hcops(["apply", *args, "--yes", *NO_GATE], root)
                runs.append(time.monotonic() - t0)
                if again.returncode != 0 or "no changes" not in again.stderr:
                    raise SystemExit(f"the re-apply was not a no-op:\n{again.stderr}")
            ping = ansible_ping(build_plan(load_spec(spec), root / "state", keys=KeyMode.existing))
            hcops(["destroy", *args, "--prune-volumes"], root)
        block = seen[0] if seen and seen[0] is not None else float("nan")
        return Result(size, block, applied, sorted(runs)[len(runs) // 2], runs, ping)
    finally:
        cluster.remove()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--block-interval", default="1s")
    ap.add_argument("--noop-repeat", type=int, default=3, help="no-op re-applies per size (median shown)")
    opts = ap.parse_args()
    results = [run_size(n, opts.block_interval, opts.noop_repeat) for n in opts.sizes]
    table = Table(title="ansible provider: apply onto fresh hosts (seconds)")
    for col in ("hosts", "first block", "apply until 3 signed", "no-op re-apply (median)", "no-op runs",
                "anchor: ansible ping (median)", "no-op / ping"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(str(r.hosts), f"{r.first_block:.1f}", f"{r.applied:.1f}", f"{r.noop:.1f}",
                      " ".join(f"{x:.1f}" for x in r.noop_runs), f"{r.ping:.1f}", f"{r.noop / r.ping:.1f}")
    console.print(table)
    load = os.getloadavg()
    console.print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
