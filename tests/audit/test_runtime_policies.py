"""The runtime pack: its Rego tests pass under both engines, every rule is annotated with a catalogue
control, and both engines find exactly the same on fact documents built from fake observations."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hcops.audit import catalogue
from hcops.audit.evaluate import load_runtime_pack, runtime_policy_dir
from hcops.audit.facts import Previous, build_facts
from hcops.plan.desired import NetworkPlan
from hcops.policy.engines import EmbeddedEngine
from hcops.policy.sources import collect_policies, modules_of
from tests.audit import fakes
from tests.audit.conftest import NOW
from tests.integration.requirements import binary

Mutation = Callable[[dict[str, Any]], None]


def test_rego_tests_pass_embedded() -> None:
    files = collect_policies(builtin_dir=runtime_policy_dir(), include_tests=True)
    results = EmbeddedEngine().run_tests(modules_of(files), {})
    assert len(results) >= 40
    assert [(r.name, r.message) for r in results if r.status != "pass"] == []


@pytest.mark.integration
def test_rego_tests_pass_opa() -> None:
    opa = binary("opa", "opa")
    out = subprocess.run(
        [str(opa), "test", str(runtime_policy_dir()), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    results = json.loads(out.stdout)
    assert len(results) >= 40
    assert [r["name"] for r in results if r.get("fail") or r.get("error")] == []


def test_every_rule_maps_to_a_catalogue_control() -> None:
    pack = load_runtime_pack()
    known = set(catalogue.ids())
    assert {m.control for m in pack.rules.values()} <= known
    assert {"AC-1", "AC-5", "PA-1", "CP-1", "AZ-1", "IN-1", "AU-1", "AR-1"} <= {
        m.control for m in pack.rules.values()
    }
    assert all(m.id.startswith("HC-RT-") for m in pack.rules.values())


def _set(path: str, value: Any) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        node: Any = doc
        keys = path.split("/")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return apply


def _no_signers(doc: dict[str, Any]) -> None:
    for commit in doc["chain"]["recentCommits"]:
        commit["signers"] = []


VARIANTS: dict[str, tuple[list[Mutation], set[str]]] = {
    "clean": ([], set()),
    "key-mode": ([_set("nodes/0/keyFiles/1/mode", "0644")], {"HC-RT-AC5-KEY-FILE-MODE"}),
    "key-owner": ([_set("nodes/0/keyFiles/0/uid", 0)], {"HC-RT-AC5-KEY-FILE-OWNER"}),
    "exposed": (
        [_set("nodes/1/ports/0/hostIp", "0.0.0.0")],
        {"HC-RT-AC1-RPC-EXPOSED", "HC-RT-TS1-PLAINTEXT-RPC"},
    ),
    "peer": ([_set("nodes/2/rpc/peers/0", "ff" * 20)], {"HC-RT-PA1-UNKNOWN-PEER"}),
    "image": ([_set("nodes/3/image/reference", "other:1")], {"HC-RT-IN1-IMAGE-MISMATCH"}),
    "drift": ([_set("nodes/1/image/id", "sha256:" + "cd" * 32)], {"HC-RT-IN1-DIGEST-DRIFT"}),
    "pinned": (
        [
            _set("nodes/0/expected/image", "cometbft/cometbft:v0.38.17@sha256:" + "ef" * 32),
            _set("nodes/0/image/reference", "cometbft/cometbft:v0.38.17@sha256:" + "ef" * 32),
        ],
        {"HC-RT-IN1-DIGEST-DRIFT"},
    ),
    "identity": ([_set("nodes/0/rpc/nodeId", "ab" * 20)], {"HC-RT-AC2-IDENTITY-MISMATCH"}),
    "down": (
        [_set("nodes/2/up", False), _set("nodes/2/running", False), _set("nodes/2/state", "exited")],
        {"HC-RT-CP1-NODE-DOWN"},
    ),
    "not-signing": ([_no_signers], {"HC-RT-CP1-VALIDATOR-NOT-SIGNING"}),
    "signed-one-of-three": ([_set("chain/recentCommits/0/signers", [])], set()),
    "rootfs": ([_set("nodes/3/readOnlyRootFs", False)], {"HC-RT-IN1-ROOTFS-WRITABLE"}),
    "stalled": ([_set("chain/latestBlockAgeNs", 60_000_000_000)], {"HC-RT-CP1-CHAIN-STALLED"}),
    "valset": ([_set("chain/validatorSet/0/power", 99)], {"HC-RT-CP1-VALIDATOR-SET"}),
    "overdue": ([_set("audit/previousSweepAgeNs", 10**13)], {"HC-RT-AR1-SWEEP-OVERDUE"}),
    "log": (
        [_set("audit/logIntact", False), _set("audit/logBreak", "record 3: edited")],
        {"HC-RT-AU1-LOG-BROKEN"},
    ),
    "phi-ssn": (
        [lambda d: d["phi"]["hits"].append({"height": 97, "txHash": "AB" * 32, "kind": "ssn"})],
        {"HC-RT-PHI1-IDENTIFIER-ON-CHAIN"},
    ),
    "phi-not-a-digest": (
        [
            _set("spec/data/phiOnChain", "hashes-only"),
            lambda d: d["phi"]["hits"].append({"height": 98, "txHash": "CD" * 32, "kind": "not-a-digest"}),
        ],
        {"HC-RT-PHI1-NOT-A-DIGEST"},
    ),
    "phi-allowed": (
        [
            _set("spec/data/phiOnChain", "allowed"),
            lambda d: d["phi"]["hits"].append({"height": 97, "txHash": "AB" * 32, "kind": "ssn"}),
        ],
        set(),
    ),
    "prod-storage-declared": ([_set("tier", "production")], {"HC-RT-AC5-STORAGE-UNVERIFIED"}),
    "prod-storage-attested": (
        [_set("tier", "production"), _set("attestations/active", ["AC-5"])],
        set(),
    ),
    "undeclared": (
        [
            lambda d: d["undeclared"].append(
                {
                    "kind": "container",
                    "name": "rogue",
                    "id": "r",
                    "node": "rogue",
                    "state": "running",
                    "labels": {},
                    "image": "x",
                    "ports": [
                        {
                            "containerPort": 26657,
                            "protocol": "tcp",
                            "service": "rpc",
                            "hostIp": "0.0.0.0",
                            "hostPort": "40000",
                        }
                    ],
                }
            )
        ],
        {"HC-RT-AZ1-UNDECLARED", "HC-RT-AC1-RPC-EXPOSED", "HC-RT-TS1-PLAINTEXT-RPC"},
    ),
}


def variant(plan: NetworkPlan, name: str) -> dict[str, Any]:
    prev = Previous(
        sweep_id="s0",
        time_ns=int((NOW - dt.timedelta(seconds=30)).timestamp()) * 10**9,
        height=70,
        image_ids={n.name: fakes.IMAGE_ID for n in plan.nodes},
    )
    doc = build_facts(plan, fakes.observation(plan, NOW), sweep_id="s1", now=NOW, previous=prev)
    for m in VARIANTS[name][0]:
        m(doc)
    return doc


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_findings_embedded(plan: NetworkPlan, name: str) -> None:
    pack = load_runtime_pack()
    result = EmbeddedEngine().evaluate(pack.modules, variant(plan, name), {})
    assert {v["id"] for _, _, v in result.raw()} == VARIANTS[name][1]


@pytest.mark.integration
def test_engines_agree_on_every_variant(plan: NetworkPlan, tmp_path: Path) -> None:
    opa = binary("opa", "opa")
    pack = load_runtime_pack()
    for name in sorted(VARIANTS):
        doc = variant(plan, name)
        embedded = EmbeddedEngine().evaluate(pack.modules, doc, {}).comparable()
        (tmp_path / "input.json").write_text(json.dumps(doc))
        out = subprocess.run(
            [
                str(opa),
                "eval",
                "--format",
                "json",
                "-d",
                str(runtime_policy_dir()),
                "-i",
                str(tmp_path / "input.json"),
                "data.hcops.runtime",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        value = json.loads(out.stdout)["result"][0]["expressions"][0]["value"]
        real = {
            f"hcops.runtime.{pkg}": {
                "deny": sorted(
                    json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                    for v in body["deny"]
                ),
                "warn": [],
            }
            for pkg, body in value.items()
            if "deny" in body
        }
        assert embedded == real, name
