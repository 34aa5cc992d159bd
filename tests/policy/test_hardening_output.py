"""The gate judges the rendered output: the real policy input of the example (its compose services, node
container documents and Kubernetes objects, as `hcops check --manifests all` builds them) passes the
built-in pack's hardening and transmission rules; one mutation of one rendered object makes its rule deny.
Evaluated with the embedded engine on the shipped pack."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hcops.policy import EmbeddedEngine, builtin_policy_dir, run_gate
from hcops.policy.input import build_input
from tests.conftest import EXAMPLE
from tests.render.helpers import fixture_plan

Mutation = Callable[[dict[str, Any]], Any]
CHECKED = ("HC-IN1-", "HC-TS1-", "HC-TS2-", "HC-AC1-RPC-")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    doc: dict[str, Any] = build_input(fixture_plan(tmp_path_factory.mktemp("state"), EXAMPLE), "all")
    return doc


def denied(doc: dict[str, Any]) -> set[tuple[str, str]]:
    report = run_gate(doc, policy_dirs=[], builtin_dir=builtin_policy_dir(), data_files=[], waivers=None,
                      engine=EmbeddedEngine(), locate=lambda _p: None, environment=None,
                      today=dt.date(2026, 6, 1))
    return {(f.id, f.resource) for f in report.findings if f.level == "deny" and f.id.startswith(CHECKED)}


def _k8s(doc: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = next(o for o in doc["manifests"]["kubernetes"]
                               if o["kind"] == kind and o["metadata"]["name"] == name)
    return obj


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = _k8s(doc, "StatefulSet", "stmary-val-0")["spec"]["template"]["spec"]
    return pod


def _main(doc: dict[str, Any]) -> dict[str, Any]:
    main: dict[str, Any] = _pod(doc)["containers"][0]
    return main


def _container(doc: dict[str, Any], node: str = "northside-val-0") -> dict[str, Any]:
    c: dict[str, Any] = next(c for c in doc["manifests"]["dockerContainers"] if c["node"] == node)
    return c


STS = "manifest/kubernetes/StatefulSet/stmary-val-0"
CONTAINER = "manifest/docker/container/regional-health-net-northside-val-0"
SERVICE = "manifest/docker/service/stmary-val-0"

CASES: dict[str, tuple[Mutation, tuple[str, str]]] = {
    "k8s privileged": (lambda d: _main(d)["securityContext"].update(privileged=True),
                       ("HC-IN1-K8S-PRIVILEGED", STS)),
    "k8s escalation": (lambda d: _main(d)["securityContext"].update(allowPrivilegeEscalation=True),
                       ("HC-IN1-K8S-PRIVILEGE-ESCALATION", STS)),
    "k8s escalation unset": (lambda d: _pod(d)["initContainers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
                             ("HC-IN1-K8S-PRIVILEGE-ESCALATION", STS)),
    "k8s root": (lambda d: [_main(d)["securityContext"].update(runAsNonRoot=False)],
                 ("HC-IN1-K8S-RUN-AS-ROOT", STS)),
    "k8s uid 0": (lambda d: _main(d)["securityContext"].update(runAsUser=0), ("HC-IN1-K8S-RUN-AS-ROOT", STS)),
    "k8s caps": (lambda d: _main(d)["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
                 ("HC-IN1-K8S-CAPABILITIES", STS)),
    "k8s caps added": (lambda d: _main(d)["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
                       ("HC-IN1-K8S-CAPABILITIES", STS)),
    "k8s seccomp": (lambda d: [_main(d)["securityContext"].pop("seccompProfile"),
                               _pod(d)["securityContext"].pop("seccompProfile")],
                    ("HC-IN1-K8S-SECCOMP", STS)),
    "k8s token": (lambda d: _pod(d).update(automountServiceAccountToken=True), ("HC-IN1-K8S-SA-TOKEN", STS)),
    "k8s pod security": (lambda d: _k8s(d, "Namespace", "regional-health-net")["metadata"]["labels"].update(
        {"pod-security.kubernetes.io/enforce": "privileged"}),
        ("HC-IN1-K8S-POD-SECURITY", "manifest/kubernetes/Namespace/regional-health-net")),
    "compose caps": (lambda d: d["manifests"]["docker"]["services"]["stmary-val-0"].update(cap_drop=[]),
                     ("HC-IN1-DOCKER-CAPABILITIES", SERVICE)),
    "compose no-new-privileges": (lambda d: d["manifests"]["docker"]["services"]["stmary-val-0"].update(
        security_opt=[]), ("HC-IN1-DOCKER-NEW-PRIVILEGES", SERVICE)),
    "compose root": (lambda d: d["manifests"]["docker"]["services"]["stmary-val-0"].pop("user"),
                     ("HC-IN1-DOCKER-ROOT-USER", SERVICE)),
    "container caps": (lambda d: _container(d).update(cap_add=["NET_ADMIN"]),
                       ("HC-IN1-DOCKER-CAPABILITIES", CONTAINER)),
    "container root": (lambda d: _container(d).update(user="root"), ("HC-IN1-DOCKER-ROOT-USER", CONTAINER)),
    "container privileged": (lambda d: _container(d).update(privileged=True),
                             ("HC-IN1-DOCKER-PRIVILEGED", CONTAINER)),
    "container writable": (lambda d: _container(d).update(read_only=False),
                           ("HC-IN1-DOCKER-ROOTFS-WRITABLE", CONTAINER)),
    # published beyond loopback while the rendered config.toml has no TLS files
    "container plaintext": (lambda d: _container(d)["ports"][0].update(host_ip="0.0.0.0"),
                            ("HC-TS1-PLAINTEXT-RPC-PUBLISHED", CONTAINER)),
}


def test_the_rendered_example_passes(rendered: dict[str, Any]) -> None:
    assert denied(rendered) == set()


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_mutation_of_the_output_denies(rendered: dict[str, Any], case: str) -> None:
    mutate, finding = CASES[case]
    doc = copy.deepcopy(rendered)
    mutate(doc)
    assert finding in denied(doc)


def test_tls_in_the_spec_but_not_in_the_rendered_config_denies(tmp_path: Path) -> None:
    spec = tmp_path / "network.yaml"
    spec.write_text(EXAMPLE.read_text().replace("rpc: {exposure: internal, tls: false",
                                                "rpc: {exposure: consortium, tls: true"))
    doc: dict[str, Any] = build_input(fixture_plan(tmp_path / "state", spec), "all")
    assert denied(doc) == set()
    for n in doc["nodes"]:  # a stale render: the spec says TLS, the configs do not
        n["config"]["rpc"].pop("tls_cert_file")
    found = denied(doc)
    assert ("HC-TS1-PLAINTEXT-RPC-PUBLISHED", "manifest/docker/container/regional-health-net-stmary-val-0") in found
    assert ("HC-TS1-PLAINTEXT-RPC-PUBLISHED", "manifest/docker/service/stmary-val-0") in found
    assert not any(i == "HC-TS2-RPC-TLS-MISSING" for i, _ in found)  # the spec itself is right
