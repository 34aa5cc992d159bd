"""The ansible target: an inventory, its variables and the files the cometbft_node role copies to each host.

    inventory.yaml                one group per organization (org_<name>), plus validators and observers
    group_vars/all.yaml           chain id, version, CometBFT home and user, unit and firewall names,
                                  RPC exposure and the consortium's addresses, SSH user and become
    host_vars/<node>.yaml         role, power, node ID and validator address (public), ports, limits
    files/genesis.json
    files/<node>/config.toml      the node's config for a bare host: peers by host address
    files/<node>/keys/*.json      KEY MATERIAL (0600 in 0700 folders); never in any variable

The role (``templates/ansible/roles/cometbft_node``) and its playbooks ship with hcops; the ansible provider
runs them on this inventory (``hcops apply``). Hosts are reached at ``ansible_host`` =
``spec.provider.ansible.hosts.<node>.address``, else the node name, and peers dial each other at their
``peerAddress`` (default the same), so a name must resolve on every host (DNS or /etc/hosts). What is
specific to the machine running Ansible (the SSH key, the CometBFT binary) is not rendered: the provider
passes it, or ``--private-key`` and ``-e hcops_binary_src=...`` when running the playbook by hand.

Every string variable is tagged ``!unsafe`` except the few hcops writes as Ansible templates on purpose
(``AnsibleTemplate``): a ``{{ }}`` that reached a value from the spec is then never evaluated by Ansible.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from hcops.plan import cometbft
from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.plan.keys import NODE_KEY, PRIV_VALIDATOR_KEY
from hcops.render import toml
from hcops.render.base import Context, TargetOutput, template
from hcops.render.templating import AnsibleTemplate, header
from hcops.spec.types import cpu_millis, memory_bytes

FILES = "{{ inventory_dir }}/files"  # evaluated by Ansible: the folder next to inventory.yaml
CONFIG_DIR = "/etc/hcops"  # firewall rules and restart marks, one file per network
BINARY_DIR = "/usr/local/lib/hcops"  # the binary hcops was given, one folder per network


def _files(path: str) -> AnsibleTemplate:
    return AnsibleTemplate(f"{FILES}/{path}")


def group_name(org: str) -> str:
    return "org_" + org.replace("-", "_")  # Ansible group names are identifiers; node names have no "_"


# The names hcops gives things on each host; the provider reads them back (observe, destroy).
def unit_name(plan: NetworkPlan) -> str:
    return f"cometbft-{plan.name}"


def firewall_unit_name(plan: NetworkPlan) -> str:
    return f"cometbft-{plan.name}-firewall"


def firewall_table(plan: NetworkPlan) -> str:
    return "hcops_" + plan.name.replace("-", "_")  # an nftables identifier


def binary_path(plan: NetworkPlan) -> str:
    return f"{BINARY_DIR}/{plan.name}/cometbft"


def key_files(node: NodePlan) -> list[str]:
    """The key files a node is handed (an observer has no validator key: CometBFT makes a throwaway one)."""
    return [NODE_KEY, PRIV_VALIDATOR_KEY] if node.node.is_validator else [NODE_KEY]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def peer_address(plan: NetworkPlan, node: NodePlan) -> str:
    return plan.consortium.spec.provider.ansible.host(node.name).peer


def host_config(plan: NetworkPlan, node: NodePlan) -> dict[str, Any]:
    """The node's config.toml on a bare host: the render topology's peers at their hosts' peer addresses
    (the node name unless ``hosts`` gives one: then the same as ``plan.host_config``)."""
    settings = plan.consortium.spec.provider.ansible
    if not settings.hosts:
        return plan.host_config(node)
    peers = [f"{p.keys.node_id}@{_dial(peer_address(plan, p))}:{cometbft.P2P_PORT}"
             for p in plan.topology.peers(node)]
    external = f"{_dial(peer_address(plan, node))}:{cometbft.P2P_PORT}" if node.name in settings.hosts else ""
    return cometbft.config(plan.consortium, node.node, peers, containerised=False, external_address=external)


def _dial(address: str) -> str:
    return f"[{address}]" if ":" in address else address  # an IPv6 address in host:port


def inventory(plan: NetworkPlan) -> dict[str, Any]:
    settings = plan.consortium.spec.provider.ansible
    by_org: dict[str, dict[str, Any]] = {org.name: {} for org in plan.consortium.spec.organizations}
    for p in plan.nodes:
        host = settings.host(p.name)
        entry: dict[str, Any] = {"ansible_host": host.address}
        if host.port is not None:
            entry["ansible_port"] = host.port
        by_org[p.node.org][p.name] = entry
    children: dict[str, Any] = {group_name(org): {"hosts": hosts} if hosts else {} for org, hosts in by_org.items()}
    for group, validator in (("validators", True), ("observers", False)):
        members: dict[str, Any] = {p.name: {} for p in plan.nodes if p.node.is_validator is validator}
        children[group] = {"hosts": members} if members else {}
    return {"all": {"children": children}}


def group_vars(ctx: Context) -> dict[str, Any]:
    plan = ctx.plan
    c = plan.consortium
    settings = c.spec.provider.ansible
    conn = settings.connection
    addresses = [peer_address(plan, n) for n in plan.nodes]
    connection: dict[str, Any] = {"ansible_become": conn.become}
    if conn.user is not None:
        connection["ansible_user"] = conn.user
    if conn.port != 22:
        connection["ansible_port"] = conn.port
    return {
        **connection,
        "hcops_network": plan.name,
        "hcops_spec_hash": ctx.spec_hash,
        "cometbft_chain_id": c.spec.chain.chain_id,
        "cometbft_version": c.spec.chain.version,
        "cometbft_image": c.spec.chain.image,
        "cometbft_user": settings.user,
        "cometbft_home": settings.home,
        "cometbft_genesis_src": _files("genesis.json"),
        "cometbft_genesis_dest": f"{settings.home}/config/genesis.json",
        # every node starts with --genesis_hash: a node handed another genesis refuses to start (hcops.plan.lock)
        "cometbft_genesis_sha256": plan.genesis_sha256,
        "cometbft_p2p_port": cometbft.P2P_PORT,
        "cometbft_rpc_port": cometbft.RPC_PORT,
        "cometbft_metrics_port": cometbft.METRICS_PORT,
        "cometbft_unit": unit_name(plan),
        "cometbft_binary_dest": binary_path(plan),
        "cometbft_restart_marker": f"{CONFIG_DIR}/{plan.name}.restart",
        "cometbft_rpc_exposure": c.spec.network.rpc.exposure.value,
        "cometbft_firewall": settings.firewall.enabled,
        "cometbft_firewall_table": firewall_table(plan),
        "cometbft_firewall_unit": firewall_unit_name(plan),
        "cometbft_firewall_file": f"{CONFIG_DIR}/{plan.name}.nft",
        "cometbft_consortium_ips": sorted({a for a in addresses if _is_ip(a)}),
        "cometbft_consortium_names": sorted({a for a in addresses if not _is_ip(a)}),
        "cometbft_rpc_allow_from": list(settings.firewall.rpc_allow_from),
    }


def host_vars(plan: NetworkPlan, node: NodePlan, config: dict[str, Any],
              keys_src: str | AnsibleTemplate | None = None) -> dict[str, Any]:
    n = node.node
    return {
        "hcops_node": node.name,
        "hcops_org": n.org,
        "hcops_org_role": n.org_role.value,
        "cometbft_role": n.role.value,
        "cometbft_power": n.power,
        "cometbft_image": n.image,
        "cometbft_node_id": node.keys.node_id,
        "cometbft_validator_address": node.keys.validator_address,
        "cometbft_validator_pub_key": node.keys.validator_pub_key,
        "cometbft_p2p_port": cometbft.P2P_PORT,
        "cometbft_rpc_port": cometbft.RPC_PORT,
        "cometbft_p2p_laddr": config["p2p"]["laddr"],
        "cometbft_rpc_laddr": config["rpc"]["laddr"],
        "cometbft_peer_address": peer_address(plan, node),
        "cometbft_config_src": _files(f"{node.name}/config.toml"),
        "cometbft_keys_src": keys_src if keys_src is not None else _files(f"{node.name}/keys"),
        "cometbft_key_files": key_files(node),
        # systemd's limits from the node's resources (MemoryMax in bytes; CPUQuota in % of one CPU)
        "cometbft_memory_max": memory_bytes(n.resources.memory),
        "cometbft_cpu_quota": f"{max(1, cpu_millis(n.resources.cpu) // 10)}%",
    }


def render(ctx: Context) -> TargetOutput:
    return tree(ctx)


def tree(ctx: Context, keys_src: Callable[[NodePlan], str] | None = None) -> TargetOutput:
    """The target's files. With ``keys_src`` (the provider's run folder), each host's keys are read from
    where ``keys_src`` says (the state folder) and no copy of them is written."""
    plan = ctx.plan
    out = TargetOutput("ansible")
    vars_tpl = template(ctx, "ansible/vars.yaml.j2")
    out.text("inventory.yaml", vars_tpl.render(
        header=header(ctx, f"Ansible inventory of the {plan.name} consortium network."),
        doc=inventory(plan)))
    out.text("group_vars/all.yaml", vars_tpl.render(
        header=header(ctx, "Variables shared by every node."), doc=group_vars(ctx)))
    out.text("files/genesis.json", ctx.genesis)
    for node in plan.nodes:
        config = host_config(plan, node)
        out.text(f"host_vars/{node.name}.yaml", vars_tpl.render(
            header=header(ctx, f"Node {node.name}: public identity and ports (no key material)."),
            doc=host_vars(plan, node, config, keys_src(node) if keys_src else None)))
        out.text(f"files/{node.name}/config.toml", toml.dumps(config))
        if keys_src is None:
            for name, content in sorted(ctx.private_files(node.name).items()):
                out.private(f"files/{node.name}/keys/{name}", content)
    return out
