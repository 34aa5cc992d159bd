"""The kubernetes target: one namespace per network (or per organization that declares its own,
``spec.organizations[].kubernetes``), one StatefulSet + headless Service + ConfigMap per node.

Files (``kubectl apply -f`` takes them in name order; the folder is not read recursively, so a plain
``kubectl apply -f kubernetes/`` never touches the key material):

    00-namespace.yaml          Namespace, Pod Security "restricted" enforced
    10-network-policies.yaml   default deny, DNS, P2P within the network (and from the network's pods in the
                               other members' namespaces), RPC per spec.network.rpc.exposure
    20-disruption-budget.yaml  PodDisruptionBudget of the validators (one per namespace)
    30-genesis.yaml            ConfigMap with genesis.json, shared by every node of the namespace
    50-node-<node>.yaml        per node: ConfigMap (config.toml), Service, StatefulSet
    secrets/<node>.yaml        per node: Secret with node_key.json, a validator's priv_validator_key.json
                               and, with TLS, the RPC's key, certificate and the network CA (0600)

Pods run as uid 10001 with a read-only root, no capabilities and RuntimeDefault seccomp. The data volume
comes from a volumeClaimTemplate; config.toml, genesis.json and the keys are mounted as single files into
/cometbft/config. As in the docker target, an init container runs ``cometbft init`` with a throw-away key
path so that data/priv_validator_state.json exists before the first start and is never reset afterwards. An
observer gets no validator key (``cometbft.OBSERVER_KEY``). With TLS the node serves HTTPS only and its
probes verify it against the network CA (``SSL_CERT_FILE``).
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from hcops.plan import cometbft
from hcops.plan.desired import KubeScope, NetworkPlan, NodePlan
from hcops.plan.keys import NODE_KEY, PRIV_VALIDATOR_KEY
from hcops.render import toml
from hcops.render.base import NODE_UID, Context, TargetOutput, template, to_json, to_yaml
from hcops.render.budgets import max_unavailable_validators, namespace_budgets
from hcops.render.docker import PLACEHOLDER_KEY
from hcops.spec.models import Exposure

HOME = cometbft.HOME
PROBE = "/usr/local/bin/hcops-probe"
TLS_FILES = (cometbft.RPC_TLS_CERT, cometbft.RPC_TLS_KEY, cometbft.RPC_TLS_CA)
CA_ENV = "SSL_CERT_FILE"  # Go's crypto/x509 trusts this file: the probe verifies the node like hcops does
MANAGED = {"app.kubernetes.io/managed-by": "hcops"}
DNS_PORT = 53
SECRET_MODE = 0o400  # the kubelet adds group read for fsGroup 10001
CONFIG_MODE = 0o444


def namespace(plan: NetworkPlan) -> str:
    return plan.consortium.spec.provider.kubernetes.namespace or plan.name


def genesis_configmap(plan: NetworkPlan) -> str:
    return f"{plan.name}-genesis"


def config_configmap(node: NodePlan) -> str:
    return f"{node.name}-config"


def keys_secret(node: NodePlan) -> str:
    return f"{node.name}-keys"


def _security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": False,
            "readOnlyRootFilesystem": True, "runAsGroup": NODE_UID, "runAsNonRoot": True,
            "runAsUser": NODE_UID, "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> dict[str, Any]:
    """The nodes' container security context, which hcops' helper pods (backups, drills) use too."""
    return _security()


def _mounts() -> list[dict[str, Any]]:
    """What both containers mount: the data volume, config.toml, genesis.json and the node key."""
    return [
        {"name": "home", "mountPath": HOME},
        {"name": "config", "mountPath": f"{HOME}/config/config.toml", "subPath": "config.toml",
         "readOnly": True},
        {"name": "genesis", "mountPath": f"{HOME}/config/genesis.json", "subPath": "genesis.json",
         "readOnly": True},
        {"name": "keys", "mountPath": f"{HOME}/config/{NODE_KEY}", "subPath": NODE_KEY, "readOnly": True},
    ]


def _main_mounts(node: NodePlan, tls: bool) -> list[dict[str, Any]]:
    """What only the node container mounts: a validator's key, with TLS the RPC's certificate, key and the
    network CA (all from the node's Secret), and a /tmp. An observer gets no validator key at all."""
    files = ([PRIV_VALIDATOR_KEY] if node.node.is_validator else []) + (list(TLS_FILES) if tls else [])
    return [*({"name": "keys", "mountPath": f"{HOME}/config/{f}", "subPath": f, "readOnly": True}
              for f in files),
            {"name": "tmp", "mountPath": "/tmp"}]


def probe_command(tls: bool) -> list[str]:
    """The health probe; with TLS it reads /status over HTTPS and verifies against the network CA."""
    return [PROBE, f"https://127.0.0.1:{cometbft.RPC_PORT}/status"] if tls else [PROBE]


class _Objects:
    """The objects of one namespace (``KubeScope``): by default the network's only one."""

    def __init__(self, ctx: Context, scope: KubeScope | None = None) -> None:
        plan = ctx.plan
        self.ctx = ctx
        self.plan = plan
        self.topology = ctx.topology
        self.scope = scope or plan.kube_scopes()[0]
        self.ns = self.scope.namespace
        # The other members' namespaces: P2P (and internal RPC) from their nodes is allowed in, and out to them.
        self.others = tuple(ns for ns in plan.kube_namespaces() if ns != self.ns)
        self.network = plan.name
        # The spec hash goes on the Namespace only: on every object, any spec change would rewrite them all.
        self.annotations = {"hcops.spec-hash": ctx.spec_hash}
        self.genesis = ctx.genesis
        self.exposure = plan.consortium.spec.network.rpc.exposure
        self.settings = plan.consortium.spec.provider.kubernetes

    # ------------------------------------------------------------------ labels and metadata
    def labels(self, node: NodePlan | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
        out = {**MANAGED, "app.kubernetes.io/part-of": self.network, "hcops.network": self.network}
        out.update(extra or {})
        if node is not None:
            out.update({"app.kubernetes.io/instance": node.name, "app.kubernetes.io/name": "cometbft",
                        "hcops.node": node.name, "hcops.org": node.node.org,
                        "hcops.role": node.node.role.value})
        return dict(sorted(out.items()))

    def meta(self, name: str, node: NodePlan | None = None) -> dict[str, Any]:
        return {"name": name, "namespace": self.ns, "labels": self.labels(node)}

    def validator_pods(self) -> dict[str, str]:
        return {"hcops.network": self.network, "hcops.role": "validator"}

    def network_pods(self) -> dict[str, Any]:
        return {"matchLabels": {"hcops.network": self.network}}

    # ------------------------------------------------------------------ shared objects
    def namespace(self) -> dict[str, Any]:
        labels = self.labels(extra={
            "hcops.consortium": self.network,
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/warn": "restricted",
        })
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": self.ns, "labels": labels, "annotations": dict(self.annotations)}}

    def network_policies(self) -> list[dict[str, Any]]:
        def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
            return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": self.meta(name), "spec": spec}

        p2p = [{"port": cometbft.P2P_PORT, "protocol": "TCP"}]
        rpc = [{"port": cometbft.RPC_PORT, "protocol": "TCP"}]
        pods: dict[str, Any] = {"podSelector": self.network_pods()}
        peers = [pods, *self.member_pods()]
        out = [
            policy("hcops-default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
            policy("hcops-allow-dns", {
                "podSelector": self.network_pods(), "policyTypes": ["Egress"],
                "egress": [{"to": [{"namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                    "ports": [{"port": DNS_PORT, "protocol": "UDP"},
                              {"port": DNS_PORT, "protocol": "TCP"}]}]}),
            policy("hcops-allow-p2p", {
                "podSelector": self.network_pods(), "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": peers, "ports": p2p}], "egress": [{"to": peers, "ports": p2p}]}),
        ]
        if self.exposure is Exposure.host:
            return out  # RPC only through `kubectl port-forward`
        ingress: dict[str, Any] = {"ports": rpc}
        if self.exposure is Exposure.internal:
            ingress["from"] = peers
        elif self.exposure is Exposure.consortium:
            members = {"namespaceSelector": {"matchLabels": {"hcops.consortium": self.network}}}
            ingress["from"] = [pods, members]
        # public: no "from", any source
        out.append(policy("hcops-allow-rpc", {
            "podSelector": self.network_pods(), "policyTypes": ["Ingress", "Egress"],
            "ingress": [ingress], "egress": [{"to": peers, "ports": rpc}]}))
        return out

    def member_pods(self) -> list[dict[str, Any]]:
        """The network's pods in the other members' namespaces: namespaces that carry the consortium label
        hcops puts on its own and whose (API-server-set, unforgeable) name is one of the members'; the pod
        selector and namespace selector in one entry, so both must match. None with one namespace."""
        if not self.others:
            return []
        return [{"namespaceSelector": {
                    "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                          "values": list(self.others)}],
                    "matchLabels": {"hcops.consortium": self.network}},
                 "podSelector": self.network_pods()}]

    def disruption_budget(self) -> dict[str, Any]:
        if self.others:  # several namespaces: one share of the whole validator set's tolerance each
            budget = namespace_budgets((self.plan.kube_namespace(p), p.node.power) for p in self.plan.members
                                       if p.node.is_validator).get(self.scope.namespace, 0)
        else:
            budget = max_unavailable_validators([p.node.power for p in self.scope.nodes if p.node.is_validator])
        return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": self.meta("hcops-validators"),
                "spec": {"maxUnavailable": budget,
                         "selector": {"matchLabels": self.validator_pods()}}}

    def genesis_map(self) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": self.meta(genesis_configmap(self.plan)),
                "data": {"genesis.json": self.genesis}}

    def shared(self) -> list[dict[str, Any]]:
        return [self.namespace(), *self.network_policies(), self.disruption_budget(), self.genesis_map()]

    # ------------------------------------------------------------------ per node
    def node_objects(self, node: NodePlan) -> list[dict[str, Any]]:
        config = self.ctx.kubernetes_config(node, self.ns)
        text = toml.dumps(config)
        config_hash = self.ctx.config_hash(text, node)
        config = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": self.meta(config_configmap(node), node), "data": {"config.toml": text}}
        selector = {"hcops.network": self.network, "hcops.node": node.name}
        ports = [{"name": "p2p", "port": cometbft.P2P_PORT, "targetPort": "p2p", "protocol": "TCP"},
                 {"name": "rpc", "port": cometbft.RPC_PORT, "targetPort": "rpc", "protocol": "TCP"}]
        service = {"apiVersion": "v1", "kind": "Service", "metadata": self.meta(node.name, node),
                   "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": selector,
                            "ports": ports}}
        return [config, service, self.statefulset(node, selector, config_hash)]

    def statefulset(self, node: NodePlan, selector: dict[str, str], config_hash: str) -> dict[str, Any]:
        n = node.node
        resources = {"requests": {"cpu": n.resources.cpu, "memory": n.resources.memory},
                     "limits": {"cpu": n.resources.cpu, "memory": n.resources.memory}}
        init = {"name": "init-state", "image": n.image, "imagePullPolicy": "IfNotPresent",
                "args": ["init", "--home", HOME],
                "env": [{"name": "CMT_PRIV_VALIDATOR_KEY_FILE", "value": PLACEHOLDER_KEY}],
                "resources": resources, "securityContext": _security(), "volumeMounts": _mounts()}

        tls = self.ctx.tls

        def probe(period: int, failures: int) -> dict[str, Any]:
            return {"exec": {"command": probe_command(tls)}, "periodSeconds": period, "timeoutSeconds": 5,
                    "failureThreshold": failures}

        env = [{"name": CA_ENV, "value": f"{HOME}/config/{cometbft.RPC_TLS_CA}"}] if tls else []
        main: dict[str, Any] = {
                "name": "cometbft", "image": n.image, "imagePullPolicy": "IfNotPresent",
                "args": start_args(self.plan), **({"env": env} if env else {}),
                "ports": [{"name": "p2p", "containerPort": cometbft.P2P_PORT, "protocol": "TCP"},
                          {"name": "rpc", "containerPort": cometbft.RPC_PORT, "protocol": "TCP"},
                          {"name": "metrics", "containerPort": cometbft.METRICS_PORT, "protocol": "TCP"}],
                "resources": copy_resources(resources), "securityContext": _security(),
                "startupProbe": probe(5, 60), "livenessProbe": probe(20, 6), "readinessProbe": probe(10, 3),
                "volumeMounts": [*_mounts(), *_main_mounts(node, tls)]}
        volumes = [
            {"name": "config", "configMap": {"name": config_configmap(node), "defaultMode": CONFIG_MODE}},
            {"name": "genesis",
             "configMap": {"name": genesis_configmap(self.plan), "defaultMode": CONFIG_MODE}},
            {"name": "keys", "secret": {"secretName": keys_secret(node), "defaultMode": SECRET_MODE}},
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        ]
        affinity = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100, "podAffinityTerm": {
                "topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": self.validator_pods()}}}]}}
        pod_spec: dict[str, Any] = {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {"fsGroup": NODE_UID, "fsGroupChangePolicy": "OnRootMismatch",
                                "runAsGroup": NODE_UID, "runAsNonRoot": True, "runAsUser": NODE_UID,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "terminationGracePeriodSeconds": 30,
        }
        if n.is_validator:
            pod_spec["affinity"] = affinity
        pod_spec.update({"initContainers": [init], "containers": [main], "volumes": volumes})
        claim_spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                                      "resources": {"requests": {"storage": n.storage.size}}}
        if self.settings.storage_class:
            claim_spec["storageClassName"] = self.settings.storage_class
        return {
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": self.meta(node.name, node),
            "spec": {
                "serviceName": node.name,
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "template": {"metadata": {"labels": self.labels(node),
                                          "annotations": {"hcops.config-hash": config_hash}},
                             "spec": pod_spec},
                "volumeClaimTemplates": [{"metadata": {"name": "home", "labels": self.labels(node)},
                                          "spec": claim_spec}],
            },
        }

    def secret(self, node: NodePlan) -> dict[str, Any]:
        """The node's key material (and, with TLS, its certificate and the CA, mounted from the same
        volume): the only object that holds private keys, rendered only under secrets/."""
        files = {**self.ctx.private_files(node.name), **self.ctx.public_tls_files(node)}
        return {"apiVersion": "v1", "kind": "Secret", "metadata": self.meta(keys_secret(node), node),
                "type": "Opaque",
                "data": {name: base64.b64encode(files[name]).decode("ascii") for name in sorted(files)}}


def copy_resources(resources: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {k: dict(v) for k, v in resources.items()}


def kubernetes_objects(plan: NetworkPlan, *, secrets: bool = False, ctx: Context | None = None,
                       scope: KubeScope | None = None) -> list[dict[str, Any]]:
    """Every rendered object in apply order, namespace by namespace; Secrets (key material) only when asked
    for. ``scope``: that namespace's objects only."""
    ctx = ctx or Context(plan)
    out: list[dict[str, Any]] = []
    for s in (scope,) if scope is not None else plan.kube_scopes():
        b = _Objects(ctx, s)
        out += b.shared()
        for node in s.nodes:
            out += b.node_objects(node)
            if secrets:
                out.append(b.secret(node))
    return out


def start_args(plan: NetworkPlan) -> list[str]:
    """``cometbft start``, pinned to the chain's genesis as on every target: a pod handed any other genesis
    refuses to start (``--genesis_hash``, the SHA-256 of genesis.json; hcops.plan.lock)."""
    return ["start", "--home", HOME, f"--genesis_hash={plan.genesis_sha256}"]


def _template_constants(b: _Objects) -> dict[str, str]:
    """What every node's file shares, rendered to YAML text once."""
    return {
        "p2p": to_json(cometbft.P2P_PORT), "rpc": to_json(cometbft.RPC_PORT),
        "metrics": to_json(cometbft.METRICS_PORT), "uid": to_json(NODE_UID), "home": to_json(HOME),
        "start": to_json(start_args(b.plan)),
        "placeholder": to_json(PLACEHOLDER_KEY), "probe": to_json(probe_command(b.ctx.tls)),
        "security": to_yaml(_security(), 12), "mounts": to_yaml(_mounts(), 12),
        "validator_pods": to_yaml(b.validator_pods(), 20),
        "genesis": to_json(genesis_configmap(b.plan)),
        "config_mode": to_json(CONFIG_MODE), "config_mode_octal": f"0{CONFIG_MODE:o}",
        "secret_mode": to_json(SECRET_MODE), "secret_mode_octal": f"0{SECRET_MODE:o}",
    }


def render(ctx: Context) -> TargetOutput:
    from hcops.render.templating import header  # jinja2 loads for renders only, not for the policy input

    plan = ctx.plan
    scopes = [_Objects(ctx, s) for s in plan.kube_scopes()]
    b = scopes[0]
    names = ", ".join(o.ns for o in scopes)
    out = TargetOutput("kubernetes")
    head = functools.partial(header, ctx)
    objects = template(ctx, "kubernetes/objects.yaml.j2")

    what = f"Namespace {names}" if len(scopes) == 1 else f"Namespaces {names} (one per organization)"
    out.text("00-namespace.yaml", objects.render(
        header=head(f"{what} of the {plan.name} consortium network."), objects=[o.namespace() for o in scopes]))
    within = "within the network" if len(scopes) == 1 else "within the network, across the members' namespaces"
    out.text("10-network-policies.yaml", objects.render(
        header=head(f"Network policies: deny by default; P2P {within}; RPC exposure "
                    f"{b.exposure.value}."), objects=[p for o in scopes for p in o.network_policies()]))
    out.text("20-disruption-budget.yaml", objects.render(
        header=head("At most this many validators may be evicted at once (they keep > 2/3 of the power)."),
        objects=[o.disruption_budget() for o in scopes]))
    out.text("30-genesis.yaml", objects.render(
        header=head("The chain's genesis, mounted into every node."), objects=[o.genesis_map() for o in scopes]))
    node_tpl = template(ctx, "kubernetes/node.yaml.j2")
    secret_tpl = template(ctx, "kubernetes/secret.yaml.j2")
    k = _template_constants(b)
    for o in scopes:
        for node in o.scope.nodes:
            out.text(f"50-node-{node.name}.yaml", node_tpl.render(
                header=head(f"Node {node.name} ({node.node.role.value}, {node.node.org})."),
                objects=o.node_objects(node), k=k))
            out.private(f"secrets/{node.name}.yaml", secret_tpl.render(
                header=head(f"KEY MATERIAL of node {node.name}: apply, never commit or share."),
                secret=o.secret(node)).encode())
    out.private("secrets/README.txt", template(ctx, "kubernetes/secrets-README.txt.j2").render(
        network=plan.name, namespace=names).encode())
    return out
