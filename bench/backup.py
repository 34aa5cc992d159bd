"""Benchmark: `hcops backup` and `hcops drill restore` of a node holding 1,000 and 10,000 blocks.

Blocks are accumulated fast by a development-tier network of one validator and one observer with a short
block interval (default 20ms); the observer, the default backup source, is stopped, copied and restarted,
then the drill restores that archive into an isolated scratch node and compares block hashes with the live
chain. Target: the drill at 1,000 blocks in at most 60 s. Needs a Docker engine with the node image.
Everything it creates is removed at the end.

    python bench/backup.py [--heights 1000 10000] [--block-interval 20ms]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TARGET_DRILL_1000 = 60.0


def spec(name: str, port_base: int, subnet: str, interval: str) -> str:
    return f"""apiVersion: hcops/v1alpha1
kind: Consortium
metadata: {{name: {name}}}
spec:
  tier: development
  chain: {{version: "0.38.17", image: "hcops/cometbft:0.38.17", chainId: bench-1, blockInterval: {interval}}}
  defaults: {{resources: {{cpu: "1000m", memory: 512Mi}}}}
  organizations:
    - name: org-a
      role: provider
      baa: {{signed: true, signedOn: 2026-01-15}}
      nodes:
        - {{name: val-0, role: validator, power: 10}}
        - {{name: obs-0, role: observer}}
  backup: {{enabled: true, schedule: "0 2 * * *", retentionDays: 30}}
  provider: {{type: docker, docker: {{rpcHostPortBase: {port_base}, subnet: {subnet}}}}}
"""


def free_base() -> int:
    for _ in range(100):
        base = random.randrange(20000, 32000)
        ok = True
        for p in (base, base + 1):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
        if ok:
            return base
    raise SystemExit("no free ports")


def hcops(folder: Path, *argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "hcops", argv[0], "-f", str(folder / "network.yaml"), "--state-dir",
           str(folder / "state"), *argv[1:]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=folder)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def height(port: int) -> int:
    from hcops.providers.rpc import RpcClient

    return RpcClient(f"http://127.0.0.1:{port}", timeout=3.0).status().height


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heights", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--block-interval", default="20ms")
    args = ap.parse_args()
    name = f"bench-bk-{uuid.uuid4().hex[:6]}"
    base = free_base()
    subnet = f"10.{random.randrange(200, 255)}.{random.randrange(0, 256)}.0/24"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "network.yaml").write_text(spec(name, base, subnet, args.block_interval))
        try:
            hcops(folder, "apply", "--yes", "--skip-gate", "--reason", "bench/backup.py")
            for target in args.heights:
                t0 = time.monotonic()
                while height(base + 1) < target:
                    time.sleep(2)
                print(f"height {target} reached after {time.monotonic() - t0:.0f} s", file=sys.stderr)
                t0 = time.monotonic()
                made = json.loads(hcops(folder, "backup", "-o", "json").stdout)[0]
                t_backup = time.monotonic() - t0
                t0 = time.monotonic()
                hcops(folder, "drill", "restore", "--from", made["id"])
                t_drill = time.monotonic() - t0
                rows.append((target, made["height"], made["files"], made["data_bytes"], made["size"],
                             made["stopped_seconds"], t_backup, t_drill))
        finally:
            with contextlib.suppress(SystemExit):
                hcops(folder, "destroy", "--prune-volumes")
    print("| blocks (target) | height backed up | files | data bytes | archive bytes | source stopped | "
          "`hcops backup` | `hcops drill restore` |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for target, h, files, data, size, stopped, tb, td in rows:
        print(f"| {target:,} | {h:,} | {files} | {data:,} | {size:,} | {stopped:.1f} s | {tb:.1f} s | {td:.1f} s |")
    drill_1000 = next((r[7] for r in rows if r[0] == 1000), None)
    if drill_1000 is not None:
        verdict = "met" if drill_1000 <= TARGET_DRILL_1000 else "MISSED"
        print(f"\ndrill at 1,000 blocks: {drill_1000:.1f} s (target <= {TARGET_DRILL_1000:.0f} s: {verdict})")


if __name__ == "__main__":
    main()
