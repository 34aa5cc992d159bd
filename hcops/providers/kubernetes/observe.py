"""What a network looks like live: per node its StatefulSet, pod and chain facts; for the audit, the
objects that drifted from the spec, undeclared objects with the network's labels, hardening and secret
mounts of every pod template, and the RBAC rights of the pods' service accounts."""

from __future__ import annotations

from typing import Any

from hcops.errors import HcopsError
from hcops.plan.desired import NetworkPlan
from hcops.providers.base import NodeStatus, Observation
from hcops.providers.facts import ContainerFacts
from hcops.providers.kubernetes.api import KubeApi, Obj, Ref
from hcops.providers.kubernetes.checks import rbac_facts, secret_mounts, security_violations, service_accounts
from hcops.providers.kubernetes.diff import field_changes, normalize
from hcops.providers.kubernetes.objects import Desired, Live, summary, undeclared
from hcops.providers.kubernetes.readiness import PodState, read_pods, statefulset_of
from hcops.providers.kubernetes.reconcile import dry_run
from hcops.providers.kubernetes.rpc import pod_tls, proxy_path
from hcops.providers.kubernetes.runtime import chain_facts, container_facts
from hcops.providers.kubernetes.storage import node_storage


def drift(api: KubeApi, want: Desired, live: Live) -> list[dict[str, Any]]:
    """Declared objects that are missing or differ from what the spec would make of them."""
    out: list[dict[str, Any]] = []
    for obj in want.objects:
        ref = Ref.of(obj)
        cur = live.get(ref) or api.get(ref)
        if cur is None:
            out.append(
                {
                    "object": str(ref),
                    "kind": ref.kind,
                    "name": ref.name,
                    "node": want.node_of(obj),
                    "missing": True,
                    "fields": [],
                }
            )
            continue
        result, found = dry_run(api, obj, cur)
        fields = field_changes(normalize(cur), normalize(result))
        if fields:
            out.append(
                {
                    "object": str(ref),
                    "kind": ref.kind,
                    "name": ref.name,
                    "node": want.node_of(obj),
                    "missing": False,
                    "managers": sorted({c.manager for c in found}),
                    "fields": [{"field": f.field, "live": f.old, "spec": f.new} for f in fields],
                }
            )
    return out


def _key_secret(want: Desired, node: str, sts: Obj | None) -> Obj | None:
    """The node's key Secret: the rendered Secret of the node that its StatefulSet mounts."""
    mounted = {
        (v.get("secret") or {}).get("secretName")
        for v in (((sts or {}).get("spec") or {}).get("template") or {}).get("spec", {}).get("volumes") or ()
    }
    mine = [s for s in want.of_kind("Secret") if want.node_of(s) == node]
    for s in mine:
        if s["metadata"]["name"] in mounted:
            return s
    return mine[0] if mine else None


def node_facts(want: Desired, live: Live, node: str) -> dict[str, Any]:
    spec_sts = statefulset_of(want, node)
    ref = Ref.of(spec_sts) if spec_sts else None
    live_sts = live.get(ref) if ref else None
    facts: dict[str, Any] = {"statefulSet": ref.name if ref else None}
    if live_sts is None:
        return facts
    facts["image"] = [c.get("image") for c in live_sts["spec"]["template"]["spec"].get("containers") or ()]
    facts["security"] = security_violations(live_sts)
    secret = _key_secret(want, node, spec_sts)
    others = {
        n: o
        for n in want.nodes
        if n != node
        for o in [live.get(Ref.of(s)) for s in want.of_kind("StatefulSet") if want.node_of(s) == n]
        if o
    }
    facts["secrets"] = secret_mounts(live_sts, secret, live.get(Ref.of(secret)) if secret else None, others)
    return facts


def observe(api: KubeApi, plan: NetworkPlan, want: Desired, live: Live, *, detail: bool) -> Observation:
    pods = read_pods(api, want)
    drifted = drift(api, want, live) if detail else []
    nodes = []
    for n in plan.nodes:
        if n.name not in want.nodes:
            continue  # in another namespace (scope) of the plan
        sts = statefulset_of(want, n.name)
        present = sts is not None and live.get(Ref.of(sts)) is not None
        pod = pods.get(n.name) or PodState(n.name, None, "absent", False, None, 0)
        facts = node_facts(want, live, n.name) if detail else {}
        if detail:
            facts["drift"] = [d for d in drifted if d["node"] == n.name]
            facts["pod"] = {
                "name": pod.name,
                "phase": pod.phase,
                "ready": pod.ready,
                "waiting": pod.waiting,
                "restarts": pod.restarts,
            }
        chain, rpc = chain_facts(api, want.namespace, pod, tls=pod_tls(plan, n.name, want.namespace),
                                 measure_tls=detail)
        container = None
        if detail:
            live_sts = live.get(Ref.of(sts)) if sts is not None else None
            container = container_facts(live_sts, pod) if live_sts else ContainerFacts(present=False)
        state = ("pending" if pod.phase == "absent" else pod.phase.lower()) if present else None
        nodes.append(
            NodeStatus(
                name=n.name,
                org=n.node.org,
                role=n.node.role.value,
                present=present,
                state=state,
                health=("ready" if pod.ready else "not ready") if pod.name else None,
                rpc_address=api.server + proxy_path(want.namespace, pod.name) if pod.name else None,
                height=chain.get("height"),
                catching_up=chain.get("catching_up"),
                peers=chain.get("peers"),
                voting_power=chain.get("voting_power"),
                last_block_time=chain.get("last_block_time"),
                resource=f"pod/{pod.name}"
                if pod.name
                else (f"statefulset/{sts['metadata']['name']}" if sts else None),
                container=container,
                rpc=rpc if detail else None,
                facts=facts,
            )
        )
    extra = [summary(o) for o in undeclared(want, live)]
    net_facts: dict[str, Any] = {
        "provider": "kubernetes",
        "namespace": want.namespace,
        "server": api.server,
        "selector": dict(want.selector),
        "objects": len(want.objects),
    }
    if detail:
        net_facts["drift"] = drifted
        net_facts["rbac"] = _rbac(api, want, live)
        ns = live.get(Ref("v1", "Namespace", "", want.namespace))
        net_facts["podSecurity"] = (
            ((ns or {}).get("metadata") or {}).get("labels", {}).get("pod-security.kubernetes.io/enforce")
        )
        net_facts["storage"] = node_storage(api, want, live)  # claims' StorageClasses: encryption at rest
    return Observation(network=plan.name, nodes=tuple(nodes), undeclared=tuple(extra), facts=net_facts)


def _rbac(api: KubeApi, want: Desired, live: Live) -> list[dict[str, Any]]:
    live_sets = [o for o in (live.get(Ref.of(s)) for s in want.of_kind("StatefulSet")) if o is not None]
    out = []
    for account in service_accounts(live_sets or list(want.of_kind("StatefulSet"))):
        try:
            out.append(rbac_facts(api, want.namespace, account))
        except HcopsError as exc:
            out.append({"serviceAccount": account, "error": exc.message, "minimal": None})
    return out


def merge(plan: NetworkPlan, parts: list[Observation]) -> Observation:
    """The observations of a plan's namespaces as one: nodes in spec order, per-node and per-object facts
    joined; the namespace's Pod Security level the weakest of them (an audit judges the network by it)."""
    if len(parts) == 1:
        return parts[0]
    order = {n.name: i for i, n in enumerate(plan.nodes)}
    nodes = sorted((n for o in parts for n in o.nodes), key=lambda n: order.get(n.name, len(order)))
    facts: dict[str, Any] = dict(parts[0].facts)
    facts["namespaces"] = [o.facts.get("namespace") for o in parts]
    facts["objects"] = sum(int(o.facts.get("objects") or 0) for o in parts)
    if "drift" in facts:
        facts["drift"] = [d for o in parts for d in o.facts.get("drift") or ()]
        facts["rbac"] = [r for o in parts for r in o.facts.get("rbac") or ()]
        facts["storage"] = {k: v for o in parts for k, v in (o.facts.get("storage") or {}).items()}
        levels = [o.facts.get("podSecurity") for o in parts]
        rank = {"restricted": 2, "baseline": 1}  # privileged, unlabelled or unknown: the weakest
        facts["podSecurity"] = min(levels, key=lambda lv: rank.get(str(lv), 0))
    return Observation(network=plan.name, nodes=tuple(nodes),
                       undeclared=tuple(u for o in parts for u in o.undeclared), facts=facts)
