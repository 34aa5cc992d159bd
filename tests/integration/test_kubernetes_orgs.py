"""A consortium across organizations on a real Kubernetes cluster (control plane and kubelet), through the CLI:
4 organizations, each with its own state folder, its own namespace and its own kube context (one kubeconfig
holds them side by side; its current context answers nothing, so hcops must pick each organization's context
itself). Each creates its keys (`hcops org init`), one assembles the genesis, each applies its own nodes
(`hcops apply --org`): the first two cannot commit, the third sees blocks, the last one blocks signed by every
validator, with P2P across the namespaces. Then `status --org` and `destroy --org`, one namespace at a time.

Opt-in like every test that runs pods: ``HCOPS_K8S_NODE=1`` (`make test` and CI set it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcops.providers.kubernetes.api import KubeApi
from hcops.providers.kubernetes.connect import connect
from hcops.providers.kubernetes.rpc import ProxiedRpc
from tests.integration.k8s_harness import (
    EXAMPLE,
    KubeCluster,
    KubeNode,
    cleanup,
    leftovers,
    shared_node_cluster,
    unique_name,
    write_contexts,
)
from tests.integration.test_consortium_orgs import key_owners
from tests.integration.test_lifecycle_consortium import secrets

pytestmark = pytest.mark.integration

ENV = "k8s"
ORGS = {  # organization -> (its node, the suffix of its namespace and context)
    "st-mary-hospital": ("stmary-val-0", "stmary"),
    "northside-clinic": ("northside-val-0", "northside"),
    "bluecross-payer": ("bluecross-val-0", "bluecross"),
    "cityrx-pharmacy": ("cityrx-val-0", "cityrx"),
}
TIMEOUT = os.environ.get("HCOPS_K8S_TIMEOUT", "300")


class Orgs:
    def __init__(self, root: Path, cluster: KubeCluster) -> None:
        self.root, self.cluster = root, cluster
        self.name = unique_name("orgs")
        self.ns = {org: f"{self.name}-{short}" for org, (_, short) in ORGS.items()}
        self.context = {org: f"{short}-admin" for org, (_, short) in ORGS.items()}
        self.kubeconfig = write_contexts(root / "kubeconfig", cluster,
                                         {self.context[o]: self.ns[o] for o in ORGS}, current="nowhere")
        text = EXAMPLE.read_text()
        regulator = text[text.index("    - name: state-health-dept"):text.index("  network:\n")]
        self.spec = root / "network.yaml"
        self.spec.write_text(text.replace(regulator, ""))
        places = "\n".join(f"    - {{name: {o}, kubernetes: {{namespace: {self.ns[o]}, context: {self.context[o]}}}}}"
                           for o in ORGS)
        (root / "environments").mkdir()
        (root / "environments" / f"{ENV}.yaml").write_text(
            f"metadata: {{name: {self.name}}}\nspec:\n"
            "  chain: {blockInterval: 500ms}\n"
            "  defaults: {resources: {cpu: 250m, memory: 256Mi}, storage: {size: 1Gi, encrypted: true}}\n"
            "  provider: {type: kubernetes, kubernetes: {storageClass: encrypted-ssd}}\n"
            f"  organizations:\n{places}\n")

    def state(self, org: str) -> Path:
        return self.root / f"state-{org}"

    def hcops(self, *argv: str, org: str | None = None, codes: tuple[int, ...] = (0,)
              ) -> subprocess.CompletedProcess[str]:
        """``hcops COMMAND -f SPEC --env k8s [--state-dir <org's folder>] ARGV`` (COMMAND may be two words)."""
        command, rest = (argv[:2], argv[2:]) if argv[0] in ("org", "genesis") else (argv[:1], argv[1:])
        state = ["--state-dir", str(self.state(org))] if org else []
        cmd = [sys.executable, "-m", "hcops", *command, "-f", str(self.spec), "--env", ENV, *state, *rest]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=float(TIMEOUT) + 120, cwd=self.root,
                              env={**os.environ, "KUBECONFIG": str(self.kubeconfig), "COLUMNS": "200"})
        if proc.returncode not in codes:
            raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def api(self, org: str) -> KubeApi:
        return KubeApi(connect(self.context[org], self.kubeconfig))


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[KubeCluster, KubeNode]:
    return shared_node_cluster(tmp_path_factory.mktemp("kube-node"), request)


@pytest.fixture(scope="module")
def orgs(cluster: tuple[KubeCluster, KubeNode], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orgs]:
    kube, node = cluster
    o = Orgs(tmp_path_factory.mktemp("orgs"), kube)
    node.make_volumes(len(ORGS), "1Gi", "encrypted-ssd")
    yield o
    for ns in o.ns.values():
        cleanup(kube, ns)


def test_each_organization_applies_its_own_namespace(orgs: Orgs) -> None:
    for org in ORGS:
        orgs.hcops("org", "init", "--org", org, org=org)
    orgs.hcops("genesis", "assemble", *[str(orgs.root / f"join-{org}.json") for org in ORGS])
    lock_file = orgs.root / f"network.{ENV}.lock.json"
    lock = json.loads(lock_file.read_text())
    # Each member's nodes are dialled at their pod's name in the member's own namespace.
    assert {n["name"]: n["p2pAddress"] for n in lock["nodes"]} == {
        node: f"{node}-0.{node}.{orgs.ns[org]}.svc.cluster.local:26656" for org, (node, _) in ORGS.items()}
    every_secret = {org: secrets(orgs.state(org)) for org in ORGS}

    def only_own_keys() -> None:
        for org in ORGS:
            assert key_owners(orgs.state(org)) == {ORGS[org][0]}, org
            others = [s for o, keys in every_secret.items() if o != org for s in keys]
            text = "".join(f.read_text(errors="replace") for f in orgs.state(org).rglob("*") if f.is_file())
            assert not [s for s in others if s in text], f"{org}'s folder holds another member's key"

    only_own_keys()
    outputs = {}
    for org in ORGS:
        outputs[org] = orgs.hcops("apply", "--org", org, "--yes", "--timeout", TIMEOUT, org=org).stderr
        only_own_keys()
        # Only this member's namespace exists of those not applied yet: apply touched no other namespace.
        later = list(ORGS)[list(ORGS).index(org) + 1:]
        assert [o for o in later if orgs.cluster.get(f"/api/v1/namespaces/{orgs.ns[o]}")[0] != 404] == []
    assert json.loads(lock_file.read_text()) == lock  # read by each member, never rewritten

    first, second, third, last = (outputs[o] for o in ORGS)
    assert "10 of 40 voting power online" in first and "not waiting for blocks" in first, first
    assert "20 of 40 voting power online" in second and "not waiting for blocks" in second, second
    assert "30 of 40 voting power online" in third and "blocks signed by bluecross-val-0" in third, third
    assert "40 of 40 voting power online" in last and "blocks signed by every validator" in last, last

    for org, (node, _) in ORGS.items():
        api, ns = orgs.api(org), orgs.ns[org]
        # The keys are in the member's own namespace only, and only its own node's.
        found = api.list("v1", "Secret", ns, selector=f"hcops.network={orgs.name}")
        assert [s["metadata"]["name"] for s in found] == [f"{node}-keys"], found
        # P2P is let in from the network's pods of the other members' namespaces, and from nothing else.
        (p2p,) = [p for p in api.list("networking.k8s.io/v1", "NetworkPolicy", ns)
                  if p["metadata"]["name"] == "hcops-allow-p2p"]
        sources = p2p["spec"]["ingress"][0]["from"]
        assert sources[0] == {"podSelector": {"matchLabels": {"hcops.network": orgs.name}}}
        assert sources[1]["namespaceSelector"]["matchExpressions"][0]["values"] == sorted(
            orgs.ns[o] for o in ORGS if o != org)
        assert len(sources) == 2

    # Read from the chain, through the first member's context: a recent commit carries all 4 signatures.
    validators = {n["validatorAddress"] for n in lock["nodes"]}
    rpc = ProxiedRpc(orgs.api("st-mary-hospital"), orgs.ns["st-mary-hospital"], "stmary-val-0-0", attempts=3)
    height = rpc.status().height
    signed = [h for h in range(max(1, height - 8), height + 1) if rpc.commit(h).signers >= validators]
    assert signed, f"no commit up to {height} carries all 4 signatures"

    status = json.loads(orgs.hcops("status", "--org", "cityrx-pharmacy", "-o", "json", org="cityrx-pharmacy").stdout)
    assert [(n["name"], n["state"]) for n in status["nodes"]] == [("cityrx-val-0", "running")], status
    assert "no changes" in orgs.hcops("apply", "--org", "st-mary-hospital", "--yes", org="st-mary-hospital").stdout
    # A member audits its own namespace's nodes, through its context, into its own state folder (exit 1:
    # findings; the test cluster's storage, say, is not what is judged here).
    sweep = json.loads(orgs.hcops("audit", "--org", "cityrx-pharmacy", "--format", "json", org="cityrx-pharmacy",
                                  codes=(0, 1)).stdout)
    assert [n["name"] for n in sweep["nodes"]] == ["cityrx-val-0"], sweep["nodes"]
    others = [node for o, (node, _) in ORGS.items() if o != "cityrx-pharmacy"]
    assert not [f for f in sweep["findings"] if any(n in str(f.get("resource")) for n in others)], sweep["findings"]
    assert list(orgs.state("cityrx-pharmacy").rglob("audit*"))

    # Each member removes its own namespace; the others' are untouched, the lock file stays.
    for i, org in enumerate(ORGS):
        orgs.hcops("destroy", "--org", org, "--prune-volumes", org=org)
        assert orgs.cluster.get(f"/api/v1/namespaces/{orgs.ns[org]}")[0] == 404
        for other in list(ORGS)[i + 1:]:
            assert [s["metadata"]["name"] for s in orgs.api(other).list("apps/v1", "StatefulSet", orgs.ns[other])
                    ] == [ORGS[other][0]]
    assert leftovers(orgs.cluster, orgs.name) == [] and lock_file.exists()
