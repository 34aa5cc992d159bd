"""The transaction scan (hcops.audit.chainscan): bounded per sweep, resumed from the recorded cursor, only
blocks with transactions read, hits kept across sweeps, anchors pass, values never reported; and through
the Auditor: the PHI-1 runtime finding names height and hash, never the value."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import replace as dataclass_replace
from pathlib import Path

from hcops.audit.chainscan import MAX_BLOCKS, Cursor, scan, tx_hash
from hcops.audit.phi import Detectors
from hcops.plan.desired import NetworkPlan
from hcops.usecases.audit import sweep_json
from tests.audit import fakes
from tests.audit.conftest import NOW
from tests.audit.test_sweep import auditor

SSN_TX = b"patient=123-45-6789"
ANCHOR = b"hcops-audit/small-net/7=" + hashlib.sha256(b"head").hexdigest().encode()


def test_first_scan_starts_at_the_earliest_block_and_reads_only_blocks_with_transactions() -> None:
    chain = fakes.FakeChain(head=45, txs={3: [b"a=1"], 40: [SSN_TX, ANCHOR]})
    s = scan(chain, source="a", head=45, cursor=None, policy="none", detectors=Detectors())
    assert (s.first, s.last, s.blocks, s.txs) == (1, 45, 45, 3)
    assert [c for c in chain.calls if c.startswith("block ")] == ["block 3", "block 40"]
    assert sum(c.startswith("blockchain") for c in chain.calls) == 3  # 20 headers per call
    assert s.new_hits == ({"height": 40, "txHash": tx_hash(SSN_TX), "kind": "ssn"},)
    assert s.cursor == Cursor(46, 1, True, s.new_hits, 1)
    facts = s.facts()
    assert facts["complete"] and facts["caughtUp"] and facts["fromStart"]
    assert "123-45-6789" not in json.dumps(facts)


def test_scan_is_bounded_and_resumes_where_it_stopped() -> None:
    chain = fakes.FakeChain(head=500)
    first = scan(chain, source="a", head=500, cursor=None, policy="none", detectors=Detectors())
    assert (first.first, first.last) == (1, MAX_BLOCKS) and not first.facts()["complete"]
    again = Cursor.from_record(first.cursor.to_record())  # as the next sweep reads it from the log
    second = scan(chain, source="a", head=500, cursor=again, policy="none", detectors=Detectors())
    assert (second.first, second.last) == (MAX_BLOCKS + 1, 2 * MAX_BLOCKS)
    assert second.cursor is not None and second.cursor.covered_from == 1


def test_a_failing_node_leaves_the_cursor_after_the_last_block_read() -> None:
    chain = fakes.FakeChain(head=60, txs={10: [b"a=1"], 30: [b"b=2"]})
    chain.fail_at = 30
    s = scan(chain, source="a", head=60, cursor=None, policy="none", detectors=Detectors())
    assert s.error and s.last == 29 and s.cursor is not None and s.cursor.next_height == 30  # 30 was not read
    assert not s.facts()["complete"]
    chain.fail_at = None
    s2 = scan(chain, source="a", head=60, cursor=s.cursor, policy="none", detectors=Detectors())
    assert (s2.first, s2.last, s2.error) == (30, 60, None) and s2.txs == 1


def test_full_blocks_end_the_sweep_at_the_transaction_budget() -> None:
    chain = fakes.FakeChain(head=50, txs={h: [f"k{h}-{i}=v".encode() for i in range(40)] for h in range(1, 51)})
    s = scan(chain, source="a", head=50, cursor=None, policy="none", detectors=Detectors(), max_txs=100)
    assert (s.last, s.txs) == (3, 120) and s.cursor is not None and s.cursor.next_height == 4
    assert not s.caught_up


def test_hits_stay_after_the_sweep_that_found_them() -> None:
    chain = fakes.FakeChain(head=10, txs={5: [SSN_TX]})
    s1 = scan(chain, source="a", head=10, cursor=None, policy="none", detectors=Detectors())
    chain.head = 20
    s2 = scan(chain, source="a", head=20, cursor=s1.cursor, policy="none", detectors=Detectors())
    assert s2.new_hits == () and s2.facts()["hits"] == list(s1.new_hits) and s2.facts()["hitsTotal"] == 1


def test_hashes_only_flags_values_that_are_not_digests_but_passes_anchors_and_digests() -> None:
    digest = hashlib.sha256(b"lab result 9").hexdigest().encode()
    chain = fakes.FakeChain(head=5, txs={2: [ANCHOR, b"lab/9=" + digest, b"lab/10=Jane Doe"]})
    s = scan(chain, source="a", head=5, cursor=None, policy="hashes-only", detectors=Detectors())
    assert [(h["height"], h["kind"]) for h in s.new_hits] == [(2, "not-a-digest")]


def test_a_sweep_finds_an_identifier_and_never_records_its_value(plan: NetworkPlan, tmp_path: Path) -> None:
    clock = [NOW]
    a, prov = auditor(plan, tmp_path, clock)
    a.run()  # heights 1..110
    prov.chain.txs = {115: [SSN_TX]}
    clock[0] = NOW + dt.timedelta(seconds=30)
    sweep = a.run()  # heights 111..120
    hits = [f for f in sweep.report.findings if f.id == "HC-RT-PHI1-IDENTIFIER-ON-CHAIN"]
    assert len(hits) == 1 and "at height 115" in hits[0].message and hits[0].control == "PHI-1"
    assert hits[0].resource == f"tx/{tx_hash(SSN_TX)}" and not sweep.passed
    assert sweep.facts["phi"]["scanned"] == {"fromHeight": 111, "toHeight": 120, "blocks": 10, "txs": 1}
    assert sweep.evidence_records["phi"]["measured"] and sweep.classes["PHI-1"] in ("verified", "declared")
    recorded = json.dumps([r.body for r in a.log.records()])
    out = json.dumps(sweep_json(sweep, plan.name))
    assert "123-45-6789" not in recorded and "123-45-6789" not in out
    clock[0] = NOW + dt.timedelta(seconds=60)
    later = a.run()  # the transaction is still on chain: the finding stays open
    assert "HC-RT-PHI1-IDENTIFIER-ON-CHAIN" in {f.id for f in later.report.findings}
    assert later.facts["phi"]["scanned"]["fromHeight"] == 121 and not later.changes.cleared


def test_clients_reach_docker_nodes_directly_and_kubernetes_pods_through_the_api(plan: NetworkPlan) -> None:
    from hcops.audit.chainscan import clients
    from hcops.providers.base import Observation
    from hcops.providers.kubernetes.rpc import ProxiedRpc

    obs = fakes.observation(plan, NOW)
    docker = clients(object(), plan, obs)
    assert len(docker) == 2 and docker[0][1].base_url.startswith("http://127.0.0.1:")

    class Api:
        server = "https://k8s.invalid"

    class Kube:  # each node's pod in its organization's namespace (several namespaces)
        def node_place(self, p: NetworkPlan, node: str) -> tuple[Api, str]:
            return Api(), f"ns-{p.consortium.node(node).org}"

    pods = tuple(dataclass_replace(n, resource=f"pod/{n.name}-0") for n in obs.nodes)
    kube = clients(Kube(), plan, Observation(obs.network, pods, (), {"provider": "kubernetes", "namespace": "ns"}))
    assert len(kube) == 2 and all(isinstance(rpc, ProxiedRpc) for _, rpc in kube)
    for node, rpc in kube:
        assert f"/namespaces/ns-{node.org}/pods/{node.name}-0" in rpc.base_url
