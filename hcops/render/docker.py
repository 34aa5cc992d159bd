"""The docker target: ``docker/compose.yaml`` and the files it bind-mounts.

The compose file runs with Docker Compose v2 (``docker compose``) and with Debian's ``docker-compose`` 1.29,
which reads a file without ``version:`` as format 3.9 and honours ``mem_limit``/``cpus``/``pids_limit``
without ``--compatibility``. 1.29 has no top-level ``name:``, so the project name comes from ``.env``.

Each node has one named volume at ``/cometbft``: the node image owns that folder (uid 10001), so Docker seeds
a fresh volume with that ownership. ``config.toml``, ``genesis.json`` and the two key files are bind-mounted
read-only as single files into ``/cometbft/config/``; CometBFT writes only under ``data/`` (and, with PEX on,
``config/addrbook.json``, see ``ADDRBOOK_NOTE``).

CometBFT refuses to start when ``priv_validator_key.json`` exists but ``data/priv_validator_state.json`` does
not, and the image has no shell to create it. So each node has a one-shot ``<node>_init`` service that runs
``cometbft init`` with ``CMT_PRIV_VALIDATOR_KEY_FILE`` pointed at a throw-away key in ``data/``: on the first
start it writes that placeholder key (never in genesis, so it has no voting power) and a fresh sign state; on
every later start it finds both and writes nothing, so the double-sign protection state is never reset. The
real validator key is not mounted into the init service at all.
"""

from __future__ import annotations

from typing import Any

from hcops.plan import cometbft
from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.plan.keys import NODE_KEY, PRIV_VALIDATOR_KEY
from hcops.render import toml
from hcops.render.base import NODE_UID, Context, TargetOutput, template, to_json, yaml_key
from hcops.spec.models import Exposure
from hcops.spec.types import cpu_millis, memory_bytes

HOME = cometbft.HOME
USER = f"{NODE_UID}:{NODE_UID}"
PROBE = "/usr/local/bin/hcops-probe"
NETWORK_KEY = "consortium"
INIT_SUFFIX = "_init"  # "_" never occurs in a node name (DNS label), so no init service can shadow a node
PLACEHOLDER_KEY = "data/hcops-init-placeholder-key.json"
ADDRBOOK_NOTE = (
    "Docker creates /cometbft/config root-owned to hold the bind mounts, so uid 10001 cannot add files there:"
    " saving config/addrbook.json fails (logged, not fatal) until addr_book_file points under data/.")


def node_dir(node: NodePlan) -> str:
    return f"nodes/{node.name}"


def volume_name(plan: NetworkPlan, node: NodePlan) -> str:
    return f"{plan.name}-{node.name}-data"  # the docker provider's name for the same volume


def container_name(plan: NetworkPlan, node: NodePlan) -> str:
    return f"{plan.name}-{node.name}"  # as the docker provider names it: one node never runs twice on a host


def rpc_port(plan: NetworkPlan, node: NodePlan) -> str:
    """Published on loopback only, unless the spec shares the RPC with members or everyone."""
    if plan.consortium.spec.network.rpc.exposure in (Exposure.consortium, Exposure.public):
        return f"{node.rpc_host_port}:{cometbft.RPC_PORT}"
    return f"127.0.0.1:{node.rpc_host_port}:{cometbft.RPC_PORT}"


def _labels(ctx: Context, node: NodePlan, component: str, config_hash: str) -> dict[str, str]:
    plan = ctx.plan
    return {
        "hcops.component": component,
        "hcops.config-hash": config_hash,
        "hcops.managed-by": "hcops",
        "hcops.network": plan.name,
        "hcops.node": node.name,
        "hcops.org": node.node.org,
        "hcops.role": node.node.role.value,
        "hcops.spec-hash": ctx.spec_hash,
    }


def _bind(source: str, target: str) -> dict[str, Any]:
    return {"type": "bind", "source": source, "target": target, "read_only": True}


class _Compose:
    """Builds the compose document; keeps each node's ``config.toml`` text for the files."""

    def __init__(self, ctx: Context, *, texts: bool = False) -> None:
        self.ctx = ctx
        self.plan = ctx.plan
        self.texts = texts
        self.config_text: dict[str, str] = {}

    def services(self, node: NodePlan) -> dict[str, dict[str, Any]]:
        plan, n = self.plan, node.node
        settings = plan.consortium.spec.provider.docker
        text = toml.dumps(self.ctx.docker_config(node))
        if self.texts:
            self.config_text[node.name] = text
        config_hash = self.ctx.config_hash(text, node)
        memory = memory_bytes(n.resources.memory)
        limits = {"mem_limit": memory, "memswap_limit": memory, "cpus": cpu_millis(n.resources.cpu) / 1000,
                  "pids_limit": settings.pids_limit}
        hardening = {"user": USER, "read_only": True, "cap_drop": ["ALL"],
                     "security_opt": ["no-new-privileges:true"]}
        logging = {"driver": "json-file", "options": {"max-file": "3", "max-size": "10m"}}
        home = {"type": "volume", "source": node.name, "target": HOME}
        shared = [
            _bind(f"./{node_dir(node)}/config.toml", f"{HOME}/config/config.toml"),
            _bind("./genesis.json", f"{HOME}/config/genesis.json"),
            _bind(f"./{node_dir(node)}/keys/{NODE_KEY}", f"{HOME}/config/{NODE_KEY}"),
        ]
        init_name = node.name + INIT_SUFFIX
        main = {
            "image": n.image,
            "container_name": container_name(plan, node),
            "hostname": node.name,
            "command": ["start", "--home", HOME],
            **hardening,
            "tmpfs": ["/tmp:rw,noexec,nosuid,size=64m"],
            **limits,
            "restart": settings.restart,
            "stop_grace_period": f"{settings.stop_timeout}s",
            "healthcheck": {"test": ["CMD", PROBE], "interval": "10s", "timeout": "5s", "retries": 3,
                            "start_period": "30s"},
            "labels": _labels(self.ctx, node, "node", config_hash),
            "logging": logging,
            "ports": [rpc_port(plan, node)],
            "networks": {NETWORK_KEY: {"ipv4_address": node.docker_ip}},
            "volumes": [home, *shared, _bind(f"./{node_dir(node)}/keys/{PRIV_VALIDATOR_KEY}",
                                             f"{HOME}/config/{PRIV_VALIDATOR_KEY}")],
            "depends_on": {init_name: {"condition": "service_completed_successfully"}},
        }
        init = {
            "image": n.image,
            "command": ["init", "--home", HOME],
            **hardening,
            **limits,
            "restart": "no",
            "network_mode": "none",
            "environment": {"CMT_PRIV_VALIDATOR_KEY_FILE": PLACEHOLDER_KEY},
            "healthcheck": {"disable": True},
            "labels": _labels(self.ctx, node, "init", config_hash),
            "logging": logging,
            "volumes": [home, *shared],
        }
        return {node.name: main, init_name: init}

    def document(self) -> dict[str, Any]:
        plan = self.plan
        services: dict[str, dict[str, Any]] = {}
        for node in plan.nodes:
            services.update(self.services(node))
        labels = {"hcops.managed-by": "hcops", "hcops.network": plan.name}
        network = {"name": plan.name, "driver": "bridge", "labels": labels,
                   "ipam": {"config": [{"subnet": plan.docker_subnet}]}}
        volumes = {node.name: {"name": volume_name(plan, node), "labels": {**labels, "hcops.node": node.name}}
                   for node in plan.nodes}
        return {"services": services, "networks": {NETWORK_KEY: network}, "volumes": volumes}


def docker_compose(plan: NetworkPlan, ctx: Context | None = None) -> dict[str, Any]:
    """The compose document ``docker/compose.yaml`` holds, as parsed data."""
    return _Compose(ctx or Context(plan)).document()


def render(ctx: Context) -> TargetOutput:
    from hcops.render.templating import header  # jinja2 loads for renders only, not for the policy input

    plan = ctx.plan
    builder = _Compose(ctx, texts=True)
    doc = builder.document()
    out = TargetOutput("docker")
    k = {"user": to_json(USER), "home": to_json(HOME), "probe": to_json(PROBE),
         "placeholder": to_json(PLACEHOLDER_KEY), "network": yaml_key(NETWORK_KEY),
         "network_key": NETWORK_KEY, "init_suffix": INIT_SUFFIX}
    out.text("compose.yaml", template("docker/compose.yaml.j2").render(
        header=header(ctx, f"Docker Compose project for the {plan.name} consortium network."),
        network=plan.name, compose=doc, k=k))
    out.text(".env", f"COMPOSE_PROJECT_NAME={plan.name}\n")
    out.text("README.txt", template("docker/README.txt.j2").render(
        network=plan.name, nodes=plan.nodes, uid=NODE_UID, placeholder=PLACEHOLDER_KEY,
        addrbook_note=ADDRBOOK_NOTE))
    out.text("genesis.json", ctx.genesis)
    for node in plan.nodes:
        folder = node_dir(node)
        out.text(f"{folder}/config.toml", builder.config_text[node.name])
        for name, content in sorted(ctx.private_files(node.name).items()):
            out.private(f"{folder}/keys/{name}", content, owner=NODE_UID)
    return out
