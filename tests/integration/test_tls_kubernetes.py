"""TLS on the RPC with the Kubernetes provider, against a real control plane (etcd, kube-apiserver,
controller manager, scheduler; no kubelet): the objects of a TLS network are accepted; the keys are in the
Secrets only and are the state folder's; every node's config.toml serves HTTPS only; the pods mount the
certificate, key and CA and probe over verified HTTPS; the StatefulSets' pods pass the namespace's
`restricted` Pod Security admission; an observer holds no validator key.

Reaching the pods over TLS (a port-forward through the API server and the kubelet) needs a node: see
test_kubernetes_node.py for the pod-level path."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcops.plan import certs
from hcops.providers.kubernetes.api import KubeApi
from hcops.providers.kubernetes.connect import connect
from tests.integration.k8s_harness import KubeCluster, KubeNetwork, cleanup, shared_cluster, unique_name

pytestmark = pytest.mark.integration

OBSERVER = "state-obs-0"


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> KubeCluster:
    return shared_cluster(request, tmp_path_factory)


@pytest.fixture(scope="module")
def net(kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeNetwork]:
    n = KubeNetwork(tmp_path_factory.mktemp("tls") / "net", unique_name("tls"), kube)
    n.write("  network:", "    rpc: {exposure: internal, tls: true}")
    proc = n.hcops("apply", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield n
    cleanup(kube, n.name)


@pytest.fixture(scope="module")
def api(kube: KubeCluster) -> KubeApi:
    return KubeApi(connect(kube.context, kube.kubeconfig))


def test_private_keys_are_in_the_secrets_only_and_are_the_state_folders(net: KubeNetwork, api: KubeApi) -> None:
    plan = net.plan()
    store = certs.store(plan)
    for node in plan.nodes:
        secret = api.request("GET", f"/api/v1/namespaces/{net.name}/secrets/{node.name}-keys")
        data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
        assert data["rpc-tls-key.pem"] == store.private_key(node.name)
        assert data["rpc-tls-cert.pem"] == certs.node_certificate(plan, node).cert_pem
        assert data["rpc-ca.pem"] == certs.ca_pem(plan)
        assert ("priv_validator_key.json" in data) is node.node.is_validator
    for kind, path in (("ConfigMap", "configmaps"), ("StatefulSet", "statefulsets"), ("Service", "services")):
        group = "/api/v1" if kind != "StatefulSet" else "/apis/apps/v1"
        listing = api.request("GET", f"{group}/namespaces/{net.name}/{path}")
        assert "PRIVATE KEY" not in str(listing), kind


def test_configs_serve_https_and_pods_probe_it(net: KubeNetwork, api: KubeApi) -> None:
    plan = net.plan()
    for node in plan.nodes:
        cm = api.request("GET", f"/api/v1/namespaces/{net.name}/configmaps/{node.name}-config")
        toml = cm["data"]["config.toml"]
        assert 'tls_cert_file = "rpc-tls-cert.pem"' in toml and 'tls_key_file = "rpc-tls-key.pem"' in toml
        sts = api.request("GET", f"/apis/apps/v1/namespaces/{net.name}/statefulsets/{node.name}")
        main = sts["spec"]["template"]["spec"]["containers"][0]
        mounted = {m["mountPath"] for m in main["volumeMounts"]}
        assert {f"/cometbft/config/{f}" for f in ("rpc-tls-cert.pem", "rpc-tls-key.pem", "rpc-ca.pem")} <= mounted
        assert ("/cometbft/config/priv_validator_key.json" in mounted) is node.node.is_validator
        assert main["readinessProbe"]["exec"]["command"][-1] == "https://127.0.0.1:26657/status"
        assert {"name": "SSL_CERT_FILE", "value": "/cometbft/config/rpc-ca.pem"} in main["env"]


def test_pods_are_admitted_under_the_restricted_profile(net: KubeNetwork, api: KubeApi) -> None:
    ns = api.request("GET", f"/api/v1/namespaces/{net.name}")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deadline = time.monotonic() + 60
    pods: list[object] = []
    while time.monotonic() < deadline:
        pods = api.request("GET", f"/api/v1/namespaces/{net.name}/pods")["items"]
        if len(pods) == len(net.plan().nodes):
            break
        time.sleep(1)
    assert len(pods) == len(net.plan().nodes), "the StatefulSet controller could not create every pod"


def test_a_second_apply_changes_nothing(net: KubeNetwork) -> None:
    proc = net.hcops("plan", "--detailed-exitcode")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_state_folder_holds_the_ca_key_only_there(net: KubeNetwork) -> None:
    folder: Path = net.state_dir / net.name / "tls"
    assert (folder / "ca.crt").is_file() and (folder / "ca.pem").stat().st_mode & 0o077 == 0
    rendered = net.root / "out"
    proc = net.hcops("render", "-o", str(rendered), "--target", "kubernetes")
    assert proc.returncode == 0, proc.stderr
    ca_key_line = (folder / "ca.pem").read_text().splitlines()[1]
    for path in rendered.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert ca_key_line not in text, path  # the CA key never leaves the state folder
            if "PRIVATE KEY" in text:
                assert path.parent.name == "secrets", path
