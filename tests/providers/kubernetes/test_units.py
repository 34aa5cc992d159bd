"""Kubernetes provider pieces that need no cluster: normalizing and diffing objects, conflict parsing,
hardening and secret-mount checks, pod states, label bookkeeping, kubeconfig resolution."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from hcops.errors import EnvironmentProblem
from hcops.providers.base import FieldChange
from hcops.providers.facts import ImageFacts, KeyFile, Mount, ResourceLimits
from hcops.providers.kubernetes.api import ApiError, Ref, ResourceType, _error
from hcops.providers.kubernetes.checks import secret_mounts, security_violations
from hcops.providers.kubernetes.conflicts import Conflict, conflict_error, conflicts
from hcops.providers.kubernetes.connect import connect, kubeconfig_path
from hcops.providers.kubernetes.diff import HIDDEN, field_changes, flatten, normalize
from hcops.providers.kubernetes.objects import (
    Desired,
    Live,
    _common_labels,
    _without_spec_hash,
    applied_by_hcops,
    claim_names,
    order_key,
    prune_candidates,
    undeclared,
)
from hcops.providers.kubernetes.readiness import pod_state
from hcops.providers.kubernetes.runtime import container_facts

NET = {"hcops.network": "n", "app.kubernetes.io/managed-by": "hcops"}


def sts(name: str = "a-0", **pod: Any) -> dict[str, Any]:
    security = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "cometbft",
                "image": "img:1",
                "securityContext": security,
                "volumeMounts": [{"name": "keys", "mountPath": "/k", "readOnly": True}],
            }
        ],
        "volumes": [{"name": "keys", "secret": {"secretName": f"{name}-keys", "defaultMode": 0o400}}],
        **pod,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "n", "labels": {**NET, "hcops.node": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"hcops.node": name}},
            "template": {"spec": spec},
            "volumeClaimTemplates": [{"metadata": {"name": "home"}}],
        },
    }


def secret(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "n", "labels": {**NET, "hcops.node": name[:-5]}},
        "data": data,
    }


# ------------------------------------------------------------------ diff
def test_normalize_drops_what_the_server_owns_and_hashes_secret_values() -> None:
    live: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "status": {"x": 1},
        "metadata": {
            "name": "s",
            "resourceVersion": "5",
            "uid": "u",
            "managedFields": [{}],
            "generation": 2,
            "creationTimestamp": "t",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "data": {"k": "c2VjcmV0"},
    }
    out = normalize(live)
    assert out["metadata"] == {"name": "s"} and "status" not in out
    assert out["data"]["k"].startswith("sha256:") and "c2VjcmV0" not in json.dumps(out)
    assert live["metadata"]["uid"] == "u"  # the input is not modified


def test_flatten_addresses_named_list_items_by_name() -> None:
    doc = {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "ports": [1, 2]}], "e": {}}}
    assert dict(flatten(doc)) == {
        "spec.containers[a].image": "x",
        "spec.containers[a].name": "a",
        "spec.containers[b].name": "b",
        "spec.containers[b].ports[0]": 1,
        "spec.containers[b].ports[1]": 2,
        "spec.e": {},
    }


def test_field_changes_lists_each_leaf_and_hides_secret_values() -> None:
    a, b = sts(), sts()
    b["spec"]["template"]["spec"]["containers"][0]["image"] = "img:2"
    del b["spec"]["replicas"]
    assert field_changes(normalize(a), normalize(b)) == (
        FieldChange("spec.replicas", 1, None),
        FieldChange("spec.template.spec.containers[cometbft].image", "img:1", "img:2"),
    )
    old, new = normalize(secret("a-0-keys", k="AAAA")), normalize(secret("a-0-keys", k="BBBB", j="CC"))
    assert field_changes(old, new) == (
        FieldChange("data.j", None, HIDDEN),
        FieldChange("data.k", HIDDEN, HIDDEN),
    )
    assert field_changes(old, old) == ()


# ------------------------------------------------------------------ conflicts
def _conflict(*causes: tuple[str, str]) -> ApiError:
    body = {
        "kind": "Status",
        "reason": "Conflict",
        "message": "Apply failed with 1 conflict",
        "details": {
            "causes": [{"reason": "FieldManagerConflict", "message": m, "field": f} for m, f in causes]
        },
    }
    return _error(409, json.dumps(body).encode(), "PATCH", "/apis/apps/v1/x")


def test_conflicts_name_fields_managers_and_their_operations() -> None:
    err = _conflict(
        ('conflict with "kubectl-edit" using apps/v1', ".spec.replicas"),
        ('conflict with "flux" with subresource "scale" using apps/v1', '.spec.containers[name="c"].x'),
    )
    live = {
        "metadata": {
            "managedFields": [
                {"manager": "kubectl-edit", "operation": "Update"},
                {"manager": "flux", "operation": "Update"},
                {"manager": "flux", "operation": "Apply"},
            ]
        }
    }
    found = conflicts(err, live)
    assert found == (
        Conflict("spec.replicas", "kubectl-edit", "Update"),
        Conflict("spec.containers[c].x", "flux", "Apply"),
    )
    assert [c.imperative for c in found] == [True, False]
    e = conflict_error(Ref("apps/v1", "StatefulSet", "n", "a"), found, revert_drift=True)
    assert e.exit_code == 1 and "spec.replicas (edited by kubectl-edit)" in e.message
    assert "spec.containers[c].x (applied by flux)" in e.message
    assert e.hint and "--force-conflicts" in e.hint
    assert "revertDrift" in (
        conflict_error(Ref("v1", "ConfigMap", "n", "c"), found[:1], revert_drift=False).hint or ""
    )


def test_api_errors_keep_status_reason_and_message() -> None:
    e = _error(422, b'{"reason": "Invalid", "message": "spec.x: Required value"}', "PATCH", "/p")
    assert (e.status, e.reason, e.message) == (422, "Invalid", "spec.x: Required value")
    assert _error(500, b"not json", "GET", "/p").message == "not json"
    assert (
        ResourceType("apps/v1", "StatefulSet", "statefulsets", True).item("a", "n")
        == "/apis/apps/v1/namespaces/n/statefulsets/a"
    )
    assert ResourceType("v1", "Namespace", "namespaces", False).item("n", None) == "/api/v1/namespaces/n"


# ------------------------------------------------------------------ checks
def test_a_hardened_template_has_no_violations() -> None:
    assert security_violations(sts()) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda c, p: c["securityContext"].update(readOnlyRootFilesystem=False),
            "container cometbft: readOnlyRootFilesystem is not true",
        ),
        (lambda c, p: c["securityContext"].update(privileged=True), "container cometbft: privileged"),
        (
            lambda c, p: c["securityContext"].update(capabilities={"drop": []}),
            "container cometbft: capabilities do not drop ALL",
        ),
        (
            lambda c, p: c["securityContext"].update(runAsNonRoot=False),
            "container cometbft: runAsNonRoot is not true",
        ),
        (
            lambda c, p: c["securityContext"].update(runAsUser=0, runAsNonRoot=True),
            "container cometbft: runs as uid 0",
        ),
        (
            lambda c, p: (
                c["securityContext"].pop("seccompProfile"),
                p["securityContext"].pop("seccompProfile"),
            ),
            "container cometbft: seccomp profile is unset (RuntimeDefault expected)",
        ),
        (lambda c, p: p.update(hostNetwork=True), "pod: hostNetwork is true"),
        (
            lambda c, p: p.pop("automountServiceAccountToken"),
            "pod: automountServiceAccountToken is not false",
        ),
        (
            lambda c, p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
            "pod: volume h is a hostPath",
        ),
    ],
)
def test_each_loosening_is_reported(edit: Any, expected: str) -> None:
    s = sts()
    pod = s["spec"]["template"]["spec"]
    edit(pod["containers"][0], pod)
    assert expected in security_violations(s)


def test_secret_mounts() -> None:
    want = secret("a-0-keys", k="AAAA")
    ok = secret_mounts(sts(), want, copy.deepcopy(want), {"b-0": sts("b-0")})
    assert ok["ok"] and ok["matchesSpec"] and ok["modes"] == ["0o400"]

    loose = sts()
    loose["spec"]["template"]["spec"]["volumes"][0]["secret"]["defaultMode"] = 0o644
    loose["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = False
    found = secret_mounts(loose, want, secret("a-0-keys", k="BBBB"), {"b-0": sts("b-0")})
    assert not found["ok"] and found["matchesSpec"] is False
    assert set(found["problems"]) == {
        "container cometbft mounts a-0-keys writable",
        "file mode 0o644 is looser than 0o440",
        "secret a-0-keys holds other keys than the spec's",
    }
    thief = sts("b-0")
    thief["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"] = "a-0-keys"
    shared = secret_mounts(sts(), want, want, {"b-0": thief})
    assert shared["sharedWith"] == ["b-0"] and not shared["ok"]
    missing = secret_mounts(sts(), want, None, {})
    assert "secret a-0-keys does not exist" in missing["problems"]


# ------------------------------------------------------------------ pods
def test_pod_state() -> None:
    assert pod_state("a", []).phase == "absent"
    pod: dict[str, Any] = {
        "metadata": {"name": "a-0-0"},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"restartCount": 2, "state": {"running": {}}}],
        },
    }
    st = pod_state("a", [pod])
    assert (st.name, st.phase, st.ready, st.restarts, st.waiting) == ("a-0-0", "Running", True, 2, None)
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    pod["status"]["conditions"][0]["status"] = "False"
    assert pod_state("a", [pod]).waiting == "CrashLoopBackOff"
    assert "CrashLoopBackOff" in pod_state("a", [pod]).describe()


# ------------------------------------------------------------------ objects
def _desired() -> Desired:
    objs = [
        sts(),
        secret("a-0-keys", k="A"),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "labels": {**NET, "x": "y"}}},
    ]
    return Desired("n", tuple(sorted(objs, key=order_key)), NET, frozenset({"a-0"}))


def test_desired_bookkeeping() -> None:
    want = _desired()
    assert [o["kind"] for o in want.objects] == ["Namespace", "Secret", "StatefulSet"]
    assert want.node_of(want.objects[2]) == "a-0" and want.node_of(want.objects[0]) is None
    assert claim_names(want) == {"home-a-0-0": "a-0"}
    assert _common_labels([o for o in want.objects]) == NET
    assert _without_spec_hash(
        {"kind": "ConfigMap", "metadata": {"annotations": {"hcops.spec-hash": "1"}}}
    ) == {"kind": "ConfigMap", "metadata": {}}
    ns = {"kind": "Namespace", "metadata": {"annotations": {"hcops.spec-hash": "1"}}}
    assert _without_spec_hash(ns) == ns


def test_undeclared_and_prunable() -> None:
    want = _desired()
    mine = [{"manager": "hcops", "operation": "Apply"}]

    def obj(kind: str, name: str, **meta: Any) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": "n", "labels": NET, **meta},
        }

    live = {
        Ref.of(o): o
        for o in [
            *want.objects,
            obj("Pod", "a-0-0", ownerReferences=[{"kind": "StatefulSet"}]),  # made by the StatefulSet
            obj("PersistentVolumeClaim", "home-a-0-0"),  # its claim
            obj("ConfigMap", "stray"),  # someone else's
            obj("ConfigMap", "old-node-config", managedFields=mine),  # hcops', no longer declared
            obj("Secret", "old-node-keys", managedFields=mine),
        ]
    }
    found = [o["metadata"]["name"] for o in undeclared(want, Live(live))]
    assert found == ["old-node-config", "stray", "old-node-keys"]
    assert applied_by_hcops(live[Ref("v1", "ConfigMap", "n", "old-node-config")])
    assert [o["metadata"]["name"] for o in prune_candidates(want, Live(live), False)] == ["old-node-config"]
    assert {o["metadata"]["name"] for o in prune_candidates(want, Live(live), True)} == {
        "old-node-config",
        "old-node-keys",
    }


# ------------------------------------------------------------------ connect
def test_kubeconfig_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert kubeconfig_path() is None
    with pytest.raises(EnvironmentProblem, match="no Kubernetes cluster configured"):
        connect()
    with pytest.raises(EnvironmentProblem, match="context 'prod' requested"):
        connect("prod")
    cfg = tmp_path / "kc"
    cfg.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "a",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{cfg}")
    assert kubeconfig_path() == cfg
    assert connect().configuration.host == "https://127.0.0.1:1"
    with pytest.raises(EnvironmentProblem, match="kubeconfig"):
        connect("nope")


# ------------------------------------------------------------------ runtime facts for the audit
def test_container_facts_in_the_audit_shape() -> None:
    s = sts()
    pod = s["spec"]["template"]["spec"]
    pod["securityContext"].update(runAsUser=10001, runAsGroup=10001, fsGroup=10001)
    main = pod["containers"][0]
    main["resources"] = {"limits": {"cpu": "500m", "memory": "512Mi"}}
    main["volumeMounts"].append(
        {"name": "keys", "mountPath": "/c/node_key.json", "subPath": "node_key.json", "readOnly": True}
    )
    st = pod_state(
        "a-0",
        [
            {
                "metadata": {"name": "a-0-0"},
                "status": {
                    "phase": "Running",
                    "containerStatuses": [{"imageID": "sha256:abc", "restartCount": 1}],
                },
            }
        ],
    )
    f = container_facts(s, st)
    assert (f.present, f.state, f.restart_count, f.user) == (True, "running", 1, "10001:10001")
    assert f.image == ImageFacts(reference="img:1", id="sha256:abc")
    assert f.read_only_rootfs and f.no_new_privileges and not f.privileged and f.cap_drop == ("ALL",)
    assert f.resources == ResourceLimits(memory_bytes=512 * 2**20, nano_cpus=500_000_000, pids_limit=None)
    assert f.key_files == {"config/node_key.json": KeyFile(mode="0400", uid=10001, gid=10001)}
    assert Mount("secret", "keys", "/k", False) in f.mounts
    assert f.ports == ()
