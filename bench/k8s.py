"""Benchmark: the Kubernetes provider against a real control plane on 127.0.0.1 (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler built by `scripts/bootstrap kube`; no kubelet): the time of a
first apply of every object (``waitForReady: false``), of a no-op re-apply, of a no-op plan (server-side
dry-run of every object) and of observe (the audit), for 4, 16 and 64 validators.

    python bench/k8s.py [--sizes 4 16 64] [--repeat 3] [--no-controllers]

Each repeat applies a fresh network in its own namespace; every namespace is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from hcops.plan.desired import build_plan  # noqa: E402
from hcops.progress import SilentReporter  # noqa: E402
from hcops.providers.base import Action, ApplyOptions  # noqa: E402
from hcops.providers.kubernetes.objects import desired  # noqa: E402
from hcops.providers.kubernetes.provider import KubernetesProvider  # noqa: E402
from hcops.spec.loader import load_spec  # noqa: E402

ROLES = ["provider", "payer", "pharmacy", "laboratory", "regulator", "research"]
console = Console(highlight=False)


def spec_text(name: str, validators: int) -> str:
    orgs = "\n".join(
        f"""    - name: org-{i}
      role: {ROLES[i % len(ROLES)]}
      coveredEntity: true
      baa: {{signed: true, signedOn: 2026-01-15}}
      nodes:
        - {{name: val-{i}, role: validator, power: 10}}"""
        for i in range(validators)
    )
    return f"""apiVersion: hcops/v1alpha1
kind: Consortium
metadata:
  name: {name}
spec:
  chain:
    version: "0.38.17"
    image: hcops/cometbft:0.38.17
    chainId: bench-1
  organizations:
{orgs}
  provider:
    type: kubernetes
    kubernetes: {{waitForReady: false, context: hcops-test}}
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 64])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-controllers", action="store_true", help="etcd + kube-apiserver only")
    args = ap.parse_args()

    from tests.integration import k8s_harness

    root = Path(tempfile.mkdtemp(prefix="hcops-bench-k8s-"))
    try:
        cluster = k8s_harness.start_cluster(root / "kube", controllers=not args.no_controllers)
    except BaseException as exc:  # pytest.skip outside pytest: a missing binary
        console.print(f"[red]cannot start the control plane: {exc}[/red]")
        return 1
    namespaces: list[str] = []
    rows: list[list[str]] = []
    try:
        version = json.loads(cluster.get("/version")[1])["gitVersion"]
        with_ = "without" if args.no_controllers else "with"
        console.print(f"control plane {version} at {cluster.server}, {with_} controllers")
        prov = KubernetesProvider(kubeconfig=cluster.kubeconfig)
        for size in args.sizes:
            first: list[float] = []
            noop: list[float] = []
            plans: list[float] = []
            observes: list[float] = []
            objects = 0
            for r in range(args.repeat):
                name = f"bench-{size}-{r}-{k8s_harness.secrets.token_hex(2)}"
                folder = root / name
                folder.mkdir()
                (folder / "network.yaml").write_text(spec_text(name, size))
                plan = build_plan(load_spec(folder / "network.yaml"), folder / "state")
                objects = len(desired(plan).objects)
                namespaces.append(name)
                t0 = time.perf_counter()
                res = prov.apply(plan, SilentReporter(), ApplyOptions())
                first.append(time.perf_counter() - t0)
                assert res.changes.count(Action.create) == objects
                t0 = time.perf_counter()
                res = prov.apply(plan, SilentReporter(), ApplyOptions())
                noop.append(time.perf_counter() - t0)
                assert not res.changes.pending
                t0 = time.perf_counter()
                assert not prov.plan(plan).pending
                plans.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                prov.observe(plan)
                observes.append(time.perf_counter() - t0)
            med = statistics.median
            rows.append(
                [
                    str(size),
                    str(objects),
                    f"{med(first):.2f}",
                    f"{med(noop):.2f}",
                    f"{med(plans):.2f}",
                    f"{med(observes):.2f}",
                    f"{min(first):.2f}-{max(first):.2f}",
                ]
            )
            console.print(f"{size} validators: apply {med(first):.2f} s, no-op re-apply {med(noop):.2f} s")
    finally:
        for ns in namespaces:
            k8s_harness.cleanup(cluster, ns)
        cluster.stop()
    table = Table(title=f"kubernetes provider, median of {args.repeat}")
    for col in (
        "validators",
        "objects",
        "apply s",
        "no-op re-apply s",
        "no-op plan s",
        "observe s",
        "apply range s",
    ):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
