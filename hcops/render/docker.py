"""The docker target: ``docker/compose.yaml`` and the files it bind-mounts.

The compose file runs with Docker Compose v2 (``docker compose``) and with Debian's ``docker-compose`` 1.29,
which reads a file without ``version:`` as format 3.9 and honours ``mem_limit``/``cpus``/``pids_limit``
without ``--compatibility``. 1.29 has no top-level ``name:``, so the project name comes from ``.env``.

Every node service is rendered from the node's container document (``hcops.render.docker_doc``), the one the
Docker provider creates containers from and the policy gate judges; the compose file only adds how the files
get there and the init services. Each node has one named volume at ``/cometbft``: the node image owns that
folder (uid 10001), so Docker seeds a fresh volume with that ownership. The files the document hands the node
(``config.toml``, ``genesis.json``, the node key, a validator's key, and with TLS the RPC certificate, its key
and the network CA) are bind-mounted read-only as single files into ``/cometbft/config/``; CometBFT writes
only under ``data/`` (and, with PEX on, ``config/addrbook.json``, see ``ADDRBOOK_NOTE``).

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
from hcops.plan.keys import NODE_KEY
from hcops.render import docker_doc
from hcops.render.base import NODE_UID, Context, TargetOutput, template, to_json, yaml_key

HOME = cometbft.HOME
USER = docker_doc.USER
PROBE = docker_doc.PROBE
NETWORK_KEY = "consortium"
INIT_SUFFIX = "_init"  # "_" never occurs in a node name (DNS label), so no init service can shadow a node
PLACEHOLDER_KEY = "data/hcops-init-placeholder-key.json"
ADDRBOOK_NOTE = (
    "Docker creates /cometbft/config root-owned to hold the bind mounts, so uid 10001 cannot add files there:"
    " saving config/addrbook.json fails (logged, not fatal) until addr_book_file points under data/.")


def node_dir(node: NodePlan) -> str:
    return f"nodes/{node.name}"


def volume_name(plan: NetworkPlan, node: NodePlan) -> str:
    return docker_doc.volume_name(plan.name, node.name)  # the docker provider's name for the same volume


def container_name(plan: NetworkPlan, node: NodePlan) -> str:
    return docker_doc.container_name(plan.name, node.name)


def rendered_path(node: NodePlan, f: docker_doc.HandedFile) -> str:
    """Where the compose folder holds the file the document hands the node (relative to compose.yaml):
    key material under the node's keys/ folder (0600, owner 10001), shared files once at the top."""
    name = f.path.rpartition("/")[2]
    if f.secret:
        return f"./{node_dir(node)}/keys/{name}"
    if f.path in ("config/genesis.json", f"config/{cometbft.RPC_TLS_CA}"):
        return f"./{name}"
    return f"./{node_dir(node)}/{name}"


def rpc_port(p: docker_doc.Port) -> str:
    return f"{p.host_ip}:{p.host_port}:{p.container_port}"


def _bind(source: str, target: str) -> dict[str, Any]:
    return {"type": "bind", "source": source, "target": target, "read_only": True}


def _seconds(n: int) -> str:
    return f"{n}s"


class _Compose:
    """Builds the compose document from the nodes' container documents (``hcops.render.docker_doc``)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.plan = ctx.plan
        self.docs = docker_doc.Documents.of(ctx)

    def services(self, node: NodePlan) -> dict[str, dict[str, Any]]:
        d = self.docs.document(node)
        r = d.resources
        limits = {"mem_limit": r.memory_bytes, "memswap_limit": r.memory_swap_bytes,
                  "cpus": r.nano_cpus / 1e9, "pids_limit": r.pids_limit}
        hardening = {"user": d.user, "read_only": d.read_only, "privileged": d.privileged,
                     "cap_drop": list(d.cap_drop), "security_opt": list(d.security_opt)}
        logging = {"driver": d.log_driver, "options": dict(d.log_options)}
        home = {"type": "volume", "source": node.name, "target": HOME}
        binds = {f.path: _bind(rendered_path(node, f), f"{HOME}/{f.path}") for f in d.files}
        init_name = node.name + INIT_SUFFIX
        hc = d.healthcheck
        main: dict[str, Any] = {
            "image": d.image,
            "container_name": d.name,
            "hostname": d.hostname,
            "command": list(d.command),
            **hardening,
            **({"environment": dict(d.env)} if d.env else {}),
            "tmpfs": [f"{path}:{opts}" for path, opts in d.tmpfs],
            **limits,
            "restart": d.restart,
            "stop_signal": d.stop_signal,
            # how long `docker compose stop` waits; the provider passes the same setting when it stops a node
            "stop_grace_period": _seconds(self.plan.consortium.spec.provider.docker.stop_timeout),
            "healthcheck": {"test": list(hc.test), "interval": _seconds(hc.interval_s),
                            "timeout": _seconds(hc.timeout_s), "retries": hc.retries,
                            "start_period": _seconds(hc.start_period_s)},
            "labels": d.label_map,
            "logging": logging,
            "ports": [rpc_port(p) for p in d.ports],
            "networks": {NETWORK_KEY: {"ipv4_address": d.ipv4_address, "aliases": list(d.aliases)}},
            "volumes": [home, *binds.values()],
            "depends_on": {init_name: {"condition": "service_completed_successfully"}},
        }
        # The init service runs `cometbft init` once before the node (see the module doc): same image and
        # hardening, no network, and no key but the node key (never the validator's or the TLS key).
        shared = [binds[p] for p in ("config/config.toml", "config/genesis.json", f"config/{NODE_KEY}")]
        init = {
            "image": d.image,
            "command": ["init", "--home", HOME],
            **hardening,
            **limits,
            "restart": "no",
            "network_mode": "none",
            "environment": {"CMT_PRIV_VALIDATOR_KEY_FILE": PLACEHOLDER_KEY},
            "healthcheck": {"disable": True},
            "labels": {**d.label_map, docker_doc.LABEL_COMPONENT: "init"},
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


def docker_containers(plan: NetworkPlan, ctx: Context | None = None) -> list[dict[str, Any]]:
    """Every node's container document (``hcops.render.docker_doc``) as data: what ``hcops apply`` creates."""
    return [d.to_json() for d in docker_doc.Documents.of(ctx or Context(plan)).all()]


def render(ctx: Context) -> TargetOutput:
    from hcops.render.templating import header  # jinja2 loads for renders only, not for the policy input

    plan = ctx.plan
    builder = _Compose(ctx)
    doc = builder.document()
    out = TargetOutput("docker")
    k = {"home": to_json(HOME), "placeholder": to_json(PLACEHOLDER_KEY), "network": yaml_key(NETWORK_KEY),
         "network_key": NETWORK_KEY, "init_suffix": INIT_SUFFIX}
    out.text("compose.yaml", template(ctx, "docker/compose.yaml.j2").render(
        header=header(ctx, f"Docker Compose project for the {plan.name} consortium network."),
        network=plan.name, compose=doc, k=k))
    out.text(".env", f"COMPOSE_PROJECT_NAME={plan.name}\n")
    out.text("README.txt", template(ctx, "docker/README.txt.j2").render(
        network=plan.name, nodes=plan.nodes, uid=NODE_UID, placeholder=PLACEHOLDER_KEY,
        addrbook_note=ADDRBOOK_NOTE, tls=ctx.tls))
    written: set[str] = set()
    for node in plan.nodes:
        d = builder.docs.document(node)
        contents = builder.docs.contents(node)
        for f in d.files:
            path = rendered_path(node, f).removeprefix("./")
            if path in written:
                continue  # genesis and the CA: one copy for every node
            written.add(path)
            if f.secret:
                out.private(path, contents[f.path], owner=NODE_UID)
            else:
                out.text(path, contents[f.path].decode())
    return out
