"""What a provider does for backups, restores and drills; the use cases (``service``, ``restore``,
``drill``) hold every decision about chain safety and only ask a backend to act on one node."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import tomli_w

from hcops.errors import InvalidInput
from hcops.plan.desired import NetworkPlan, NodePlan
from hcops.providers.rpc import RpcClient

DRILL_KEY = "data/hcops-drill-key.json"
DRILL_STATE = "data/hcops-drill-state.json"


class NodeBackend(Protocol):
    provider: str

    def rpc(self, node: NodePlan) -> RpcClient:
        """A client of the node's RPC as hcops reaches it."""
        ...

    def running(self, node: NodePlan) -> bool: ...

    def config_toml(self, node: NodePlan) -> bytes:
        """The node's ``config.toml`` as this provider hands it to the node."""
        ...

    def stop(self, node: NodePlan) -> None:
        """Stop the node cleanly (its databases are closed); its storage stays."""
        ...

    def start(self, node: NodePlan) -> None: ...

    def data_tar(self, node: NodePlan) -> AbstractContextManager[Iterable[bytes]]:
        """The node's ``data/`` folder as a tar stream; the node is stopped."""
        ...

    def read_state(self, node: NodePlan) -> bytes | None:
        """The node's ``data/priv_validator_state.json`` (None when it has no storage or no file)."""
        ...

    def replace(self, node: NodePlan, data: Path, state: bytes | None, config_toml: bytes) -> None:
        """Give the (stopped) node new storage holding its own files (``config_toml`` in place of the plan's),
        the decrypted data tar ``data`` and, for a validator, ``state`` as its signing state. Not started."""
        ...

    def scratch(self, node: NodePlan, data: Path, config_toml: bytes, tag: str) -> \
            AbstractContextManager[RpcClient]:
        """A throwaway, isolated node (own network, nothing published, no keys of the consortium) holding
        ``data``, started; everything it made is removed on exit."""
        ...


def patched_config(config_toml: bytes, **sections: Mapping[str, Any]) -> bytes:
    """``config_toml`` with the given keys set per section (``""`` for top-level keys)."""
    try:
        doc = tomllib.loads(config_toml.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the node's config.toml cannot be read: {exc}") from None
    for section, values in sections.items():
        target = doc if section == "" else doc.setdefault(section, {})
        for k, v in values.items():
            if v is None:
                target.pop(k, None)
            else:
                target[k] = v
    return tomli_w.dumps(doc).encode()


def restore_config(config_toml: bytes, double_sign_check_height: int) -> bytes:
    """The node's config with CometBFT's ``consensus.double_sign_check_height``: on start, a validator whose
    signature is in that many recent blocks refuses to join consensus (it exits instead of signing)."""
    return patched_config(config_toml, consensus={"double_sign_check_height": double_sign_check_height})


def drill_config(config_toml: bytes, moniker: str) -> bytes:
    """The source node's config for an isolated drill node: no peers to dial, plain RPC on its own network
    (nothing is published), and a key file of its own in the data folder that CometBFT generates at start,
    so the drill node holds no consortium key and can never sign as a validator."""
    sections: dict[str, Mapping[str, Any]] = {
        "": {"moniker": moniker, "priv_validator_key_file": DRILL_KEY, "priv_validator_state_file": DRILL_STATE,
             "node_key_file": "data/hcops-drill-node-key.json"},
        "p2p": {"persistent_peers": "", "seeds": "", "external_address": "", "pex": False},
        "rpc": {"laddr": "tcp://0.0.0.0:26657", "tls_cert_file": None, "tls_key_file": None},
        "statesync": {"enable": False}}
    return patched_config(config_toml, **sections)


def chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while block := fh.read(size):
            yield block


def backend_for(plan: NetworkPlan) -> NodeBackend:
    kind = plan.consortium.spec.provider.type
    if kind == "docker":
        from hcops.providers.docker.backup import DockerBackend

        return DockerBackend(plan)
    if kind == "kubernetes":
        from hcops.providers.kubernetes.backup import KubernetesBackend

        return KubernetesBackend(plan)
    raise InvalidInput(f"backups need a running provider; spec.provider.type is {kind}",
                       hint="the ansible target renders files only: back up its hosts with your own tooling")
