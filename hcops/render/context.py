"""What every file of one render shares, computed once per render: ``Context``."""

from __future__ import annotations

import hashlib
from typing import Any

from hcops.plan import certs, cometbft
from hcops.plan.certs import NodeCertificate
from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.plan.keys import NODE_KEY, PRIV_VALIDATOR_KEY

__all__ = ["Context", "digest"]


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


class Context:
    """What every file of one render shares, computed once: the peer topology, spec hash and genesis."""

    def __init__(self, plan: NetworkPlan) -> None:
        self.plan = plan
        self.topology = plan.topology
        self.spec_hash = plan.spec_hash()
        self.genesis = plan.genesis_json()
        self.genesis_digest = digest(self.genesis)
        self._private: dict[str, dict[str, bytes]] = {}
        self.tls = certs.tls_enabled(plan)
        self._certs: dict[str, NodeCertificate] = {}
        self._ca: bytes | None = None
        self._docker: dict[str, dict[str, Any]] = {}
        self._kubernetes: dict[tuple[str, str], dict[str, Any]] = {}
        self.memo: dict[str, Any] = {}
        self._by_name: dict[str, NodePlan] | None = None  # documents derived once per render (hcops.render.docker_doc)

    def private_files(self, node: str) -> dict[str, bytes]:
        """The key material a node is handed, read from the state folder once per render: its node key, a
        validator's key (an observer has no voting power and gets none, see ``cometbft.OBSERVER_KEY``) and,
        with TLS, its RPC server key. Never log or render these outside key folders and Secrets."""
        files = self._private.get(node)
        if files is None:
            p = self._node(node)
            names = self.private_names(p)
            files = {k: v for k, v in self.plan.keystore.private_files(node).items() if k in names}
            if self.tls:
                self.certificate(p)  # issued (or reissued for new names) before its key is read
                files[cometbft.RPC_TLS_KEY] = certs.store(self.plan).private_key(node)
            files = self._private[node] = dict(sorted(files.items()))
        return files

    def private_names(self, node: NodePlan) -> tuple[str, ...]:
        """The names of the key files ``private_files`` hands the node, without reading any of them."""
        names = (NODE_KEY, PRIV_VALIDATOR_KEY) if node.node.is_validator else (NODE_KEY,)
        return tuple(sorted((*names, cometbft.RPC_TLS_KEY) if self.tls else names))

    def _node(self, name: str) -> NodePlan:
        if self._by_name is None:
            self._by_name = {n.name: n for n in self.plan.nodes}
        return self._by_name[name]

    def certificate(self, node: NodePlan) -> NodeCertificate | None:
        """The node's RPC server certificate; None when the spec leaves TLS off."""
        if not self.tls:
            return None
        cert = self._certs.get(node.name)
        if cert is None:
            cert = self._certs[node.name] = certs.node_certificate(self.plan, node)
        return cert

    def public_tls_files(self, node: NodePlan) -> dict[str, bytes]:
        """With TLS: the node's certificate and the network CA (what its health probe trusts)."""
        cert = self.certificate(node)
        if cert is None:
            return {}
        if self._ca is None:
            self._ca = certs.ca_pem(self.plan)
        return {cometbft.RPC_TLS_CERT: cert.cert_pem, cometbft.RPC_TLS_CA: self._ca}

    def docker_config(self, node: NodePlan) -> dict[str, Any]:
        config = self._docker.get(node.name)
        if config is None:
            config = self._docker[node.name] = self.topology.docker_config(node)
        return config

    def kubernetes_config(self, node: NodePlan, namespace: str) -> dict[str, Any]:
        config = self._kubernetes.get((node.name, namespace))
        if config is None:
            config = self.topology.kubernetes_config(node, namespace)
            self._kubernetes[(node.name, namespace)] = config
        return config

    def config_hash(self, config_toml: str, node: NodePlan) -> str:
        """Changes whenever what a node is handed changes: config, genesis, identity and RPC certificate
        (never key bytes: a new TLS key comes with a new certificate)."""
        cert = self.certificate(node)
        identity = (node.keys.node_id, node.keys.validator_address)
        return digest(config_toml, self.genesis_digest, *identity, *((cert.fingerprint,) if cert else ()))
