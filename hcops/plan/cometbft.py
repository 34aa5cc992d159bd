"""CometBFT documents: ``genesis.json`` and ``config.toml`` (as a table), from the spec and public keys."""

from __future__ import annotations

from typing import Any

from hcops.plan.keys import PublicKeys
from hcops.spec.models import Consortium, Exposure, ResolvedNode
from hcops.spec.types import format_duration

P2P_PORT = 26656
RPC_PORT = 26657
METRICS_PORT = 26660
HOME = "/cometbft"
# The RPC's TLS files in the node's config folder (CometBFT reads relative paths from there); only
# configured when spec.network.rpc.tls is on, so the RPC then serves HTTPS only (hcops.plan.certs).
RPC_TLS_CERT = "rpc-tls-cert.pem"
RPC_TLS_KEY = "rpc-tls-key.pem"
RPC_TLS_CA = "rpc-ca.pem"  # not read by CometBFT: what the health probe inside the container trusts
# An observer has no voting power and gets no validator key from hcops. CometBFT still loads a
# FilePV at start (node.DefaultNewNode -> privval.LoadOrGenFilePV), generating it when the file is
# missing: so an observer's config points at a throwaway key in its data folder, created by the node
# itself on first start, with a sign state of its own, so that a node demoted from validator keeps its
# real data/priv_validator_state.json untouched (promoted again, it must not double-sign).
OBSERVER_KEY = "data/hcops-observer-key.json"
OBSERVER_STATE = "data/hcops-observer-state.json"


def genesis(c: Consortium, keys: dict[str, PublicKeys], genesis_time: str) -> dict[str, Any]:
    return {
        "genesis_time": genesis_time,
        "chain_id": c.spec.chain.chain_id,
        "initial_height": "1",
        "consensus_params": {
            "block": {"max_bytes": "22020096", "max_gas": "-1"},
            "evidence": {"max_age_num_blocks": "100000", "max_age_duration": "172800000000000",
                         "max_bytes": "1048576"},
            "validator": {"pub_key_types": ["ed25519"]},
            "version": {"app": "0"},
            "abci": {"vote_extensions_enable_height": "0"},
        },
        "validators": [
            {
                "address": keys[v.name].validator_address,
                "pub_key": {"type": "tendermint/PubKeyEd25519", "value": keys[v.name].validator_pub_key},
                "power": str(v.power),
                "name": v.name,
            }
            for v in c.validators
        ],
        "app_hash": "",
    }


def rpc_listen_host(exposure: Exposure, *, containerised: bool) -> str:
    """Inside a container the RPC must listen on all interfaces to be published at all; who can reach it
    is then decided by the publishing address and network policy. On a bare host it follows exposure."""
    if containerised or exposure in (Exposure.consortium, Exposure.public):
        return "0.0.0.0"
    return "127.0.0.1"


def config(c: Consortium, node: ResolvedNode, peers: list[str], *, containerised: bool = True,
           external_address: str = "") -> dict[str, Any]:
    net = c.spec.network
    rpc: dict[str, Any] = {
        "laddr": f"tcp://{rpc_listen_host(net.rpc.exposure, containerised=containerised)}:{RPC_PORT}",
        "cors_allowed_origins": list(net.rpc.cors),
        "cors_allowed_methods": ["HEAD", "GET", "POST"],
        "unsafe": net.rpc.unsafe,
        "max_open_connections": 900,
        "pprof_laddr": "",
    }
    if net.rpc.tls:
        rpc.update(tls_cert_file=RPC_TLS_CERT, tls_key_file=RPC_TLS_KEY)
    validator = node.is_validator
    return {
        "proxy_app": c.spec.chain.app,
        "moniker": node.name,
        "db_backend": "goleveldb",
        "db_dir": "data",
        "log_level": "info",
        "log_format": "plain",
        "genesis_file": "config/genesis.json",
        "priv_validator_key_file": "config/priv_validator_key.json" if validator else OBSERVER_KEY,
        "priv_validator_state_file": "data/priv_validator_state.json" if validator else OBSERVER_STATE,
        "node_key_file": "config/node_key.json",
        "abci": "socket",
        "filter_peers": False,
        "rpc": rpc,
        "p2p": {
            "laddr": f"tcp://0.0.0.0:{P2P_PORT}",
            "external_address": external_address,
            "persistent_peers": ",".join(peers),
            "pex": net.p2p.pex,
            "seed_mode": False,
            # the config folder holds read-only bind mounts in compose; keep the writable book with the data
            "addr_book_file": "data/addrbook.json",
            "addr_book_strict": net.p2p.addr_book_strict,
            "allow_duplicate_ip": net.p2p.allow_duplicate_ip,
            "max_num_inbound_peers": 40,
            "max_num_outbound_peers": 10,
        },
        "mempool": {"type": "flood", "broadcast": True},
        "consensus": {
            "timeout_commit": format_duration(c.spec.chain.block_interval),
            "create_empty_blocks": True,
        },
        "storage": {"discard_abci_responses": False},
        "tx_index": {"indexer": "kv" if c.spec.data.tx_index == "kv" else "null"},
        "instrumentation": {
            "prometheus": True,
            "prometheus_listen_addr": f":{METRICS_PORT}",
            "namespace": "cometbft",
        },
    }


def kube_host(node: str, namespace: str) -> str:
    """A node's DNS name in Kubernetes: pod 0 of its StatefulSet behind the headless Service."""
    return f"{node}-0.{node}.{namespace}.svc.cluster.local"
