"""TLS on the nodes' RPC, end to end on the real engine through the CLI: the example consortium with its TLS
overlay (examples/regional-health-net/environments/tls.yaml) is applied; plain HTTP is refused and HTTPS
verifies against the network CA (curl, as an operator would); `hcops status` shows the https scheme and
the TLS facts the sweep measures; the audit has no TS-2 finding; no private key shows anywhere it is not
handed; `hcops certs rotate` renews every certificate one node at a time while the chain keeps committing.
The steps run in order on one network."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hcops.plan import certs
from hcops.plan.desired import build_plan
from hcops.providers.rpc import RpcClient, RpcUnavailable
from hcops.spec.loader import load_spec
from tests.integration.requirements import unavailable
from tests.providers import docker_support
from tests.providers.docker_support import ROOT, TestNetwork

pytestmark = pytest.mark.integration

TLS_OVERLAY = ROOT / "examples" / "regional-health-net" / "environments" / "tls.yaml"
NODES = ["stmary-val-0", "northside-val-0", "bluecross-val-0", "cityrx-val-0", "state-obs-0"]


def curl() -> str:
    path = shutil.which("curl")
    if path is None:
        unavailable("curl is not installed")
    return str(path)


@pytest.fixture(scope="module")
def net(docker_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNetwork]:
    n = docker_support.new_network(docker_engine, tmp_path_factory.mktemp("tls"), "tls")
    # The example's TLS overlay, plus what keeps a test network apart (name, ports, subnet, fast blocks).
    overlay = yaml.safe_load(TLS_OVERLAY.read_text())
    assert overlay["spec"]["network"]["rpc"]["tls"] is True
    overlay["metadata"] = {"name": n.name}
    overlay["spec"]["chain"]["blockInterval"] = n.block_interval
    overlay["spec"]["provider"] = {"docker": {"rpcHostPortBase": n.port_base, "subnet": n.subnet}}
    (n.root / "environments" / "test.yaml").write_text(yaml.safe_dump(overlay))
    try:
        n.hcops("apply", "--yes", check=True, timeout=600)
        yield n
    finally:
        docker_support.cleanup(docker_engine, n.name)


def ca_file(net: TestNetwork) -> Path:
    return net.state_dir / net.name / "tls" / "ca.crt"


def ports(net: TestNetwork) -> list[int]:
    return [net.port_base + i for i in range(len(NODES))]


def status_json(net: TestNetwork) -> dict[str, Any]:
    proc = net.hcops("status", "-o", "json", check=True)
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_plain_http_fails_and_https_verifies_against_the_network_ca(net: TestNetwork) -> None:
    for port in ports(net):
        plain = subprocess.run([curl(), "-sf", "-m", "5", f"http://127.0.0.1:{port}/status"],
                               capture_output=True, text=True, timeout=30)
        assert plain.returncode != 0, f"plain HTTP answered on {port}: {plain.stdout[:200]}"
        secure = subprocess.run([curl(), "-sf", "-m", "5", "--cacert", str(ca_file(net)),
                                 f"https://127.0.0.1:{port}/status"], capture_output=True, text=True, timeout=30)
        assert secure.returncode == 0, secure.stderr
        assert json.loads(secure.stdout)["result"]["node_info"]["network"] == "rhn-1"
        # not a public CA: without the network's CA the certificate is refused
        untrusted = subprocess.run([curl(), "-sf", "-m", "5", f"https://127.0.0.1:{port}/status"],
                                   capture_output=True, text=True, timeout=30)
        assert untrusted.returncode != 0


def test_status_shows_https_and_the_measured_tls_facts(net: TestNetwork) -> None:
    table = net.hcops("status", check=True).stdout
    assert f"https://127.0.0.1:{net.port_base}" in table
    doc = status_json(net)
    now = dt.datetime.now(dt.UTC)
    for node in doc["nodes"]:
        rpc = node["rpc"]
        assert rpc["url"].startswith("https://127.0.0.1:") and rpc["reachable"], node["name"]
        t = rpc["tls"]
        assert t["enabled"] and t["handshake"] and t["verified"], (node["name"], t)
        assert t["plaintextRefused"] is True and t["plaintextStatus"] == "HTTP 400", t
        assert t["issuer"].startswith(f"CN=hcops RPC CA of network {net.name}")
        left = dt.datetime.fromisoformat(t["notAfter"].replace("Z", "+00:00")) - now
        assert dt.timedelta(days=360) < left <= dt.timedelta(days=366)
        # the container's own health probe verifies the same certificate against the same CA
        assert node["health"] in ("healthy", "starting"), node


def test_audit_reports_no_transmission_finding_and_the_facts_show_tls_verified(net: TestNetwork) -> None:
    from hcops.audit.facts import build_facts
    from hcops.providers.docker.provider import DockerProvider

    proc = net.hcops("audit", "--format", "json")
    doc = json.loads(proc.stdout)
    transmission = [f for f in doc["findings"] if f["control"] in ("TS-1", "TS-2")]
    assert transmission == [], transmission
    # The fact document the runtime rules judge carries each node's measured TLS (nodes[].rpc.tls).
    plan = build_plan(load_spec(net.spec, "test"), net.state_dir)
    facts = build_facts(plan, DockerProvider().observe(plan), sweep_id="t", now=dt.datetime.now(dt.UTC))
    measured = {n["name"]: (n["rpc"].get("tls") or {}) for n in facts["nodes"]}
    assert all(t.get("verified") and t.get("plaintextRefused") for t in measured.values()), measured


def test_no_private_key_outside_where_it_is_handed(net: TestNetwork) -> None:
    plan = build_plan(load_spec(net.spec, "test"), net.state_dir)
    store = certs.store(plan)
    keys = [store.private_key(n) for n in NODES]
    body_lines = [line for k in keys for line in k.decode().splitlines() if "PRIVATE KEY" not in line]
    outputs = [net.hcops("status", "-o", "json").stdout, net.hcops("audit", "--format", "json").stdout,
               net.hcops("status").stdout, net.hcops("plan").stdout]
    for text in outputs:
        assert "PRIVATE KEY" not in text
        assert not any(line in text for line in body_lines)
    tls_dir = net.state_dir / net.name / "tls"
    for path in tls_dir.iterdir():
        mode = path.stat().st_mode & 0o777
        assert mode == (0o644 if path.name == "ca.crt" else 0o600), (path, oct(mode))
    assert tls_dir.stat().st_mode & 0o777 == 0o700
    for node in status_json(net)["nodes"]:
        key = node["container"]["key_files"]["config/rpc-tls-key.pem"]
        assert (key["mode"], key["uid"]) == ("0600", 10001), key


class Heights:
    """The chain's height, read over TLS from every node twice a second while a rotation runs."""

    def __init__(self, net: TestNetwork) -> None:
        plan = build_plan(load_spec(net.spec, "test"), net.state_dir)
        context = certs.client_context(plan)
        self.clients = [RpcClient(f"https://127.0.0.1:{p}", timeout=1.0, attempts=1, ssl_context=context)
                        for p in ports(net)]
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            best = -1
            for c in self.clients:
                try:
                    best = max(best, c.status().height)
                except RpcUnavailable:
                    continue
            if best >= 0:
                self.samples.append((time.monotonic(), best))
            self.stop.wait(0.5)

    def longest_stall(self) -> float:
        """The longest time the height did not advance, in seconds."""
        longest, since, last = 0.0, self.samples[0][0], self.samples[0][1]
        for t, h in self.samples[1:]:
            if h > last:
                since, last = t, h
            longest = max(longest, t - since)
        return longest


def test_certs_rotate_renews_every_certificate_while_the_chain_keeps_committing(net: TestNetwork) -> None:
    before = {n["name"]: n["rpc"]["tls"]["fingerprint"] for n in status_json(net)["nodes"]}
    heights = Heights(net)
    heights.thread.start()
    try:
        proc = subprocess.run([sys.executable, "-m", "hcops", "certs", "rotate", *net.args()], capture_output=True,
                              text=True, timeout=900, cwd=net.root, env={**os.environ, "COLUMNS": "200"})
    finally:
        heights.stop.set()
        heights.thread.join()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rotating = [line for line in proc.stderr.splitlines() if line.startswith("==> rotating ")]  # progress
    assert [line.split()[2] for line in rotating] == ["state-obs-0", *NODES[:4]], proc.stderr  # observer first
    assert "rotated 5 certificate(s)" in proc.stdout
    assert "PRIVATE KEY" not in proc.stdout + proc.stderr
    after = {n["name"]: n["rpc"]["tls"] for n in status_json(net)["nodes"]}
    for name, t in after.items():
        assert t["verified"] and t["fingerprint"] != before[name], name
    assert heights.samples[-1][1] > heights.samples[0][1] + 10
    assert heights.longest_stall() < 15.0, heights.samples
    # the CA did not change: the operator's trust file still works
    secure = subprocess.run([curl(), "-sf", "-m", "5", "--cacert", str(ca_file(net)),
                             f"https://127.0.0.1:{net.port_base}/status"], capture_output=True, timeout=30)
    assert secure.returncode == 0
