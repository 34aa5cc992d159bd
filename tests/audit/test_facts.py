"""The fact document built from plan + observation (+ previous sweep)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hcops.audit.evaluate import load_runtime_pack
from hcops.audit.facts import Previous, build_facts, nodes_summary, parse_rfc3339_ns, summary
from hcops.plan.desired import NetworkPlan
from hcops.policy.engines import EmbeddedEngine
from hcops.providers.base import NodeStatus, Observation
from tests.audit import fakes
from tests.audit.conftest import NOW


def test_docker_observation_becomes_provider_neutral_facts(plan: NetworkPlan) -> None:
    doc = build_facts(plan, fakes.observation(plan, NOW), sweep_id="s1", now=NOW, environment="dev")
    assert doc["kind"] == "AuditFacts" and doc["network"] == plan.name and doc["environment"] == "dev"
    a = doc["nodes"][0]
    assert a["up"] and a["readOnlyRootFs"] is True and a["uid"] == 10001
    assert a["ports"] == [
        {
            "containerPort": 26657,
            "protocol": "tcp",
            "service": "rpc",
            "hostIp": "127.0.0.1",
            "hostPort": str(plan.nodes[0].rpc_host_port),
        }
    ]
    assert {k["path"] for k in a["keyFiles"]} == set(fakes.KEY_FILES)
    assert 0 < a["rpc"]["latestBlockAgeNs"] < 1_000_000_000
    assert [v["name"] for v in doc["spec"]["validators"]] == [
        n.name for n in plan.nodes if n.node.is_validator
    ]
    assert doc["chain"]["stallAfterNs"] == 3_000_000_000 + 5_000_000_000 and doc["chain"]["heightAdvanced"] is None
    assert "PRIVATE" not in str(doc).upper()


def test_previous_sweep_gives_progress_and_age(plan: NetworkPlan) -> None:
    first = build_facts(plan, fakes.observation(plan, NOW, height=100), sweep_id="s1", now=NOW)
    prev = Previous.from_summary(summary(first))
    later = NOW + dt.timedelta(seconds=30)
    doc = build_facts(
        plan, fakes.observation(plan, later, height=100), sweep_id="s2", now=later, previous=prev
    )
    assert doc["chain"]["heightAdvanced"] is False
    assert doc["chain"]["previous"]["elapsedNs"] == 30_000_000_000
    assert doc["audit"]["previousSweepAgeNs"] == 30_000_000_000
    assert doc["nodes"][0]["image"]["previousId"] == fakes.IMAGE_ID
    result = EmbeddedEngine().evaluate(load_runtime_pack().modules, doc, {})
    assert "HC-RT-CP1-CHAIN-STALLED" in {v["id"] for _, _, v in result.raw()}


def test_provider_without_detail_gives_unknowns_not_failures(plan: NetworkPlan) -> None:
    nodes = tuple(
        NodeStatus(
            name=n.name,
            org=n.node.org,
            role=n.node.role.value,
            present=True,
            state="running",
            height=50,
            catching_up=False,
            last_block_time=fakes.block_time(NOW),
            facts={"image": [n.node.image]},
        )
        for n in plan.nodes
    )
    doc = build_facts(plan, Observation(plan.name, nodes), sweep_id="s", now=NOW)
    n = doc["nodes"][0]
    assert n["up"] and n["readOnlyRootFs"] is None and n["image"]["reference"] == plan.nodes[0].node.image
    result = EmbeddedEngine().evaluate(load_runtime_pack().modules, doc, {})
    assert [v["id"] for _, _, v in result.raw()] == []


def test_undeclared_objects_keep_their_ports(plan: NetworkPlan) -> None:
    obs = fakes.observation(plan, NOW)
    rogue = {
        "kind": "container",
        "name": "x",
        "id": "1",
        "state": "running",
        "labels": {},
        "published_ports": {"26657/tcp": [{"host_ip": "", "host_port": "40000"}]},
    }
    doc = build_facts(plan, Observation(obs.network, obs.nodes, (rogue,), obs.facts), sweep_id="s", now=NOW)
    assert doc["undeclared"][0]["ports"][0]["hostIp"] == "0.0.0.0"


def test_nanosecond_block_times_and_summary(plan: NetworkPlan) -> None:
    assert parse_rfc3339_ns("1970-01-01T00:00:01.000000123Z") == 1_000_000_123
    assert parse_rfc3339_ns("garbage") is None
    doc = build_facts(plan, fakes.stopped(fakes.observation(plan, NOW), "b-val-0"), sweep_id="s", now=NOW)
    rows = {r["name"]: r for r in nodes_summary(doc)}
    assert rows["b-val-0"]["up"] is False and rows["a-val-0"]["height"] == 100


def test_host_facts_reach_the_host_rules(plan: NetworkPlan) -> None:
    """What an on-premises host reports beyond a container (its unit's hardening) is judged by host.rego."""
    from hcops.providers.ansible.hostfacts import host_view

    unit = {"name": "cometbft-x.service", "installed": True, "active_state": "active",
            "hardening": {"user": "cometbft", "no_new_privileges": False, "protect_system": "strict",
                          "protect_home": "yes", "private_tmp": True, "capability_bounding_set": []}}
    view = host_view({"unit": unit}, firewall=False, data_dir="/var/lib/cometbft/data",
                     expected_version="0.38.17", expected_sha256=None)
    obs = fakes.observation(plan, NOW)
    first = obs.nodes[0]
    nodes = (dataclasses.replace(first, host=view), *obs.nodes[1:])
    doc = build_facts(plan, dataclasses.replace(obs, nodes=nodes), sweep_id="s", now=NOW)
    assert doc["nodes"][0]["host"]["hardening"]["noNewPrivileges"] is False
    result = EmbeddedEngine().evaluate(load_runtime_pack().modules, doc, {})
    messages = [v["msg"] for _, _, v in result.raw() if v["id"] == "HC-RT-IN1-HOST-UNIT-HARDENING"]
    assert messages == [f"{first.name}: cometbft-x.service does not set NoNewPrivileges=yes"]
