"""Live facts about each node: from the engine (container, image, hardening, key file modes), from the
node's RPC (identity, height, peers) and, with TLS on, from its published RPC endpoint (handshake verified
against the network CA, plain HTTP refused, certificate dates: ``rpc.tls``, hcops.providers.tls);
chain-level facts (validator set, recent commit signers) once per observation from the highest node that
answers. Never reads or returns secret content.

Cost per observation: the inventory's container inspects, one image lookup per distinct image, and per
running node /status and /net_info over one keep-alive connection; then /validators and a few /commit
calls in total, not per node (every healthy node reports the same chain)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import ssl
import stat
import tarfile
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from hcops.plan import certs, cometbft
from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.providers import tls
from hcops.providers.base import NodeStatus, Observation
from hcops.providers.docker.containers import (
    HOME,
    KEY_PATHS,
    LABEL_NODE,
    STATE_PATH,
    DesiredContainer,
    network_name,
)
from hcops.providers.docker.inventory import Inventory, read_inventory
from hcops.providers.docker.storage import node_storage
from hcops.providers.facts import (
    ContainerFacts,
    ImageFacts,
    KeyFile,
    LastCommit,
    Mount,
    ResourceLimits,
    RpcFacts,
    port_bindings,
)
from hcops.providers.rpc import HttpTransport, RpcClient, RpcUnavailable, Validator, parse_peers

# Per-node work is two RPC calls and, at most, a key-file archive when the engine is remote. Measured at
# 32 nodes on 2 cores (bench/RESULTS.md, audit): with the plain HTTP attempts beside the reads, 16 threads gave
# the lowest median in interleaved sweeps of the same network (8: a quarter slower; 32: no better than 16).
MAX_WORKERS = 16
RECENT_COMMITS = 3  # commits whose signers the chain-level facts report
CHAIN_SOURCES = 3  # nodes tried, highest first, for the chain-level facts
VALIDATOR_PAGE = 100  # CometBFT's largest page


def _local_volume_dir(container: Container, destination: str) -> Path | None:
    """The host folder of the volume mounted at ``destination``, when the engine runs on this host (over its
    unix socket) and the folder is readable here; reading it is far cheaper than an archive export."""
    if not str(getattr(container.client.api, "base_url", "")).startswith("http+docker://"):
        return None
    for m in container.attrs.get("Mounts") or ():
        if m.get("Destination") == destination and m.get("Type") == "volume" and m.get("Source"):
            folder = Path(m["Source"])
            return folder if os.access(folder, os.R_OK | os.X_OK) else None
    return None


def key_file_meta(container: Container, relative: str) -> dict[str, Any] | None:
    """Mode, owner and size of a file in the node's home volume: stat on the host when possible, else the
    engine's archive of the file (the same facts, from its tar header)."""
    folder = _local_volume_dir(container, HOME)
    if folder is not None:
        try:
            st = os.lstat(folder / relative)
        except FileNotFoundError:
            return None
        except OSError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            return {"mode": f"{stat.S_IMODE(st.st_mode):04o}", "uid": st.st_uid, "gid": st.st_gid,
                    "size": st.st_size}
    return file_meta(container, f"{HOME}/{relative}")


def file_meta(container: Container, path: str) -> dict[str, Any] | None:
    """Mode (octal text), uid, gid and size of one file inside the container, from the tar header only."""
    try:
        stream, _stat = container.get_archive(path)
    except docker.errors.NotFound:
        return None
    except docker.errors.APIError as exc:
        return {"error": str(getattr(exc, "explanation", exc))[:200]}
    buf = io.BytesIO(b"".join(stream))
    with tarfile.open(fileobj=buf, mode="r") as tar:
        member = tar.next()
        if member is None:
            return None
        return {"mode": f"{member.mode & 0o7777:04o}", "uid": member.uid, "gid": member.gid,
                "size": member.size}


def image_lookup(client: docker.DockerClient, image_id: str) -> dict[str, Any]:
    try:
        img = client.images.get(image_id)
    except docker.errors.DockerException:
        return {"id": image_id, "repo_digests": [], "tags": []}
    labels = (img.attrs.get("Config") or {}).get("Labels") or {}
    return {"id": img.id, "repo_digests": list(img.attrs.get("RepoDigests") or ()), "tags": list(img.tags),
            "labels": dict(labels)}


def image_cache(client: docker.DockerClient, containers: Iterable[Container]) -> dict[str, dict[str, Any]]:
    """One lookup per distinct image (nodes normally share one), done before the per-node work."""
    ids = {c.attrs.get("Image", "") for c in containers}
    return {i: image_lookup(client, i) for i in sorted(ids)}


def _image_facts(client: docker.DockerClient, attrs: Mapping[str, Any], cache: dict[str, dict[str, Any]]) -> \
        dict[str, Any]:
    image_id = attrs.get("Image", "")
    if image_id not in cache:
        cache[image_id] = image_lookup(client, image_id)
    return {"reference": (attrs.get("Config") or {}).get("Image"), **cache[image_id]}


def published_ports(attrs: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Container port -> host bindings, as the engine reports them (also for containers hcops did not make)."""
    return {port: [{"host_ip": b.get("HostIp"), "host_port": b.get("HostPort")} for b in binds or ()]
            for port, binds in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items()}


def key_paths(plan: NetworkPlan, node: NodePlan) -> tuple[str, ...]:
    """The key and signing-state files a node holds in its home: a validator's from hcops, an observer's
    throwaway ones made by CometBFT itself (cometbft.OBSERVER_KEY), and with TLS the RPC's server key."""
    own = (*KEY_PATHS, STATE_PATH) if node.node.is_validator else \
        (KEY_PATHS[0], cometbft.OBSERVER_KEY, cometbft.OBSERVER_STATE)
    return (*own, f"config/{cometbft.RPC_TLS_KEY}") if certs.tls_enabled(plan) else own


def container_facts(client: docker.DockerClient, c: Container, image_cache: dict[str, dict[str, Any]],
                    keys: tuple[str, ...] = (*KEY_PATHS, STATE_PATH)) -> ContainerFacts:
    a = c.attrs
    cfg, hc, st = a.get("Config") or {}, a.get("HostConfig") or {}, a.get("State") or {}
    networks = {name: {"ip": (ep.get("IPAMConfig") or {}).get("IPv4Address") or ep.get("IPAddress")}
                for name, ep in ((a.get("NetworkSettings") or {}).get("Networks") or {}).items()}
    image = _image_facts(client, a, image_cache)
    return ContainerFacts(
        present=True,
        name=c.name,
        state=st.get("Status"),
        restart_count=a.get("RestartCount", 0),
        image=ImageFacts(image.get("reference"), image.get("id") or "", tuple(image.get("repo_digests") or ())),
        user=cfg.get("User") or "",
        read_only_rootfs=bool(hc.get("ReadonlyRootfs")),
        cap_drop=tuple(hc.get("CapDrop") or ()),
        cap_add=tuple(hc.get("CapAdd") or ()),
        privileged=bool(hc.get("Privileged")),
        no_new_privileges=any(o.startswith("no-new-privileges") and not o.endswith("false")
                              for o in hc.get("SecurityOpt") or ()),
        mounts=tuple(Mount(m.get("Type"), m.get("Name"), m.get("Destination"), m.get("RW"))
                     for m in a.get("Mounts") or ()),
        key_files={p: KeyFile.of(key_file_meta(c, p)) for p in keys},
        ports=port_bindings(published_ports(a)),
        resources=ResourceLimits(hc.get("Memory") or 0, hc.get("NanoCpus") or 0, hc.get("PidsLimit")),
        labels=dict(cfg.get("Labels") or {}),
        engine={
            "id": c.id,
            "health": (st.get("Health") or {}).get("Status"),
            "exit_code": st.get("ExitCode"),
            "started_at": st.get("StartedAt"),
            "image_tags": list(image.get("tags") or ()),
            "security_opt": list(hc.get("SecurityOpt") or ()),
            "tmpfs": dict(hc.get("Tmpfs") or {}),
            "networks": networks,
            "network_mode": hc.get("NetworkMode"),
            "restart_policy": dict(hc.get("RestartPolicy") or {}),
            "healthcheck": bool(cfg.get("Healthcheck")),
            "env_names": sorted(e.split("=", 1)[0] for e in cfg.get("Env") or ()),  # names only, never values
        },
    )


def rpc_facts(rpc: RpcClient, *, chain: bool = True) -> tuple[dict[str, Any], RpcFacts]:
    """(summary for NodeStatus fields, facts) from one node's RPC; empty when it does not answer. With
    ``chain``, also the validator set and last commit this node reports (providers that do not read
    chain-level facts once per observation)."""
    try:  # one round trip for both (batch); a node without peers information still reports its status
        status, net = rpc.batch(("status", {}), ("net_info", {}))
        if status is None:
            raise RpcUnavailable(f"{rpc.base_url}: no status in the reply")
        s = rpc.parse_status(status)
    except RpcUnavailable as exc:
        return {}, RpcFacts(reachable=False, url=rpc.base_url, error=str(exc))
    summary: dict[str, Any] = {"height": s.height, "catching_up": s.catching_up,
                               "voting_power": s.voting_power, "last_block_time": s.latest_block_time}
    peers: tuple[str, ...] = ()
    if net is not None:
        found = parse_peers(net)
        peers = tuple(p.node_id for p in found)
        summary["peers"] = len(found)
    facts = RpcFacts(reachable=True, url=rpc.base_url, node_id=s.node_id, moniker=s.moniker, chain_id=s.network,
                     version=s.version, height=s.height, latest_block_time=s.latest_block_time,
                     catching_up=s.catching_up, validator_address=s.validator_address,
                     voting_power=s.voting_power, peers=peers)
    if not chain:
        return summary, facts
    with contextlib.suppress(RpcUnavailable):
        facts = dataclasses.replace(facts, validators=tuple(rpc.validators()))
    if s.height > 1:
        try:
            commit = rpc.commit(s.height - 1)
            facts = dataclasses.replace(facts, last_commit=LastCommit(commit.height, tuple(sorted(commit.signers))))
        except RpcUnavailable:
            pass
    return summary, facts


def chain_sources(nodes: Iterable[NodeStatus]) -> list[tuple[str, str, int]]:
    """(node, RPC URL, height) of the nodes to read chain-level facts from: in sync ones first, highest
    first (the freshest view of the validator set and of recent commits)."""
    live = [(n.name, n.rpc.url, n.height, bool(n.catching_up)) for n in nodes
            if n.rpc is not None and n.rpc.reachable and n.rpc.url and isinstance(n.height, int)]
    live.sort(key=lambda t: (t[3], -t[2], t[0]))
    return [(name, url, height) for name, url, height, _ in live[:CHAIN_SOURCES]]


def chain_facts(sources: Iterable[tuple[str, str, int]], *, commits: int = RECENT_COMMITS,
                timeout: float = 2.0, ssl_context: ssl.SSLContext | None = None) -> dict[str, Any]:
    """The validator set and the signers of the last ``commits`` committed blocks, read once from the first
    source that answers all of it: {"source", "height", "validators", "commits"} (``error`` when none did)."""
    errors: list[str] = []
    for name, url, height in sources:
        rpc = RpcClient(url, timeout=timeout, attempts=1, ssl_context=ssl_context)
        heights = range(height - 1, max(0, height - 1 - commits), -1)
        try:  # one round trip (batch); a set beyond one page is read page by page
            first, *replies = rpc.batch(("validators", {"page": "1", "per_page": str(VALIDATOR_PAGE)}),
                                        *(("commit", {"height": str(h)}) for h in heights))
            if first is None or None in replies:
                raise RpcUnavailable(f"{url}: the validator set or a commit is missing from the reply")
            validators = rpc.validators() if int(first.get("total") or 0) > VALIDATOR_PAGE else \
                tuple(Validator(address=v["address"], power=int(v["voting_power"])) for v in first["validators"])
            recent = [rpc.parse_commit(r) for r in replies if r is not None]
        except (RpcUnavailable, KeyError, TypeError, ValueError) as exc:
            errors.append(f"{name}: {exc}")
            continue
        finally:
            rpc.close()
        return {"source": name, "height": height,
                "validators": [{"address": v.address, "power": v.power} for v in validators],
                "commits": [{"height": c.height, "signers": sorted(c.signers)} for c in recent]}
    return {"source": None, "height": None, "validators": [], "commits": [],
            "error": "; ".join(errors) or "no node's RPC answers"}


def read_live(plan: NetworkPlan, node: NodePlan, *, detail: bool,
              plaintext: tls.Plaintext | None = None) -> tuple[dict[str, Any], RpcFacts]:
    """(status summary, RPC facts) of a node from its published RPC; with ``detail`` also its peers and, with
    TLS on, the TS-2 facts (the RPC connection's own verified handshake is the one measured; ``plaintext``:
    the plain HTTP attempt, when the caller has it made beside this read)."""
    d = DesiredContainer(plan, node)
    rpc = d.rpc_client(timeout=2.0, attempts=1 if not detail else 2)
    peer = None
    try:
        summary, rpc_f = rpc_facts(rpc, chain=False) if detail else _light_rpc(rpc)
        if detail and isinstance(rpc.transport, HttpTransport):
            peer = rpc.transport.peer_certificate()
    finally:
        rpc.close()
    if detail:
        rpc_f = dataclasses.replace(rpc_f, tls=_tls_facts(d, peer, plaintext))
    return summary, rpc_f


def node_status(client: docker.DockerClient, plan: NetworkPlan, node: NodePlan, c: Container | None, *,
                detail: bool, image_cache: dict[str, dict[str, Any]],
                read: Future[tuple[dict[str, Any], RpcFacts]] | None = None) -> NodeStatus:
    """``read``: the node's ``read_live``, started before the engine was inventoried; used when the container
    runs (otherwise nothing of it is reported)."""
    d = DesiredContainer(plan, node)
    base: dict[str, Any] = {"name": node.name, "org": node.node.org, "role": node.node.role.value,
                            "resource": d.name, "rpc_address": f"127.0.0.1:{node.rpc_host_port}"}
    if c is None:
        return NodeStatus(present=False, state="absent", container=ContainerFacts(present=False), **base)
    st = c.attrs.get("State") or {}
    summary: dict[str, Any] = {}
    rpc_f: RpcFacts | None = None
    if st.get("Status") == "running":
        summary, rpc_f = read.result() if read is not None else read_live(plan, node, detail=detail)
    container = container_facts(client, c, image_cache, key_paths(plan, node)) if detail else None
    return NodeStatus(present=True, state=st.get("Status"), health=(st.get("Health") or {}).get("Status"),
                      container=container, rpc=rpc_f, **base, **summary)


def _tls_facts(d: DesiredContainer, verified: tuple[bytes, str | None] | None = None,
               plaintext: tls.Plaintext | None = None) -> dict[str, Any]:
    """TS-2 facts of the node's published RPC, measured from this host where hcops dials it (127.0.0.1 and
    the published port): with TLS on, whether the handshake verifies against the network CA and whether
    plain HTTP is refused (hcops.providers.tls)."""
    context = d.ssl_context
    if context is None:
        return {"enabled": False}
    port = d.doc.ports[0].host_port
    return tls.measure_tcp("127.0.0.1", port, context, "127.0.0.1", verified=verified, plaintext=plaintext)


def _light_rpc(rpc: RpcClient) -> tuple[dict[str, Any], RpcFacts]:
    try:
        s = rpc.status()
    except RpcUnavailable as exc:
        return {}, RpcFacts(reachable=False, error=str(exc))
    return ({"height": s.height, "catching_up": s.catching_up, "voting_power": s.voting_power,
             "last_block_time": s.latest_block_time}, RpcFacts(reachable=True, node_id=s.node_id))


def observe_now(client: docker.DockerClient, plan: NetworkPlan, *, detail: bool = True) -> Observation:
    """``observe`` of the engine's objects as they are now, each node's RPC read while the engine is
    inventoried (its port is known from the plan): the two waits overlap instead of adding up. A read of a
    node whose container turns out not to run is dropped and not waited for."""
    pool = ThreadPoolExecutor(max_workers=min(MAX_WORKERS, max(1, len(plan.nodes))) + 1)
    try:
        # The inventory goes first: starting the node reads' threads takes the interpreter a while on a busy
        # host, and the engine's answers are the longest wait of the two.
        inventory = pool.submit(read_inventory, client, plan)
        # With TLS on, the plain HTTP attempt of TS-2 goes out beside the node's RPC read, not after it (each
        # is queued just before the read that waits for it, so a worker never waits on an unstarted task).
        tls_on = detail and certs.tls_enabled(plan)
        reads = {}
        for n in plan.nodes:
            plain = pool.submit(tls.plaintext_get("127.0.0.1", n.rpc_host_port)).result if tls_on else None
            reads[n.name] = pool.submit(read_live, plan, n, detail=detail, plaintext=plain)
        return observe(client, plan, inventory.result(), detail=detail, reads=reads)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def observe(client: docker.DockerClient, plan: NetworkPlan, inv: Inventory, *, detail: bool = True,
            reads: Mapping[str, Future[tuple[dict[str, Any], RpcFacts]]] | None = None) -> Observation:
    cache = image_cache(client, inv.containers.values()) if detail else {}
    extra: dict[str, Any] = {}
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, max(1, len(plan.nodes))) + 1) as pool:
        storage = pool.submit(node_storage, client, plan, inv) if detail else None  # encryption at rest
        futures = [pool.submit(node_status, client, plan, n, inv.container(n.name), detail=detail,
                               image_cache=cache, read=(reads or {}).get(n.name)) for n in plan.nodes]
        nodes = tuple(f.result() for f in futures)
        if storage is not None:
            context = DesiredContainer(plan, plan.nodes[0]).ssl_context if plan.nodes else None
            extra = {"chain": chain_facts(chain_sources(nodes), ssl_context=context), "storage": storage.result()}
    declared = {n.name for n in plan.nodes}
    undeclared = tuple(
        {"kind": "container", "name": c.name, "id": c.id, "node": (c.labels or {}).get(LABEL_NODE),
         "state": (c.attrs.get("State") or {}).get("Status"), "labels": dict(c.labels or {}),
         "image": (c.attrs.get("Config") or {}).get("Image"), "published_ports": published_ports(c.attrs)}
        for c in [*(c for n, c in sorted(inv.containers.items()) if n not in declared), *inv.strays])
    net_facts: dict[str, Any] = {"name": network_name(plan), "present": inv.network is not None}
    if inv.network is not None:
        a = inv.network.attrs
        net_facts.update(id=inv.network.id, driver=a.get("Driver"), internal=a.get("Internal"),
                         subnet=(((a.get("IPAM") or {}).get("Config") or [{}])[0]).get("Subnet"),
                         labels=dict(a.get("Labels") or {}))
    volumes = {name: {"labels": dict(v.attrs.get("Labels") or {}), "driver": v.attrs.get("Driver")}
               for name, v in inv.volumes.items()}
    return Observation(network=plan.name, nodes=nodes, undeclared=undeclared,
                       facts={"provider": "docker", "network": net_facts, "volumes": volumes, **extra})
