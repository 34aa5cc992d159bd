"""The ansible target: an inventory, its variables and the files a playbook copies to each host.

    inventory.yaml                one group per organization (org_<name>), plus validators and observers
    group_vars/all.yaml           chain id, image and version, CometBFT home and user, where genesis is
    host_vars/<node>.yaml         role, power, node ID and validator address (public), ports
    files/genesis.json
    files/<node>/config.toml      the node's config for a bare host: peers by host name
    files/<node>/keys/*.json      KEY MATERIAL (0600 in 0700 folders); never in any variable

Hosts are named after their node and reached at ``ansible_host`` = node name; peers address each other by
that name too, so it must resolve on every host (DNS or /etc/hosts).

Every string variable is tagged ``!unsafe`` except the few hcops writes as Ansible templates on purpose
(``AnsibleTemplate``): a ``{{ }}`` that reached a value from the spec is then never evaluated by Ansible.
"""

from __future__ import annotations

from typing import Any

from hcops.plan import cometbft
from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.render import toml
from hcops.render.base import Context, TargetOutput, template
from hcops.render.templating import AnsibleTemplate, header

FILES = "{{ inventory_dir }}/files"  # evaluated by Ansible: the folder next to inventory.yaml


def _files(path: str) -> AnsibleTemplate:
    return AnsibleTemplate(f"{FILES}/{path}")


def group_name(org: str) -> str:
    return "org_" + org.replace("-", "_")  # Ansible group names are identifiers; node names have no "_"


def inventory(plan: NetworkPlan) -> dict[str, Any]:
    by_org: dict[str, dict[str, Any]] = {org.name: {} for org in plan.consortium.spec.organizations}
    for p in plan.nodes:
        by_org[p.node.org][p.name] = {"ansible_host": p.name}
    children: dict[str, Any] = {group_name(org): {"hosts": hosts} if hosts else {} for org, hosts in by_org.items()}
    for group, validator in (("validators", True), ("observers", False)):
        members: dict[str, Any] = {p.name: {} for p in plan.nodes if p.node.is_validator is validator}
        children[group] = {"hosts": members} if members else {}
    return {"all": {"children": children}}


def group_vars(ctx: Context) -> dict[str, Any]:
    plan = ctx.plan
    c = plan.consortium
    settings = c.spec.provider.ansible
    return {
        "hcops_network": plan.name,
        "hcops_spec_hash": ctx.spec_hash,
        "cometbft_chain_id": c.spec.chain.chain_id,
        "cometbft_version": c.spec.chain.version,
        "cometbft_image": c.spec.chain.image,
        "cometbft_user": settings.user,
        "cometbft_home": settings.home,
        "cometbft_genesis_src": _files("genesis.json"),
        "cometbft_genesis_dest": f"{settings.home}/config/genesis.json",
        "cometbft_p2p_port": cometbft.P2P_PORT,
        "cometbft_rpc_port": cometbft.RPC_PORT,
        "cometbft_metrics_port": cometbft.METRICS_PORT,
    }


def host_vars(plan: NetworkPlan, node: NodePlan, config: dict[str, Any]) -> dict[str, Any]:
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
        "cometbft_config_src": _files(f"{node.name}/config.toml"),
        "cometbft_keys_src": _files(f"{node.name}/keys"),
    }


def render(ctx: Context) -> TargetOutput:
    plan, topology = ctx.plan, ctx.topology
    out = TargetOutput("ansible")
    out.text("inventory.yaml", template("ansible/vars.yaml.j2").render(
        header=header(ctx, f"Ansible inventory of the {plan.name} consortium network."),
        doc=inventory(plan)))
    out.text("group_vars/all.yaml", template("ansible/vars.yaml.j2").render(
        header=header(ctx, "Variables shared by every node."), doc=group_vars(ctx)))
    out.text("files/genesis.json", ctx.genesis)
    vars_tpl = template("ansible/vars.yaml.j2")
    for node in plan.nodes:
        config = topology.host_config(node)
        out.text(f"host_vars/{node.name}.yaml", vars_tpl.render(
            header=header(ctx, f"Node {node.name}: public identity and ports (no key material)."),
            doc=host_vars(plan, node, config)))
        out.text(f"files/{node.name}/config.toml", toml.dumps(config))
        for name, content in sorted(ctx.private_files(node.name).items()):
            out.private(f"files/{node.name}/keys/{name}", content)
    return out
