"""PHI on chain, measured on a real network (fails under CI=true without an engine): a transaction with an
SSN-shaped value broadcast to a `phiOnChain: none` network is found by the next sweep, which names its
height and hash; no output, report or audit log record ever holds the value. hcops' own anchor
transactions (the example anchors every sweep's head) are read too and pass."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.providers.docker_support import TestNetwork

pytestmark = pytest.mark.integration

SSN = "123-45-6789"
PHI_RULE = "HC-RT-PHI1-IDENTIFIER-ON-CHAIN"


@pytest.fixture(scope="module")
def net(module_network: TestNetwork) -> TestNetwork:
    module_network.hcops("apply", "--yes", check=True, timeout=600)
    return module_network


def _audit(net: TestNetwork, *extra: str) -> tuple[dict[str, Any], str]:
    proc = net.hcops("audit", "--format", "json", *extra)
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout), proc.stdout + proc.stderr


def _broadcast(net: TestNetwork, tx: str) -> dict[str, Any]:
    query = urllib.parse.urlencode({"tx": f'"{tx}"'})
    with urllib.request.urlopen(f"http://127.0.0.1:{net.port_base}/broadcast_tx_commit?{query}", timeout=30) as r:
        doc: dict[str, Any] = json.loads(r.read())["result"]
    assert int(doc["tx_result"].get("code") or 0) == 0, doc
    return doc


def test_sweeps_read_every_block_and_anchors_pass(net: TestNetwork) -> None:
    for _ in range(10):  # the first sweeps catch up with the chain (at most 200 blocks per sweep)
        doc, _ = _audit(net)
        if doc["phi"]["caughtUp"]:
            break
    phi = doc["phi"]
    assert phi["caughtUp"] and phi["fromStart"] and phi["coveredFrom"] == 1 and phi["complete"], phi
    assert phi["scanned"]["txs"] >= 1 or phi["coveredTo"] >= 1  # anchors of earlier sweeps are on chain
    assert doc["evidence"]["phi"]["measured"] is True
    assert not [f for f in doc["findings"] if f["control"] == "PHI-1"], doc["findings"]


def test_an_ssn_on_chain_is_found_by_the_next_sweep_without_echoing_it(net: TestNetwork, tmp_path: Any) -> None:
    committed = _broadcast(net, f"patient={SSN}")
    height, tx_hash = int(committed["height"]), str(committed["hash"]).upper()
    doc, text = _audit(net)
    hits = [f for f in doc["findings"] if f["id"] == PHI_RULE]
    assert len(hits) == 1, doc["findings"]
    assert f"at height {height}" in hits[0]["message"] and tx_hash in hits[0]["message"]
    assert hits[0]["resource"] == f"tx/{tx_hash}" and hits[0]["control"] == "PHI-1"
    assert hits[0]["severity"] == "high" and not doc["passed"]
    assert SSN not in text

    table = net.hcops("audit")  # the table output and its exit code
    assert table.returncode == 1 and PHI_RULE in table.stdout and SSN not in table.stdout + table.stderr
    for fmt in ("json", "md", "html"):
        out = tmp_path / f"report.{fmt}"
        proc = net.hcops("report", "--format", fmt, "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        body = out.read_text()
        assert SSN not in body and SSN not in proc.stdout + proc.stderr
        if fmt == "json":
            phi1 = next(c for c in json.loads(body)["controls"] if c["id"] == "PHI-1")
            assert phi1["status"] == "fail" and any(tx_hash in f["message"] for f in phi1["findings"])
    log = net.state_dir / net.name / "audit.db"
    for path in (log, log.with_name("audit.db-wal")):
        if path.exists():
            assert SSN.encode() not in path.read_bytes()


def test_the_finding_stays_while_the_transaction_is_on_chain(net: TestNetwork) -> None:
    doc, text = _audit(net)
    assert doc["phi"]["newHits"] == 0 and any(f["id"] == PHI_RULE for f in doc["findings"])
    assert SSN not in text
