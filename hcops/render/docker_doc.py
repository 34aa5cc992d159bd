"""The one document per node container: what ``hcops apply`` creates on Docker, what the compose file
describes, and what the policy gate judges (``manifests.dockerContainers`` of the policy input).

``NodeContainer`` is frozen and typed; the Docker provider turns it into the engine's create arguments
(``hcops.providers.docker.containers``), the compose template renders its fields, and
``tests/integration/test_docker_document.py`` compares ``docker inspect`` of every created container with
it field by field. Nothing a container runs with is decided anywhere else.

The files a node is handed (``files``) are listed by path, mode and digest only, never content: the
provider copies them into the node's volume, the compose file bind-mounts the rendered copies of the same
files at the same paths.
"""

from __future__ import annotations

import functools
import hashlib
import json
import ssl
import threading
import weakref
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from hcops.plan import certs, cometbft
from hcops.plan.keys import NODE_KEY, PRIV_VALIDATOR_KEY
from hcops.render import toml
from hcops.render.context import Context
from hcops.spec.models import Exposure
from hcops.spec.types import cpu_millis, memory_bytes

if TYPE_CHECKING:
    from hcops.plan.desired import NetworkPlan, NodePlan

NODE_UID = 10001  # the node image's user (images/cometbft)
USER = f"{NODE_UID}:{NODE_UID}"
HOME = cometbft.HOME
PROBE = "/usr/local/bin/hcops-probe"
COMMAND = ("start", "--home", HOME)
TMPFS = (("/tmp", "rw,noexec,nosuid,size=64m"),)
CAP_DROP = ("ALL",)
SECURITY_OPT = ("no-new-privileges:true",)
CA_ENV = "SSL_CERT_FILE"  # Go's crypto/x509 trusts this file: the probe verifies the node like hcops does

LABEL_COMPONENT = "hcops.component"
LABEL_CONFIG_HASH = "hcops.config-hash"
LABEL_FILES = "hcops.files"  # short digests of the files handed to the node (never their content)
LABEL_MANAGED = "hcops.managed-by"
LABEL_NETWORK = "hcops.network"
LABEL_NODE = "hcops.node"
LABEL_ORG = "hcops.org"
LABEL_ROLE = "hcops.role"
LABEL_SPEC_HASH = "hcops.spec-hash"


@dataclass(frozen=True)
class Port:
    container_port: int
    protocol: str
    host_ip: str
    host_port: int


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...]
    interval_s: int
    timeout_s: int
    retries: int
    start_period_s: int


@dataclass(frozen=True)
class Resources:
    memory_bytes: int
    memory_swap_bytes: int  # = memory: no swap
    nano_cpus: int
    pids_limit: int


@dataclass(frozen=True)
class HandedFile:
    path: str  # in the node's home, e.g. "config/config.toml"
    mode: int
    secret: bool  # key material
    digest: str  # of the content, or for key material of its public half (node ID, address, certificate)


@dataclass(frozen=True)
class NodeContainer:
    node: str
    name: str
    hostname: str
    image: str
    user: str
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    volume: str  # the node's named volume, mounted read-write at HOME
    tmpfs: tuple[tuple[str, str], ...]
    ports: tuple[Port, ...]
    network: str
    ipv4_address: str
    aliases: tuple[str, ...]
    cap_add: tuple[str, ...]
    cap_drop: tuple[str, ...]
    security_opt: tuple[str, ...]
    privileged: bool
    read_only: bool
    resources: Resources
    restart: str
    stop_signal: str
    healthcheck: Healthcheck
    log_driver: str
    log_options: tuple[tuple[str, str], ...]
    files: tuple[HandedFile, ...]
    labels: tuple[tuple[str, str], ...]

    def to_json(self) -> dict[str, Any]:
        """The document as the policy input carries it (tuples of pairs as objects). Built field by field:
        ``dataclasses.asdict`` deep-copies every value, a large share of a 1,000-node policy input."""
        hc, r = self.healthcheck, self.resources
        return {
            "node": self.node, "name": self.name, "hostname": self.hostname, "image": self.image,
            "user": self.user, "command": list(self.command), "env": dict(self.env), "volume": self.volume,
            "tmpfs": dict(self.tmpfs),
            "ports": [{"container_port": p.container_port, "protocol": p.protocol, "host_ip": p.host_ip,
                       "host_port": p.host_port} for p in self.ports],
            "network": self.network, "ipv4_address": self.ipv4_address, "aliases": list(self.aliases),
            "cap_add": list(self.cap_add), "cap_drop": list(self.cap_drop),
            "security_opt": list(self.security_opt), "privileged": self.privileged, "read_only": self.read_only,
            "resources": {"memory_bytes": r.memory_bytes, "memory_swap_bytes": r.memory_swap_bytes,
                          "nano_cpus": r.nano_cpus, "pids_limit": r.pids_limit},
            "restart": self.restart, "stop_signal": self.stop_signal,
            "healthcheck": {"test": list(hc.test), "interval_s": hc.interval_s, "timeout_s": hc.timeout_s,
                            "retries": hc.retries, "start_period_s": hc.start_period_s},
            "log_driver": self.log_driver, "log_options": dict(self.log_options),
            "files": [{"path": f.path, "mode": f.mode, "secret": f.secret, "digest": f.digest}
                      for f in self.files],
            "labels": dict(self.labels),
        }

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def files_digest(self) -> dict[str, str]:
        """What ``LABEL_FILES`` holds: one digest per kind of file (public values only)."""
        files: dict[str, str] = json.loads(self.label_map[LABEL_FILES])
        return files


def network_name(plan: NetworkPlan) -> str:
    return plan.name


def container_name(network: str, node: str) -> str:
    return f"{network}-{node}"  # one node never runs twice on a host


def volume_name(network: str, node: str) -> str:
    return f"{network}-{node}-data"


def rpc_host_ip(plan: NetworkPlan) -> str:
    """Where the RPC is published: this host only unless the spec shares it with members or everyone."""
    return "0.0.0.0" if plan.consortium.spec.network.rpc.exposure in (Exposure.consortium, Exposure.public) \
        else "127.0.0.1"


def rpc_scheme(plan: NetworkPlan) -> str:
    return "https" if plan.consortium.spec.network.rpc.tls else "http"


def _short(data: bytes | str) -> str:
    """12 hex digits of the SHA-256 of ``data``: the digests hcops has labelled containers with (the
    ``hcops.files`` label; hcops.providers.docker.guard compares the identity and genesis ones)."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:12]


class _Files:
    """What one node is handed (home-relative path -> content) and the document's view of it."""

    def __init__(self, ctx: Context, node: NodePlan) -> None:
        self.config_toml = toml.dumps(ctx.docker_config(node))
        self.public: dict[str, bytes] = {"config/config.toml": self.config_toml.encode(),
                                         "config/genesis.json": ctx.genesis.encode()}
        self.public.update({f"config/{k}": v for k, v in ctx.public_tls_files(node).items()})
        self.cert = ctx.certificate(node)
        keys = f"{node.keys.node_id}/{node.keys.validator_address}"  # the node's identity, as labelled before
        self.secret_digest = {f"config/{NODE_KEY}": _short(node.keys.node_id),
                              f"config/{PRIV_VALIDATOR_KEY}": _short(node.keys.validator_address),
                              f"config/{cometbft.RPC_TLS_KEY}": self.cert.fingerprint[:12] if self.cert else ""}
        self.secret_paths = [f"config/{n}" for n in ctx.private_names(node)]  # names only: nothing is read
        genesis = ctx.memo.get("genesis_short")
        if genesis is None:  # the same file for every node; at 1,000 validators it is 0.2 MB
            genesis = ctx.memo["genesis_short"] = _short(ctx.genesis)
        self.digests = {p: genesis if p == "config/genesis.json" else _short(c) for p, c in self.public.items()}
        self.kinds = {"config": self.digests["config/config.toml"], "genesis": genesis, "keys": _short(keys)}
        if self.cert is not None:
            self.kinds["tls"] = self.cert.fingerprint[:12]

    def handed(self) -> tuple[HandedFile, ...]:
        out = [HandedFile(p, 0o644, False, self.digests[p]) for p in self.public]
        out += [HandedFile(p, 0o600, True, self.secret_digest[p]) for p in self.secret_paths]
        return tuple(sorted(out, key=lambda f: f.path))


def command(plan: NetworkPlan) -> tuple[str, ...]:
    """``cometbft start``, pinned to the chain's genesis: a node handed any other genesis file refuses to
    start (``--genesis_hash``, the SHA-256 of genesis.json; hcops.plan.lock)."""
    return (*COMMAND, f"--genesis_hash={plan.genesis_sha256}")


def _healthcheck(tls: bool) -> Healthcheck:
    # The probe reads /status; with TLS it dials 127.0.0.1 over HTTPS and verifies the node's certificate
    # against the network CA (CA_ENV), so "healthy" also means "serves the certificate hcops issued".
    test = ("CMD", PROBE, f"https://127.0.0.1:{cometbft.RPC_PORT}/status") if tls else ("CMD", PROBE)
    # Every check is a process the engine starts in the container (runc): at 5 s, 32 nodes on one host spent
    # half a core on them. hcops reads each node's RPC itself; the engine's health is a second opinion.
    return Healthcheck(test=test, interval_s=15, timeout_s=3, retries=3, start_period_s=15)


def build(ctx: Context, node: NodePlan) -> tuple[NodeContainer, str]:
    """The node's document and its config.toml text."""
    plan, n = ctx.plan, node.node
    settings = plan.consortium.spec.provider.docker
    files = _Files(ctx, node)
    memory = memory_bytes(n.resources.memory)
    net = network_name(plan)
    tls = files.cert is not None
    env = ((CA_ENV, f"{HOME}/config/{cometbft.RPC_TLS_CA}"),) if tls else ()
    labels = {
        LABEL_COMPONENT: "node",
        LABEL_FILES: json.dumps(files.kinds, sort_keys=True, separators=(",", ":")),
        LABEL_MANAGED: "hcops",
        LABEL_NETWORK: plan.name,
        LABEL_NODE: node.name,
        LABEL_ORG: n.org,
        LABEL_ROLE: n.role.value,
        LABEL_SPEC_HASH: ctx.spec_hash,
    }
    doc = NodeContainer(
        node=node.name, name=container_name(net, node.name), hostname=node.name, image=n.image, user=USER,
        command=command(plan), env=env, volume=volume_name(net, node.name), tmpfs=TMPFS,
        ports=(Port(cometbft.RPC_PORT, "tcp", rpc_host_ip(plan), node.rpc_host_port),),
        network=net, ipv4_address=node.docker_ip, aliases=(node.name,),
        cap_add=(), cap_drop=CAP_DROP, security_opt=SECURITY_OPT, privileged=False, read_only=True,
        resources=Resources(memory, memory, cpu_millis(n.resources.cpu) * 1_000_000, settings.pids_limit),
        restart=settings.restart, stop_signal="SIGTERM",
        healthcheck=_healthcheck(tls), log_driver="json-file",
        log_options=(("max-file", "3"), ("max-size", "10m")),
        files=files.handed(), labels=tuple(sorted(labels.items())),
    )
    # The config hash covers everything but the labels themselves: any change to what the node runs with
    # or is handed changes it (the spec hash label alone does not).
    body = doc.to_json()
    body.pop("labels")
    labels[LABEL_CONFIG_HASH] = _short(json.dumps(body, sort_keys=True))
    return replace(doc, labels=tuple(sorted(labels.items()))), files.config_toml


# ------------------------------------------------------------------------------------------- per plan
@dataclass(frozen=True)
class NodeBundle:
    """A node's container document with the files it is handed (content here, never in the document)."""

    doc: NodeContainer
    config_toml: str

    def config_hash(self) -> str:
        return self.doc.label_map[LABEL_CONFIG_HASH]


class Documents:
    """Every node's container document of one plan, built on first use with one render ``Context``."""

    def __init__(self, plan: NetworkPlan, ctx: Context | None = None) -> None:
        self.ctx = ctx or Context(plan)
        self._docs: dict[str, NodeBundle] = {}
        self._lock = threading.Lock()

    @functools.cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """What the nodes' RPC is verified with: the network CA (None without TLS)."""
        return certs.client_context(self.ctx.plan)

    @classmethod
    def of(cls, ctx: Context) -> Documents:
        """The documents of ``ctx``'s plan, shared by everything rendered with that context."""
        docs = ctx.memo.get("docker_documents")
        if docs is None:
            docs = ctx.memo["docker_documents"] = cls(ctx.plan, ctx)
        return docs

    def bundle(self, node: NodePlan) -> NodeBundle:
        with self._lock:
            found = self._docs.get(node.name)
            if found is None:
                doc, text = build(self.ctx, node)
                found = self._docs[node.name] = NodeBundle(doc, text)
            return found

    def document(self, node: NodePlan) -> NodeContainer:
        return self.bundle(node).doc

    def all(self) -> list[NodeContainer]:
        return [self.document(n) for n in self.ctx.plan.nodes]

    def contents(self, node: NodePlan) -> dict[str, bytes]:
        """Every file of ``document(node).files`` with its content (key material included): for handing to
        the node only. Never log it."""
        ctx = self.ctx
        out = {"config/config.toml": self.bundle(node).config_toml.encode(),
               "config/genesis.json": ctx.genesis.encode()}
        out.update({f"config/{k}": v for k, v in ctx.public_tls_files(node).items()})
        out.update({f"config/{k}": v for k, v in ctx.private_files(node.name).items()})
        return out


_KEEP: dict[int, tuple[weakref.ref[Any], Documents]] = {}
_CACHE_LOCK = threading.Lock()


def documents(plan: NetworkPlan) -> Documents:
    """The plan's documents, shared by every caller holding the same plan object (the provider builds
    ``DesiredContainer`` objects many times per apply; the documents are computed once)."""
    with _CACHE_LOCK:
        hit = _KEEP.get(id(plan))
        if hit is not None and hit[0]() is plan:
            return hit[1]
        docs = Documents.of(Context(plan))
        key = id(plan)
        _KEEP[key] = (weakref.ref(plan, functools.partial(_forget, key)), docs)
        return docs


def _forget(key: int, _ref: Any) -> None:
    _KEEP.pop(key, None)
