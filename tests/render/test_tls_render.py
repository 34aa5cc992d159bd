"""TLS on the RPC in the renders: the network CA and per-node server certificates (hcops.plan.certs), the
config.toml fields, the files each target hands the nodes, where private keys may appear, determinism, and
the cases where a certificate is issued again (names changed, renew) or kept."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hcops.errors import InvalidInput
from hcops.plan import certs
from hcops.plan.desired import NetworkPlan
from hcops.policy.input import build_input
from hcops.render import docker_compose, kubernetes_objects
from hcops.render.docker_doc import documents
from tests.render.helpers import SPEC, fixture_plan, is_key_material, render_all, tree, yaml_docs

TLS_LINE = "rpc: {exposure: consortium, tls: true, "


def tls_spec(tmp_path: Path, edit: str = TLS_LINE) -> Path:
    text = SPEC.read_text()
    assert "rpc: {exposure: internal, " in text
    path = tmp_path / "network.yaml"
    path.write_text(text.replace("rpc: {exposure: internal, ", edit))
    return path


@pytest.fixture
def plan(tmp_path: Path) -> NetworkPlan:
    return fixture_plan(tmp_path / "state", tls_spec(tmp_path))


@pytest.fixture
def out(plan: NetworkPlan, tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    render_all(plan, folder)
    return folder


def load_cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def test_config_serves_https_only_with_the_files_in_the_config_folder(plan: NetworkPlan) -> None:
    for node in plan.nodes:
        rpc = plan.docker_config(node)["rpc"]
        assert (rpc["tls_cert_file"], rpc["tls_key_file"]) == ("rpc-tls-cert.pem", "rpc-tls-key.pem")


def test_no_tls_fields_without_tls(tmp_path: Path) -> None:
    plain = fixture_plan(tmp_path / "state")
    assert "tls_cert_file" not in plain.docker_config(plain.nodes[0])["rpc"]
    assert not (plain.state_dir / "tls").exists()
    assert certs.client_context(plain) is None


def test_certificates_chain_to_the_network_ca_for_every_name(plan: NetworkPlan) -> None:
    ca = load_cert(certs.ca_pem(plan))
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for node in plan.nodes:
        cert = certs.node_certificate(plan, node)
        parsed = load_cert(cert.cert_pem)
        parsed.verify_directly_issued_by(ca)
        sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = set(sans.get_values_for_type(x509.DNSName))
        ips = {str(i) for i in sans.get_values_for_type(x509.IPAddress)}
        assert {node.name, f"golden-net-{node.name}", "localhost",
                f"{node.name}-0.{node.name}.golden.svc.cluster.local"} <= dns
        assert ips == {"127.0.0.1", str(ipaddress.ip_address(node.docker_ip))}
        assert dt.timedelta(days=364) < cert.not_after - dt.datetime.now(dt.UTC) <= dt.timedelta(days=365)


def test_private_keys_are_0600_in_a_0700_folder_and_never_in_a_repr(plan: NetworkPlan) -> None:
    folder = plan.state_dir / "tls"
    certs.node_certificate(plan, plan.nodes[0])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == (0o644 if path.name == "ca.crt" else 0o600), path
    assert b"PRIVATE KEY" not in (folder / "ca.crt").read_bytes()
    cert = certs.node_certificate(plan, plan.nodes[0])
    assert "BEGIN" not in repr(cert)  # the PEM is kept out of reprs (and so out of logs)


def test_a_loose_key_file_is_refused(plan: NetworkPlan) -> None:
    node = plan.nodes[0]
    certs.node_certificate(plan, node)
    path = plan.state_dir / "tls" / f"{node.name}.pem"
    path.chmod(0o644)
    with pytest.raises(InvalidInput, match="0644"):
        certs.store(plan).private_key(node.name)


def test_certificates_are_kept_and_renders_stay_identical(plan: NetworkPlan, tmp_path: Path) -> None:
    render_all(plan, tmp_path / "a")
    again = fixture_plan(tmp_path / "state", tls_spec(tmp_path))  # a new process would read the same state
    certs._CACHE.clear()
    render_all(again, tmp_path / "b")
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_renew_replaces_key_and_certificate_and_new_names_reissue(plan: NetworkPlan, tmp_path: Path) -> None:
    node = plan.nodes[0]
    first = certs.node_certificate(plan, node)
    key = certs.store(plan).private_key(node.name)
    certs._CACHE.clear()  # as a new process: read from the state folder, kept (same names)
    assert certs.node_certificate(plan, node).fingerprint == first.fingerprint
    renewed = certs.renew(plan, node)
    assert renewed.fingerprint != first.fingerprint and certs.store(plan).private_key(node.name) != key
    assert certs.node_certificate(plan, node).fingerprint == renewed.fingerprint
    load_cert(renewed.cert_pem).verify_directly_issued_by(load_cert(certs.ca_pem(plan)))  # same CA
    # another subnet gives the node another address: its certificate no longer fits and is issued again
    spec = tls_spec(tmp_path)
    spec.write_text(spec.read_text().replace("rpcHostPortBase: 28657", "rpcHostPortBase: 28657, subnet: 10.77.0.0/24"))
    certs._CACHE.clear()
    readdressed = fixture_plan(tmp_path / "state", spec)
    cert = certs.node_certificate(readdressed, readdressed.nodes[0])
    assert cert.fingerprint != renewed.fingerprint and "10.77.0.10" in cert.ip_addresses


def test_docker_target_hands_cert_key_and_ca(plan: NetworkPlan, out: Path) -> None:
    ca = (out / "docker" / "rpc-ca.pem").read_bytes()
    assert ca == certs.ca_pem(plan)
    for node in plan.nodes:
        folder = out / "docker" / "nodes" / node.name
        assert (folder / "rpc-tls-cert.pem").read_bytes() == certs.node_certificate(plan, node).cert_pem
        key = folder / "keys" / "rpc-tls-key.pem"
        assert key.read_bytes() == certs.store(plan).private_key(node.name)
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    svc = docker_compose(plan)["services"][plan.nodes[0].name]
    binds = {v["target"]: v["source"] for v in svc["volumes"] if v["type"] == "bind"}
    assert binds["/cometbft/config/rpc-tls-key.pem"] == f"./nodes/{plan.nodes[0].name}/keys/rpc-tls-key.pem"
    assert binds["/cometbft/config/rpc-ca.pem"] == "./rpc-ca.pem"
    assert svc["environment"] == {"SSL_CERT_FILE": "/cometbft/config/rpc-ca.pem"}
    assert svc["healthcheck"]["test"] == ["CMD", "/usr/local/bin/hcops-probe", "https://127.0.0.1:26657/status"]
    init = docker_compose(plan)["services"][plan.nodes[0].name + "_init"]
    assert not any("rpc-tls-key" in v["target"] for v in init["volumes"])  # init gets no TLS key


def test_kubernetes_key_only_in_the_secret(plan: NetworkPlan, out: Path) -> None:
    node = plan.nodes[0]
    key = certs.store(plan).private_key(node.name)
    secret = yaml_docs(out / "kubernetes" / "secrets" / f"{node.name}.yaml")[0]
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert data["rpc-tls-key.pem"] == key and data["rpc-ca.pem"] == certs.ca_pem(plan)
    sts = next(o for o in kubernetes_objects(plan) if o["kind"] == "StatefulSet" and o["metadata"]["name"] == node.name)
    main = sts["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
    assert mounts["/cometbft/config/rpc-tls-key.pem"] == {"name": "keys", "mountPath": "/cometbft/config/rpc-tls-key.pem",
                                                         "subPath": "rpc-tls-key.pem", "readOnly": True}
    assert main["env"] == [{"name": "SSL_CERT_FILE", "value": "/cometbft/config/rpc-ca.pem"}]
    assert main["readinessProbe"]["exec"]["command"][1] == "https://127.0.0.1:26657/status"
    init = sts["spec"]["template"]["spec"]["initContainers"][0]
    assert not any("rpc-tls" in m["mountPath"] for m in init["volumeMounts"])


def test_no_private_key_outside_key_material(plan: NetworkPlan, out: Path) -> None:
    keys = [certs.store(plan).private_key(n.name) for n in plan.nodes]
    bodies = [line for k in keys for line in k.decode().splitlines() if "PRIVATE" not in line]
    ca_key_body = (plan.state_dir / "tls" / "ca.pem").read_text().split("-----END PRIVATE KEY-----")[0]
    for rel, data in tree(out).items():
        if is_key_material(rel):
            assert b"BEGIN PRIVATE KEY" not in data or rel.endswith(("rpc-tls-key.pem", ".yaml")), rel
            continue
        text = data.decode()
        assert "PRIVATE KEY" not in text, rel
        assert not any(b in text for b in bodies), rel
        assert ca_key_body.splitlines()[1] not in text, rel  # the CA's key never leaves the state folder
    inp = str(build_input(plan, "all"))
    assert "PRIVATE KEY" not in inp and not any(b in inp for b in bodies)


def test_the_rpc_endpoint_carries_the_network_ca(plan: NetworkPlan) -> None:
    from hcops.providers.docker.containers import DesiredContainer
    from hcops.providers.rpc import RpcClient

    d = DesiredContainer(plan, plan.nodes[1])
    assert d.rpc_url == f"https://127.0.0.1:{plan.nodes[1].rpc_host_port}"
    ctx = RpcClient(d.rpc_url).ssl_context
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx is documents(plan).ssl_context
    assert len(ctx.get_ca_certs()) == 1  # the network CA only, no system roots
    der = load_cert(certs.ca_pem(plan)).public_bytes(serialization.Encoding.DER)
    assert ctx.get_ca_certs(binary_form=True) == [der]
