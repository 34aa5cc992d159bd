"""``observe`` on hosts: one run of the role's observe tasks (every host in parallel), then each running node's
RPC through an SSH tunnel, and the chain-level facts once, from the highest node that answers: the same
RPC facts, read the same way, as the Docker provider's.

Cost per observation: one ansible-playbook run (one module call per host) and, per running node, an SSH
connection for the tunnel plus /status and /net_info; then /validators and a few /commit calls in total.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.progress import Reporter, SilentReporter
from hcops.providers.ansible import hostfacts
from hcops.providers.ansible.runner import FACTS_TASK, PROBE_TASK, RunResult, run_playbook
from hcops.providers.ansible.tunnels import Tunnels
from hcops.providers.ansible.workspace import Binary, Workspace
from hcops.providers.base import NodeStatus, Observation
from hcops.providers.docker.observe import chain_facts, chain_sources, rpc_facts
from hcops.providers.facts import HostFacts, RpcFacts
from hcops.providers.rpc import RpcClient
from hcops.render.ansible import unit_name

MAX_WORKERS = 8


def _base(plan: NetworkPlan, node: NodePlan) -> dict[str, Any]:
    host = plan.consortium.spec.provider.ansible.host(node.name)
    return {"name": node.name, "org": node.node.org, "role": node.node.role.value,
            "resource": f"{unit_name(plan)}.service@{host.address}"}


def unreachable(plan: NetworkPlan, node: NodePlan, why: str) -> NodeStatus:
    return NodeStatus(present=False, state="unreachable", host=HostFacts(error=why), **_base(plan, node))


def node_status(ws: Workspace, node: NodePlan, facts: Mapping[str, Any], rpc_url: str | None,
                rpc_error: str | None, binary: Binary | None) -> NodeStatus:
    plan = ws.plan
    settings = ws.settings
    present, state = hostfacts.node_state(facts.get("unit"))
    container = hostfacts.container_view(facts, f"{unit_name(plan)}.service")
    host = hostfacts.host_view(facts, firewall=settings.firewall.enabled,
                               data_dir=f"{settings.home.rstrip('/')}/data",
                               expected_version=plan.consortium.spec.chain.version,
                               expected_sha256=binary.sha256 if binary else None)
    rpc_f: RpcFacts | None = None
    summary: dict[str, Any] = {}
    if rpc_url is not None:  # the tunnel's local end: the RPC itself often listens on the host's loopback only
        summary["rpc_address"] = rpc_url.removeprefix("http://")
    if state == "running":
        if rpc_url is None:
            rpc_f = RpcFacts(reachable=False, error=rpc_error or "no tunnel")
        else:
            rpc = RpcClient(rpc_url, timeout=2.0, attempts=2)
            try:
                chain_summary, rpc_f = rpc_facts(rpc, chain=False)
                summary.update(chain_summary)
            finally:
                rpc.close()
    return NodeStatus(present=present, state=state, container=container, rpc=rpc_f, host=host,
                      **_base(plan, node), **summary)


def light_status(plan: NetworkPlan, node: NodePlan, probe: Mapping[str, Any] | None) -> NodeStatus:
    """From the probe at the start of a run (apply, destroy): unit installed and state, no RPC."""
    if probe is None:
        return unreachable(plan, node, "no answer from the host")
    present, state = hostfacts.node_state(probe.get("unit"))
    return NodeStatus(present=present, state=state, **_base(plan, node))


def observe(ws: Workspace, tunnels: Tunnels, binary: Binary | None, reporter: Reporter | None = None) -> Observation:
    plan = ws.plan
    names = [n.name for n in plan.nodes]
    run = run_playbook(ws, "observe", reporter or SilentReporter(), hosts=names)
    facts = {n: run.result(n, FACTS_TASK) for n in names}
    running = [n for n, f in facts.items() if f and hostfacts.node_state(f.get("unit"))[1] == "running"]
    tunnels.open(running)
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(names))) as pool:
        futures = {}
        for n in plan.nodes:
            f = facts[n.name]
            if f is None:
                failed = run.hosts[n.name]
                futures[n.name] = pool.submit(unreachable, plan, n, failed.unreachable or failed.failed or "no facts")
            else:
                futures[n.name] = pool.submit(node_status, ws, n, f, tunnels.url(n.name), tunnels.error(n.name),
                                              binary)
        nodes = tuple(futures[n].result() for n in names)
    chain = chain_facts(chain_sources(nodes))
    # Encryption at rest of each node's data folder, measured on its host (the audit's storage facts).
    storage = {n: dict(f["storage"]) for n, f in facts.items() if f and f.get("storage")}
    return Observation(network=plan.name, nodes=nodes, facts={
        "provider": "ansible", "chain": chain, "storage": storage, "run": {"ident": run.ident, "status": run.status}})


def apply_observation(plan: NetworkPlan, run: RunResult) -> Observation:
    return Observation(network=plan.name, nodes=tuple(light_status(plan, n, run.result(n.name, PROBE_TASK))
                                                      for n in plan.nodes), facts={"provider": "ansible"})
