"""The Docker provider: a bridge network per consortium; a named volume and a hardened container per node.

Apply order: refuse lost or foreign state (``guard``), network, volumes, stopped nodes started (healing first),
removed nodes, new nodes (in parallel), validator-set changes on the live chain (``rollout``: a joining node
catches up as a non-validator, then its update is committed; a leaving one goes to power 0 before its
container is removed), then changed nodes replaced one at a time (observers first, then validators that are
down, then the others, each only when more than 2/3 of the voting power stays online), each waited for until
it has caught up and, for a validator, signed again, so that the chain keeps committing. Every step is
idempotent: an interrupted apply is finished by the next one.

One organization's share (``plan.organization``, ``hcops apply --org``) works on the containers and volumes
labelled with that organization only (``inventory.scope_labels``); on one host the members share the
consortium's bridge network, which the first member's apply creates and destroy leaves while another
member's containers are attached to it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import IPAMConfig, IPAMPool

from hcops.clock import format_time, now
from hcops.errors import EnvironmentProblem, InvalidInput
from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.progress import Reporter
from hcops.providers.base import (
    Action,
    ApplyOptions,
    ApplyResult,
    Change,
    Changes,
    DestroyResult,
    Observation,
    register,
)
from hcops.providers.docker import engine, guard
from hcops.providers.docker.containers import (
    HOME,
    LABEL_NETWORK,
    STATE_PATH,
    DesiredContainer,
    base_labels,
    network_name,
    node_labels,
    rpc_host_ip,
)
from hcops.providers.docker.engine import engine_errors
from hcops.providers.docker.inventory import (
    Inventory,
    check_name_conflicts,
    diff,
    needs_replacement,
    read_inventory,
    scope_labels,
)
from hcops.providers.docker.observe import observe, observe_now
from hcops.providers.docker.rollout import Rollout, running
from hcops.providers.state import NodeRecord, StateStore

MAX_WORKERS = 8


class DockerProvider:
    name: ClassVar[str] = "docker"
    validator_updates: ClassVar[bool] = True  # carries out plan.membership on a live chain (rollout.py)

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = engine.connect()
        return self._client

    # ------------------------------------------------------------------ plan / observe
    def plan(self, plan: NetworkPlan, *, prune_volumes: bool = False) -> Changes:
        return diff(plan, read_inventory(self.client, plan), prune_volumes=prune_volumes)

    def observe(self, plan: NetworkPlan) -> Observation:
        return observe_now(self.client, plan, detail=True)

    # ------------------------------------------------------------------ apply
    def check_state(self, plan: NetworkPlan) -> None:
        """Refuse (exit 2) when the engine holds nodes or data of another identity or chain than ``plan``."""
        guard.check_state(self.client, plan, read_inventory(self.client, plan))

    def apply(self, plan: NetworkPlan, reporter: Reporter, options: ApplyOptions) -> ApplyResult:
        client = self.client
        inv = read_inventory(client, plan)
        check_name_conflicts(client, plan, inv)
        changes = diff(plan, inv, prune_volumes=options.prune_volumes)
        by_node = {c.node: c for c in changes.items if c.kind == "container" and c.node}
        for c in changes.items:
            if c.kind == "network" and c.action is Action.update:
                old, new = c.fields[0].old, c.fields[0].new
                raise InvalidInput(f"network {c.name}: the subnet changed ({old} -> {new})",
                                   hint="a subnet change needs `hcops destroy` then `hcops apply` "
                                        "(volumes and keys are kept)")
        guard.check_state(client, plan, inv)  # before anything is touched: lost or foreign state is exit 2
        members = plan.membership.ordered()
        if not changes.pending and not members:
            reporter.step("no changes: the network already matches the spec")
            return ApplyResult(changes, observe(client, plan, inv, detail=False))

        replacing = [n for n in plan.nodes if needs_replacement(by_node[n.name])]
        orphaned = inv.network is None and bool(inv.containers)  # the chain cannot be running: no rolling
        self._preflight(plan, [n for n in plan.nodes if n.name not in inv.containers], replacing)

        store = StateStore(plan.state_dir)
        state = store.load(plan.name, self.name)
        state.phase, state.spec_hash = "applying", plan.spec_hash()
        state.started_at, state.finished_at = format_time(now()), None
        store.save(state)

        if orphaned:
            reporter.step("the network was missing: recreating every node's container")
            stop = plan.consortium.spec.provider.docker.stop_timeout
            for old in inv.containers.values():
                with engine_errors(f"removing container {old.name}"):
                    old.stop(timeout=stop)
                    old.remove()
            inv.containers.clear()
            replacing = []
        creating = [n for n in plan.nodes if n.name not in inv.containers]
        fresh = not inv.containers
        self._ensure_network(plan, inv, reporter)
        self._ensure_volumes(plan, inv, reporter)

        def record(d: DesiredContainer, c: Container) -> None:
            state.nodes[d.node.name] = NodeRecord(container=d.name, resource_id=c.id, volume=d.volume,
                                                  config_hash=d.config_hash())

        roll = Rollout(plan, inv, reporter, options, refresh=lambda: read_inventory(client, plan),
                       start=lambda n: self._start_existing(DesiredContainer(plan, n), roll.inv.containers[n.name]))
        # Heal first: a stopped node is started (or, when it changed too, replaced) before any running
        # validator is touched, so that each later stop keeps the most power online.
        stopped = [n for n in plan.nodes if n.name in by_node and by_node[n.name].action is Action.update
                   and not needs_replacement(by_node[n.name]) and n.name in inv.containers]
        if stopped:
            reporter.step(f"starting {len(stopped)} stopped node(s): {', '.join(n.name for n in stopped)}")
            for n in stopped:
                self._start_existing(DesiredContainer(plan, n), inv.containers[n.name])
            roll.inv = inv = read_inventory(client, plan)
            for n in stopped:
                roll.wait_rejoined(n)
        self._remove_undeclared(plan, inv, changes, reporter, options, keep=self._holding_power(plan))

        if creating:
            reporter.step(f"creating {len(creating)} node container(s)")
            made = self._parallel([DesiredContainer(plan, n) for n in creating], self._create_and_start)
            for d, c in made:
                record(d, c)
            store.save(state)
            roll.inv = inv = read_inventory(client, plan)
        if fresh:
            roll.wait_network(since=1)
        if members:
            roll.change_validators(members, options.on_validator_change)
            roll.inv = inv = read_inventory(client, plan)
            self._remove_undeclared(plan, inv, changes, reporter, options, keep=set())

        # Observers first, then validators that are down (replacing them takes no power offline), then the
        # others one at a time, each only once the chain can spare it.
        ordered = sorted(replacing, key=lambda n: (n.node.is_validator, running(inv.container(n.name)),
                                                   n.node.index))
        for i, n in enumerate(ordered, 1):
            d = DesiredContainer(plan, n)
            changed = ", ".join(f.field for f in by_node[n.name].fields)
            if n.node.is_validator:
                roll.ensure_quorum(f"replace validator {n.name}", stopping=[n.name])
            reporter.step(f"replacing {n.name} ({i}/{len(ordered)}; changed: {changed})")
            height = roll.height()
            old = roll.inv.containers[n.name]
            with engine_errors(f"stopping container {old.name}"):
                old.stop(timeout=plan.consortium.spec.provider.docker.stop_timeout)
                old.remove()
            c = self._create_and_start(d)
            record(d, c)
            store.save(state)
            roll.inv = inv = read_inventory(client, plan)
            roll.wait_rejoined(n, min_height=height)

        if not fresh and (creating or stopped or replacing or members):
            roll.wait_network(since=roll.height() or 1)
        state.phase, state.finished_at = "applied", format_time(now())
        store.save(state)
        return ApplyResult(changes, observe_now(client, plan, detail=False),
                           validator_changes=tuple(roll.committed))

    @staticmethod
    def _holding_power(plan: NetworkPlan) -> set[str]:
        """Undeclared nodes that still hold voting power: their containers stay until it is taken away."""
        if plan.lock is None:
            return set()
        powers = plan.lock.powers()
        return {n.name for n in plan.lock.nodes if powers.get(n.validator_address.upper(), 0) > 0}

    def _preflight(self, plan: NetworkPlan, creating: list[NodePlan], replacing: list[NodePlan]) -> None:
        images = sorted({n.node.image for n in [*creating, *replacing]})
        for image in images:
            self._ensure_image(plan, image)
        host = rpc_host_ip(plan)
        for n in creating:
            if not engine.port_free(n.rpc_host_port, host):
                raise EnvironmentProblem(
                    f"host port {host}:{n.rpc_host_port} for node {n.name}'s RPC is already taken",
                    hint="stop whatever listens there, "
                         "or set spec.provider.docker.rpcHostPortBase to a free range")

    def _ensure_image(self, plan: NetworkPlan, image: str) -> None:
        client = self.client
        try:
            client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.DockerException as exc:
            raise engine.translate(exc, f"looking up image {image}") from None
        if plan.consortium.spec.provider.docker.image_pull == "missing":
            try:
                client.images.pull(image)
                return
            except docker.errors.DockerException as exc:
                cause = str(getattr(exc, "explanation", "") or exc).splitlines()[0][:200]
                raise EnvironmentProblem(
                    f"image {image} is not in the Docker engine and pulling it failed ({cause})",
                    hint=engine.BUILD_HINT) from None
        raise EnvironmentProblem(
            f"image {image} is not in the Docker engine (spec.provider.docker.imagePull: never)",
            hint=engine.BUILD_HINT + "; or set spec.provider.docker.imagePull: missing "
                                     "to let the engine pull it")

    def _ensure_network(self, plan: NetworkPlan, inv: Inventory, reporter: Reporter) -> None:
        if inv.network is not None:
            return
        name = network_name(plan)
        reporter.step(f"creating network {name} ({plan.docker_subnet})")
        with engine_errors(f"creating network {name}"):
            try:
                inv.network = self.client.networks.create(
                    name, driver="bridge", labels=base_labels(plan), check_duplicate=True,
                    ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=plan.docker_subnet)]))
            except docker.errors.APIError as exc:
                # Another member's apply on this host created it meanwhile (``--org``): the consortium's
                # network is one, whoever creates it; it is checked like any other that exists.
                if exc.status_code != 409 or plan.organization is None:
                    raise
                inv.network = read_inventory(self.client, plan).network

    def _ensure_volumes(self, plan: NetworkPlan, inv: Inventory, reporter: Reporter) -> None:
        missing = [n for n in plan.nodes if DesiredContainer(plan, n).volume not in inv.volumes]
        if missing:
            reporter.step(f"creating {len(missing)} volume(s)")
        for n in missing:
            name = DesiredContainer(plan, n).volume
            with engine_errors(f"creating volume {name}"):
                inv.volumes[name] = self.client.volumes.create(
                    name, driver="local", labels={**node_labels(plan, n), **guard.volume_labels(plan)})

    def _remove_undeclared(self, plan: NetworkPlan, inv: Inventory, changes: Changes, reporter: Reporter,
                           options: ApplyOptions, *, keep: set[str]) -> None:
        """Remove the containers of nodes no longer declared, except ``keep`` (validators whose power is still
        to be taken away), and, when asked, the volumes ``changes`` deletes."""
        declared = {n.name for n in plan.nodes} | keep
        doomed = [c for n, c in inv.containers.items() if n not in declared] + inv.strays
        inv.strays = []
        stop = plan.consortium.spec.provider.docker.stop_timeout
        for c in doomed:
            reporter.step(f"removing container {c.name} (not in the spec)")
            with engine_errors(f"removing container {c.name}"):
                c.stop(timeout=stop)
                c.remove()
        for ch in changes.items:
            if ch.kind == "volume" and ch.action is Action.delete and ch.name in inv.volumes and ch.node not in keep:
                reporter.step(f"removing volume {ch.name}")
                with engine_errors(f"removing volume {ch.name}"):
                    inv.volumes.pop(ch.name).remove()

    def _parallel(self, items: list[DesiredContainer], fn: Callable[[DesiredContainer], Container]) -> \
            list[tuple[DesiredContainer, Container]]:
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, max(1, len(items)))) as pool:
            futures = [(d, pool.submit(fn, d)) for d in items]
            return [(d, f.result()) for d, f in futures]

    def _create_and_start(self, d: DesiredContainer) -> Container:
        with engine_errors(f"creating container {d.name}"):
            c = self.client.containers.create(**d.create_kwargs(self.client.api.api_version))
        self._hand_files(d, c)
        with engine_errors(f"starting container {d.name}"):
            c.start()
        return c

    def _hand_files(self, d: DesiredContainer, c: Container) -> None:
        """Config, genesis and keys into the node's volume, through the container (owner 10001, keys 0600).
        The validator's signing state is written only when the volume has none (never rolled back)."""
        with engine_errors(f"writing node files into {d.volume}"):
            try:
                c.get_archive(f"{HOME}/{STATE_PATH}")
                seed = False
            except docker.errors.NotFound:
                seed = True
            if not c.put_archive(HOME, d.archive(with_state=seed)):
                raise EnvironmentProblem(f"the engine refused the node files for {d.name}")

    def _start_existing(self, d: DesiredContainer, c: Container) -> None:
        status = (c.attrs.get("State") or {}).get("Status")
        with engine_errors(f"starting container {c.name}"):
            if status == "created":  # never started: its files may not all be there
                self._hand_files(d, c)
            if status == "paused":
                c.unpause()
            elif status == "restarting":
                c.restart()
            else:
                c.start()

    # ------------------------------------------------------------------ destroy
    def destroy(self, plan: NetworkPlan, reporter: Reporter, *, prune_volumes: bool = False) -> DestroyResult:
        client = self.client
        label = f"{LABEL_NETWORK}={plan.name}"
        mine = scope_labels(plan)  # with --org: that organization's containers and volumes only
        removed: list[Change] = []
        stop = plan.consortium.spec.provider.docker.stop_timeout
        with engine_errors("listing the network's containers"):
            containers = client.containers.list(all=True, filters={"label": mine}, ignore_removed=True)
        if containers:
            reporter.step(f"removing {len(containers)} container(s)")

        def remove(c: Container) -> None:
            with engine_errors(f"removing container {c.name}"):
                try:
                    if c.status in ("running", "restarting", "paused"):
                        c.stop(timeout=stop)
                    c.remove(force=True)
                except docker.errors.NotFound:
                    pass

        with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
            list(pool.map(remove, containers))
        removed += [Change("container", c.name, Action.delete) for c in containers]
        with engine_errors("removing the network"):
            for net in client.networks.list(filters={"label": label}):
                if plan.organization is not None and _attached(net):
                    reporter.step(f"keeping network {net.name}: other members' containers are attached to it")
                    continue
                reporter.step(f"removing network {net.name}")
                net.remove()
                removed.append(Change("network", net.name, Action.delete))
            volumes = client.volumes.list(filters={"label": mine})
            kept: list[str] = []
            for v in volumes:
                if prune_volumes:
                    v.remove(force=True)
                    removed.append(Change("volume", v.name, Action.delete))
                else:
                    kept.append(v.name)
        if prune_volumes and volumes:
            reporter.step(f"removed {len(volumes)} volume(s)")
        store = StateStore(plan.state_dir)
        state = store.load(plan.name, self.name)
        state.phase, state.finished_at = "destroyed", format_time(now())
        kept_nodes = {} if prune_volumes else state.nodes
        state.nodes = {k: NodeRecord(volume=v.volume) for k, v in kept_nodes.items()}
        store.save(state)
        return DestroyResult(tuple(removed), tuple(kept))


def _attached(net: Any) -> bool:
    """Whether any container is still attached to a Docker network (the listing leaves that out)."""
    net.reload()
    return bool(net.attrs.get("Containers"))


register("docker", DockerProvider)
