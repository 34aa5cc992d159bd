"""A node's runtime facts in the types the audit reads for every provider (``NodeStatus.container`` and
``rpc``; hcops.providers.facts): the pod template's main container as the
kubelet runs it, and the chain as the node's RPC reports it through the API server's pod proxy."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from hcops.plan.keys import NODE_KEY, PRIV_VALIDATOR_KEY
from hcops.providers.docker.observe import rpc_facts
from hcops.providers.facts import ContainerFacts, ImageFacts, KeyFile, Mount, ResourceLimits, RpcFacts, port_bindings
from hcops.providers.kubernetes.api import KubeApi
from hcops.providers.kubernetes.readiness import PodState
from hcops.providers.kubernetes.rpc import PodTls, ProxiedRpc, tls_facts
from hcops.spec.types import cpu_millis, memory_bytes

MAIN = "cometbft"
KEY_FILES = (NODE_KEY, PRIV_VALIDATOR_KEY)


def _main(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    containers = pod.get("containers") or [{}]
    return next((c for c in containers if c.get("name") == MAIN), containers[0])


def container_facts(sts: Mapping[str, Any], pod: PodState) -> ContainerFacts:
    """The main container of the node's pod template (and its pod, when there is one)."""
    spec = ((sts.get("spec") or {}).get("template") or {}).get("spec") or {}
    labels = (((sts.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    c = _main(spec)
    psc, sc = spec.get("securityContext") or {}, c.get("securityContext") or {}
    uid, gid = sc.get("runAsUser", psc.get("runAsUser")), sc.get("runAsGroup", psc.get("runAsGroup"))
    caps = sc.get("capabilities") or {}
    limits = (c.get("resources") or {}).get("limits") or {}
    volumes = {v.get("name"): v for v in spec.get("volumes") or ()}
    mounts = []
    key_files: dict[str, KeyFile] = {}
    for m in c.get("volumeMounts") or ():
        vol = volumes.get(m.get("name")) or {}
        kind = next((k for k in vol if k != "name"), "persistentVolumeClaim")
        mounts.append(Mount(kind, m.get("name"), m.get("mountPath"), not m.get("readOnly", False)))
        secret = vol.get("secret")
        if secret is not None and m.get("subPath") in KEY_FILES:
            key_files[f"config/{m['subPath']}"] = KeyFile(
                mode=f"{int(secret.get('defaultMode', 0o644)):04o}", uid=uid, gid=psc.get("fsGroup", gid))
    return ContainerFacts(
        present=pod.name is not None,
        name=pod.name,
        state=pod.phase.lower() if pod.name else None,
        restart_count=pod.restarts,
        image=ImageFacts(reference=c.get("image"), id=pod.image_ids[0] if pod.image_ids else ""),
        user=f"{uid}:{gid}" if uid is not None else "",
        read_only_rootfs=bool(sc.get("readOnlyRootFilesystem")),
        cap_drop=tuple(caps.get("drop") or ()),
        cap_add=tuple(caps.get("add") or ()),
        privileged=bool(sc.get("privileged")),
        no_new_privileges=sc.get("allowPrivilegeEscalation") is False,
        mounts=tuple(mounts),
        key_files=key_files,
        ports=port_bindings({
            f"{p['hostPort']}/{str(p.get('protocol', 'TCP')).lower()}": [
                {"host_ip": p.get("hostIP") or "0.0.0.0", "host_port": p["hostPort"]}
            ]
            for p in c.get("ports") or ()
            if p.get("hostPort")
        }),
        resources=ResourceLimits(
            memory_bytes=_quantity(memory_bytes, limits.get("memory")),
            nano_cpus=_quantity(cpu_millis, limits.get("cpu")) * 1_000_000,
        ),
        labels=dict(labels),
        engine={"seccomp": (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")},
    )


def _quantity(parse: Callable[[str], int], value: Any) -> int:
    try:
        return parse(str(value)) if value is not None else 0
    except ValueError:
        return 0


def chain_facts(api: KubeApi, namespace: str, pod: PodState, *, tls: PodTls | None = None,
                measure_tls: bool = False) -> tuple[dict[str, Any], RpcFacts]:
    """(NodeStatus fields, ``rpc`` facts) from the node's RPC; empty summary when it does not answer. With
    ``measure_tls`` (the audit), also the TS-2 facts of its endpoint (``rpc.tls``)."""
    if not (pod.name and pod.phase == "Running"):
        return {}, RpcFacts(reachable=False, error=f"pod {pod.name or '(none)'} is {pod.phase}")
    rpc = ProxiedRpc(api, namespace, pod.name, timeout=2.0, tls=tls)
    try:
        summary, facts = rpc_facts(rpc)
    finally:
        rpc.close()
    if measure_tls:
        facts = dataclasses.replace(facts, tls=tls_facts(api, namespace, pod.name, tls))
    return summary, facts
