"""Benchmark of the continuous audit on real Docker networks.

1. One sweep's wall time (observe through the Docker provider, the read of the transactions committed
   since the previous sweep and their identifier detectors (PHI-1), fact document, runtime policies
   on the default engine, audit log write) for networks of 4, 8, 16 and 32 running nodes (4 validators
   in four organizations, the rest observers). Median of 3 sweeps after one warm-up; before each measured
   sweep, TXS_PER_SWEEP transactions are committed (waited for outside the timing), so every sweep reads
   blocks that hold transactions. Beside it, the anchor: right after each measured sweep, one bare
   `/status` per node on a fresh (verified) connection from as many threads, the floor any per-node
   reader pays on this machine at that moment (32 CometBFT nodes saturate 2 cores by themselves).
2. Load on block production: heights per minute of a 4-node network (1 s blocks) without the audit, then
   with `hcops audit --watch --interval 5s` running.

Usage: python bench/audit.py [--sizes 4,8,16,32] [--block-interval 3s] [--window 60] [--json FILE]
                             [--tls] [--runs 3] [--phase commit|random]
Needs the Docker engine and the node image (scripts/bootstrap docker image). Everything it creates is
removed at the end.

Every node holds an ARP entry for each node it is connected to (dialed or dialing in; a full mesh up to
24 nodes, the plan's bounded peer set above) and one for the gateway, and the kernel's neighbour table
is shared by all network namespaces: past net.ipv4.neigh.default.gc_thresh3 (1024 by default;
scripts/bootstrap raises it) it overflows ("neighbor table overflow" in dmesg) and packets to the nodes
are dropped, which shows as RPC timeouts. The limit is recorded and a network that exceeds it is flagged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hcops.plan import certs
from hcops.plan.desired import build_plan
from hcops.providers.docker.observe import MAX_WORKERS
from hcops.providers.rpc import RpcClient
from hcops.spec.loader import load_spec
from hcops.usecases.audit import AuditOptions, make_auditor

ORGS = (("st-mary", "provider"), ("northside", "provider"), ("bluecross", "payer"), ("cityrx", "pharmacy"))
TXS_PER_SWEEP = 30  # 25 record pointers with digests, 5 short notes: no identifier among them


def spec_text(name: str, nodes: int, port_base: int, subnet: str, interval: str, tls: bool = False) -> str:
    lines = [
        "apiVersion: hcops/v1alpha1",
        "kind: Consortium",
        f"metadata: {{name: {name}}}",
        "spec:",
        '  chain: {version: "0.38.17", image: "hcops/cometbft:0.38.17", chainId: bench-1,'
        f" blockInterval: {interval}}}",
        '  defaults: {resources: {cpu: "250m", memory: 256Mi}}',
        "  organizations:",
    ]
    observers = nodes - len(ORGS)
    for i, (org, role) in enumerate(ORGS):
        lines.append(
            f"    - name: {org}\n      role: {role}\n      baa: {{signed: true, signedOn: 2026-01-01}}\n"
            f"      nodes:\n        - {{name: {org}-val-0, role: validator, power: 10}}"
        )
        if i == 3 and observers:
            lines += [f"        - {{name: {org}-obs-{k}, role: observer}}" for k in range(observers)]
    lines += [
        "  audit: {interval: 5s, anchorToChain: false}",
        *(["  network: {rpc: {exposure: internal, tls: true}}"] if tls else []),
        f"  provider: {{docker: {{rpcHostPortBase: {port_base}, subnet: {subnet}}}}}",
    ]
    return "\n".join(lines) + "\n"


NEIGH_LIMIT = Path("/proc/sys/net/ipv4/neigh/default/gc_thresh3")


def neighbour_limit() -> int | None:
    try:
        return int(NEIGH_LIMIT.read_text())
    except (OSError, ValueError):
        return None


def free_base(count: int) -> int:
    for _ in range(200):
        base = random.randrange(30000, 60000 - count)
        ok = True
        for p in range(base, base + count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


def hcops(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "hcops", *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"hcops {' '.join(args[:1])} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


class Network:
    def __init__(self, root: Path, nodes: int, interval: str, tls: bool = False) -> None:
        self.root, self.nodes, self.tls = root, nodes, tls
        root.mkdir(parents=True, exist_ok=True)
        self.name = f"bench-audit-{nodes}-{os.getpid() % 10000}"
        self.port_base = free_base(nodes + 2)
        subnet = f"10.{random.randrange(200, 250)}.{random.randrange(0, 255)}.0/24"
        self.spec = root / "network.yaml"
        self.spec.write_text(spec_text(self.name, nodes, self.port_base, subnet, interval, tls))
        self.state = root / "state"

    def arp_entries(self) -> int:
        """About how many neighbour entries the network's containers hold: connections both ways + gateway."""
        plan = build_plan(load_spec(self.spec), self.state)
        links = {frozenset((n.name, p.name)) for n in plan.nodes for p in plan.topology.peers(n)}
        return 2 * len(links) + len(plan.nodes)

    def args(self) -> list[str]:
        return ["-f", str(self.spec), "--state-dir", str(self.state)]

    def up(self) -> float:
        t0 = time.perf_counter()
        hcops("apply", *self.args(), "--yes", "--timeout", "600", "--skip-gate", "--reason", "audit benchmark network")
        return time.perf_counter() - t0

    def down(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "hcops", "destroy", *self.args(), "--prune-volumes"],
            capture_output=True,
            timeout=600,
        )

    def rpc(self, timeout: float = 2.0) -> RpcClient:
        """The first node's RPC, over HTTPS verified against the network CA when TLS is on."""
        if not self.tls:
            return RpcClient(f"http://127.0.0.1:{self.port_base}", timeout=timeout)
        context = certs.client_context(build_plan(load_spec(self.spec), self.state))
        return RpcClient(f"https://127.0.0.1:{self.port_base}", timeout=timeout, ssl_context=context)

    def height(self) -> int:
        return self.rpc().status().height


def feed(net: Network, count: int = TXS_PER_SWEEP, timeout: float = 30.0) -> None:
    """Commit ``count`` transactions and wait until their block is in (outside the sweep's timing)."""
    rpc = net.rpc(timeout=5.0)
    start = rpc.status().height
    for i in range(count):
        value = hashlib.sha256(f"{i}-{time.time_ns()}".encode()).hexdigest()
        tx = f"record/{uuid.uuid4()}={value}" if i % 6 else f"note/{uuid.uuid4().hex[:8]}=checked"
        rpc.call("broadcast_tx_sync", tx=f'"{tx}"')
    deadline = time.monotonic() + timeout
    while rpc.status().height < start + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    rpc.close()


def seconds(interval: str) -> float:
    return float(interval[:-2]) / 1000 if interval.endswith("ms") else float(interval.rstrip("s"))


def floor(net: Network) -> float:
    """The anchor, right after each measured sweep: one bare ``/status`` per node on a fresh connection (with
    TLS: verified against the network CA), from as many threads as the sweep reads nodes with; no engine,
    no peers, no chain, no transactions. What any per-node reader pays on this machine at that moment."""
    plan = build_plan(load_spec(net.spec), net.state)
    context = certs.client_context(plan)
    scheme = "https" if context is not None else "http"

    def one(port: int) -> None:
        rpc = RpcClient(f"{scheme}://127.0.0.1:{port}", timeout=5.0, attempts=1, ssl_context=context)
        try:
            rpc.status()
        finally:
            rpc.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(MAX_WORKERS) as pool:
        list(pool.map(one, [n.rpc_host_port for n in plan.nodes]))
    return time.perf_counter() - t0


def sweep_times(net: Network, runs: int = 3, phase: str = "random", interval: float = 3.0) -> dict[str, Any]:
    """``phase``: when a measured sweep starts after its transactions' block is committed. ``commit``: at
    once, in the burst of work every node does on a new block (the sweep waits longest for a CPU then);
    ``random``: after a uniform random part of the block interval, as a watch on its own timer lands."""
    auditor = make_auditor(net.spec, AuditOptions(state_dir=net.state, audit_db=net.root / "bench-audit.db"))
    try:
        auditor.run()  # warm-up: loads the policies, opens connections, verifies the log, reads the chain so far
        sweeps, floors = [], []
        for _ in range(runs):
            feed(net)
            if phase == "random":
                time.sleep(random.uniform(0, interval))
            sweeps.append(auditor.run())
            floors.append(floor(net))
        high = sorted({f.id for f in sweeps[-1].report.findings if f.severity == "high"})

        def med(phase: str) -> float:
            return round(statistics.median(s.phases[phase] for s in sweeps), 3)

        total = round(statistics.median(sum(s.phases.values()) for s in sweeps), 3)
        return {
            "nodes": net.nodes,
            "sweep_s": total,
            "observe_s": med("observe"),
            "phi_s": med("phi"),
            "phi_blocks": round(statistics.median(s.facts["phi"]["scanned"]["blocks"] for s in sweeps)),
            "phi_txs": round(statistics.median(s.facts["phi"]["scanned"]["txs"] for s in sweeps)),
            "phi_complete": all(s.facts["phi"]["complete"] for s in sweeps),
            "evaluate_s": med("evaluate"),
            "record_s": med("record"),
            "runs": runs,
            "phase": phase,
            "floor_s": round(statistics.median(floors), 3),
            "floor_range_s": [round(min(floors), 3), round(max(floors), 3)],
            "sweep_range_s": [round(min(sum(s.phases.values()) for s in sweeps), 3),
                              round(max(sum(s.phases.values()) for s in sweeps), 3)],
            "high_findings": high,
            "tls_verified_nodes": sum(
                1
                for n in sweeps[-1].facts["nodes"]
                if ((n.get("rpc") or {}).get("tls") or {}).get("verified")
                and ((n.get("rpc") or {}).get("tls") or {}).get("plaintextRefused")
            ),
        }
    finally:
        auditor.log.close()


def blocks_per_minute(net: Network, window: float) -> float:
    h0, t0 = net.height(), time.monotonic()
    time.sleep(window)
    return (net.height() - h0) * 60 / (time.monotonic() - t0)


def load_test(net: Network, window: float) -> dict[str, Any]:
    without = blocks_per_minute(net, window)
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hcops",
            "audit",
            *net.args(),
            "--audit-db",
            str(net.root / "watch.db"),
            "--watch",
            "--interval",
            "5s",
            "--format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        time.sleep(3)
        with_audit = blocks_per_minute(net, window)
    finally:
        watch.terminate()
        out, _ = watch.communicate(timeout=60)
    sweeps = sum(1 for line in out.splitlines() if '"audit_finished"' in line)
    return {
        "window_s": window,
        "blocks_per_min_without": round(without, 1),
        "blocks_per_min_with_watch_5s": round(with_audit, 1),
        "change_pct": round(100 * (with_audit - without) / without, 1) if without else None,
        "sweeps_during_window": sweeps,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="4,8,16,32")
    ap.add_argument("--window", type=float, default=60.0, help="seconds per block-rate measurement")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--block-interval", default="3s", help="blockInterval of the sweep-time networks")
    ap.add_argument(
        "--tls",
        action="store_true",
        help="RPC over TLS (network.rpc.tls: true): the sweep measures "
        "every node's handshake against the network CA and that plain HTTP is refused",
    )
    ap.add_argument("--runs", type=int, default=3, help="measured sweeps per size (the median is reported)")
    ap.add_argument("--phase", choices=("commit", "random"), default="commit",
                    help="start each measured sweep right after a block commit, or at a random point of the "
                         "block interval")
    args = ap.parse_args()
    limit = neighbour_limit()
    results: dict[str, Any] = {
        "block_interval": args.block_interval,
        "tls": args.tls,
        "neigh_gc_thresh3": limit,
        "sweeps": [],
        "load": None,
    }
    with tempfile.TemporaryDirectory(prefix="hcops-bench-audit-") as tmp:
        for n in [int(x) for x in args.sizes.split(",")]:
            net = Network(Path(tmp) / str(n), n, args.block_interval, args.tls)
            entries = net.arp_entries()
            if limit is not None and entries > limit:
                print(
                    f"{n:>3} nodes: about {entries} ARP entries exceed gc_thresh3={limit}; "
                    "expect dropped packets (RPC timeouts)",
                    flush=True,
                )
            try:
                up = net.up()
                row = sweep_times(net, args.runs, args.phase, seconds(args.block_interval))
                row["apply_s"] = round(up, 1)
                row["arp_entries_over_limit"] = bool(limit is not None and n * (n + 1) > limit)
                print(
                    f"{n:>3} nodes: sweep {row['sweep_s']:.3f} s (range {row['sweep_range_s'][0]:.3f}-"
                    f"{row['sweep_range_s'][1]:.3f} s, {row['runs']} sweeps, phase {row['phase']}; "
                    f"floor {row['floor_s']:.3f} s, range {row['floor_range_s'][0]:.3f}-"
                    f"{row['floor_range_s'][1]:.3f} s; "
                    f"observe {row['observe_s']:.3f} s, "
                    f"phi {row['phi_s']:.3f} s for {row['phi_blocks']} blocks / {row['phi_txs']} txs, "
                    f"evaluate {row['evaluate_s']:.3f} s, record {row['record_s']:.3f} s), "
                    f"TLS verified on {row['tls_verified_nodes']}/{n} nodes, "
                    f"high findings {row['high_findings'] or 'none'}",
                    flush=True,
                )
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                row = {"nodes": n, "error": str(exc).splitlines()[0][:300]}
                print(f"{n:>3} nodes: {row['error']}", flush=True)
            finally:
                net.down()
            results["sweeps"].append(row)
        if args.window > 0:
            net = Network(Path(tmp) / "load", 4, "1s")
            try:
                net.up()
                results["load"] = load_test(net, args.window)
                print(f"block rate (4 nodes, 1s blocks): {results['load']}", flush=True)
            finally:
                net.down()
    done = [r for r in results["sweeps"] if "sweep_s" in r]
    first = done[0] if done else None
    for r in done:
        assert first is not None
        r["per_node_ms"] = round(1000 * r["sweep_s"] / r["nodes"], 1)
        r["vs_first"] = round(r["sweep_s"] / first["sweep_s"], 2)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
