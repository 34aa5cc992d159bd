"""Audit checks on live objects that a field diff cannot see: the pod template's hardening (also fields
hcops never set, such as an added ``privileged: true``), how each node's key Secret is mounted, and the
rights of the pods' service account as the cluster's own authorizer answers them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hcops.providers.kubernetes.api import ApiError, KubeApi, Obj
from hcops.providers.kubernetes.diff import normalize

MAX_SECRET_MODE = 0o440  # owner (and fsGroup) read; never world-readable, never writable


def _template(sts: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((sts.get("spec") or {}).get("template") or {}).get("spec") or {}


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*(pod.get("initContainers") or ()), *(pod.get("containers") or ())]


def security_violations(sts: Mapping[str, Any]) -> list[str]:
    """Ways the StatefulSet's pods would run less hardened than non-root, read-only root filesystem,
    all capabilities dropped, no privilege escalation and the RuntimeDefault seccomp profile."""
    pod = _template(sts)
    psc = pod.get("securityContext") or {}
    out: list[str] = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            out.append(f"pod: {flag} is true")
    if pod.get("automountServiceAccountToken") is not False:
        out.append("pod: automountServiceAccountToken is not false")
    for v in pod.get("volumes") or ():
        if "hostPath" in v:
            out.append(f"pod: volume {v.get('name')} is a hostPath")
    for c in _containers(pod):
        sc = c.get("securityContext") or {}
        name = f"container {c.get('name')}"
        non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        user = sc.get("runAsUser", psc.get("runAsUser"))
        if non_root is not True or user == 0:
            out.append(
                f"{name}: runAsNonRoot is not true" if non_root is not True else f"{name}: runs as uid 0"
            )
        if sc.get("readOnlyRootFilesystem") is not True:
            out.append(f"{name}: readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or ()):
            out.append(f"{name}: capabilities do not drop ALL")
        if caps.get("add"):
            out.append(f"{name}: adds capabilities {', '.join(caps['add'])}")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccomp profile is {seccomp or 'unset'} (RuntimeDefault expected)")
    return out


def secret_mounts(
    sts: Mapping[str, Any],
    desired_secret: Mapping[str, Any] | None,
    live_secret: Mapping[str, Any] | None,
    others: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """How the node's key Secret reaches its pod. ``others``: the other nodes' StatefulSets by name."""
    want = (desired_secret or {}).get("metadata", {}).get("name")
    pod = _template(sts)
    volumes = {v.get("name"): v["secret"] for v in pod.get("volumes") or () if "secret" in v}
    problems: list[str] = []
    mounted = [v for v, s in volumes.items() if s.get("secretName") == want]
    foreign = sorted(s.get("secretName", "") for s in volumes.values() if s.get("secretName") != want)
    if want and not mounted:
        problems.append(f"secret {want} is not mounted")
    if foreign:
        problems.append(f"mounts other secrets: {', '.join(foreign)}")
    modes: list[int] = []
    for vol in mounted:
        src = volumes[vol]
        modes += [int(src.get("defaultMode", 0o644))] + [
            int(i["mode"]) for i in src.get("items") or () if "mode" in i
        ]
        for c in _containers(pod):
            for m in c.get("volumeMounts") or ():
                if m.get("name") == vol and not m.get("readOnly"):
                    problems.append(f"container {c.get('name')} mounts {want} writable")
    loose = [m for m in modes if m & ~MAX_SECRET_MODE & 0o777]
    if loose:
        problems.append(f"file mode {oct(max(loose))} is looser than {oct(MAX_SECRET_MODE)}")
    if want and live_secret is None:
        problems.append(f"secret {want} does not exist")
    matches = None
    if desired_secret is not None and live_secret is not None:
        d, live = normalize(desired_secret), normalize(live_secret)
        matches = _secret_payload(d) == _secret_payload(live)
        if not matches:
            problems.append(f"secret {want} holds other keys than the spec's")
    shared = sorted(
        n
        for n, o in others.items()
        if any((v.get("secret") or {}).get("secretName") == want for v in _template(o).get("volumes") or ())
    )
    if shared:
        problems.append(f"secret {want} is also mounted by {', '.join(shared)}")
    return {
        "secret": want,
        "mounted": bool(mounted),
        "present": live_secret is not None,
        "matchesSpec": matches,
        "modes": sorted({oct(m) for m in modes}),
        "sharedWith": shared,
        "problems": problems,
        "ok": not problems,
    }


def _secret_payload(secret: Mapping[str, Any]) -> dict[str, Any]:
    return {**(secret.get("data") or {}), **(secret.get("stringData") or {})}


# ------------------------------------------------------------------ RBAC
# What a CometBFT node never needs from the Kubernetes API: each is asked of the real authorizer.
RBAC_PROBES: tuple[tuple[str, str, str, str], ...] = (
    # verb, group, resource, subresource
    ("get", "", "secrets", ""),
    ("list", "", "secrets", ""),
    ("list", "", "configmaps", ""),
    ("list", "", "pods", ""),
    ("create", "", "pods", ""),
    ("create", "", "pods", "exec"),
    ("patch", "apps", "statefulsets", ""),
    ("delete", "networking.k8s.io", "networkpolicies", ""),
    ("create", "rbac.authorization.k8s.io", "rolebindings", ""),
    ("*", "*", "*", ""),
)


def service_accounts(statefulsets: list[Obj]) -> list[str]:
    return sorted({str(_template(s).get("serviceAccountName") or "default") for s in statefulsets})


def rbac_facts(api: KubeApi, namespace: str, account: str) -> dict[str, Any]:
    """Bindings that name the service account, and which probes the authorizer allows it."""
    user = f"system:serviceaccount:{namespace}:{account}"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]
    allowed: list[str] = []
    for verb, group, resource, sub in RBAC_PROBES:
        attrs = {"namespace": namespace, "verb": verb, "group": group, "resource": resource}
        if sub:
            attrs["subresource"] = sub
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, "resourceAttributes": attrs},
        }
        try:
            answer = api.create("authorization.k8s.io/v1", "SubjectAccessReview", review)
        except ApiError as exc:
            return {
                "serviceAccount": account,
                "error": f"cannot ask the authorizer: {exc.message}",
                "minimal": None,
            }
        if (answer.get("status") or {}).get("allowed"):
            resource_name = f"{resource}/{sub}" if sub else resource
            allowed.append(f"{verb} {group + '/' if group else ''}{resource_name}")
    bindings = _bindings(api, namespace, account)
    return {
        "serviceAccount": account,
        "bindings": bindings,
        "allowed": allowed,
        "minimal": not allowed and not bindings,
    }


def _bindings(api: KubeApi, namespace: str, account: str) -> list[str]:
    found: list[str] = []
    kinds = (("RoleBinding", namespace), ("ClusterRoleBinding", None))
    for kind, ns in kinds:
        try:
            items = api.list("rbac.authorization.k8s.io/v1", kind, ns)
        except ApiError:
            continue
        for b in items:
            for s in b.get("subjects") or ():
                if (
                    s.get("kind") == "ServiceAccount"
                    and s.get("name") == account
                    and (s.get("namespace") or b["metadata"].get("namespace")) == namespace
                ):
                    role = b.get("roleRef") or {}
                    found.append(f"{kind} {b['metadata']['name']} -> {role.get('kind')} {role.get('name')}")
    return sorted(found)
