"""The gate judges what is deployed: `hcops apply` creates every node container from the document the policy
gate judged (``manifests.dockerContainers`` of the policy input, ``hcops.render.docker_doc``). On the real
engine, ``docker inspect`` of each created container (and the files in its volume) is read back into the
document's shape, independently of the provider's code, and compared field by field: any difference fails.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest

from hcops.plan.desired import NetworkPlan, build_plan
from hcops.plan.keys import KeyStore
from hcops.policy.input import build_input
from hcops.spec.loader import load_spec
from tests.providers import docker_support
from tests.providers.docker_support import TestNetwork

pytestmark = pytest.mark.integration

SECONDS = 1_000_000_000


@pytest.fixture(scope="module")
def applied(docker_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNetwork]:
    net = docker_support.new_network(docker_engine, tmp_path_factory.mktemp("doc"), "doc")
    try:
        net.hcops("apply", "--yes", check=True, timeout=600)
        yield net
    finally:
        docker_support.cleanup(docker_engine, net.name)


def judged(net: TestNetwork) -> tuple[NetworkPlan, list[dict[str, Any]]]:
    """The node container documents of the policy input, as `hcops check` / the apply gate build it."""
    plan = build_plan(load_spec(net.spec, "test"), net.state_dir)
    docs: list[dict[str, Any]] = build_input(plan)["manifests"]["dockerContainers"]
    return plan, docs


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:12]


def volume_files(container: Any) -> dict[str, tuple[int, int, bytes]]:
    """Every file under /cometbft/config of the container: path -> (mode, uid, content)."""
    stream, _ = container.get_archive("/cometbft/config")
    out: dict[str, tuple[int, int, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        for m in tar.getmembers():
            if m.isfile():
                f = tar.extractfile(m)
                out[m.name] = (m.mode & 0o7777, m.uid, f.read() if f else b"")
    return out


def from_inspect(attrs: dict[str, Any], image: dict[str, Any], files: dict[str, tuple[int, int, bytes]],
                 secrets: dict[str, bytes], want_files: list[dict[str, Any]]) -> dict[str, Any]:
    """The document a container is, read back from ``docker inspect`` of it and of its image (whose own
    environment and labels the engine merges in), and from the files of its volume."""
    cfg, hc = attrs["Config"], attrs["HostConfig"]
    nets = attrs["NetworkSettings"]["Networks"]
    (network, ep), = nets.items()
    image_env = set(image["Config"].get("Env") or ())
    image_labels = image["Config"].get("Labels") or {}
    mounts = [m for m in attrs["Mounts"] if m["Type"] != "tmpfs"]
    (home,) = mounts
    assert (home["Type"], home["Destination"], home["RW"]) == ("volume", "/cometbft", True), mounts
    hcheck = cfg["Healthcheck"]
    ports = [{"container_port": int(key.split("/")[0]), "protocol": key.split("/")[1], "host_ip": b["HostIp"],
              "host_port": int(b["HostPort"])} for key, binds in sorted(hc["PortBindings"].items()) for b in binds]
    secret_paths = {f["path"] for f in want_files if f["secret"]}
    handed = []
    for rel, (mode, uid, content) in sorted(files.items()):
        path = "config/" + rel.split("/", 1)[1]
        assert uid == 10001, (path, uid)
        if path in secret_paths:  # key material: never hashed here; the same bytes hcops keeps in its state
            assert content == secrets[path], f"{path} is not the key hcops holds"
            digest = next(f["digest"] for f in want_files if f["path"] == path)
        else:
            digest = _digest(content)
        handed.append({"path": path, "mode": mode, "secret": path in secret_paths, "digest": digest})
    return {
        "node": cfg["Labels"]["hcops.node"],
        "name": attrs["Name"].lstrip("/"),
        "hostname": cfg["Hostname"],
        "image": cfg["Image"],
        "user": cfg["User"],
        "command": cfg["Cmd"],
        "env": dict(e.split("=", 1) for e in cfg.get("Env") or () if e not in image_env),
        "volume": home["Name"],
        "tmpfs": hc.get("Tmpfs") or {},
        "ports": ports,
        "network": network,
        "ipv4_address": ep["IPAMConfig"]["IPv4Address"],
        "aliases": [a for a in ep.get("Aliases") or () if a == cfg["Hostname"]],
        "cap_add": hc.get("CapAdd") or [],
        "cap_drop": hc.get("CapDrop") or [],
        "security_opt": hc.get("SecurityOpt") or [],
        "privileged": hc["Privileged"],
        "read_only": hc["ReadonlyRootfs"],
        "resources": {"memory_bytes": hc["Memory"], "memory_swap_bytes": hc["MemorySwap"],
                      "nano_cpus": hc["NanoCpus"], "pids_limit": hc["PidsLimit"]},
        "restart": hc["RestartPolicy"]["Name"] + (f":{hc['RestartPolicy']['MaximumRetryCount']}"
                                                   if hc["RestartPolicy"]["Name"] == "on-failure" else ""),
        "stop_signal": cfg.get("StopSignal"),
        "healthcheck": {"test": hcheck["Test"], "interval_s": hcheck["Interval"] // SECONDS,
                        "timeout_s": hcheck["Timeout"] // SECONDS, "retries": hcheck["Retries"],
                        "start_period_s": hcheck["StartPeriod"] // SECONDS},
        "log_driver": hc["LogConfig"]["Type"],
        "log_options": hc["LogConfig"]["Config"],
        "files": handed,
        "labels": {k: v for k, v in cfg["Labels"].items() if k not in image_labels},
    }


def secrets_of(plan: NetworkPlan, node: str) -> dict[str, bytes]:
    from hcops.render.context import Context

    return {f"config/{k}": v for k, v in Context(plan).private_files(node).items()}


def test_every_container_is_exactly_the_document_the_gate_judged(docker_engine: Any, applied: TestNetwork) -> None:
    plan, docs = judged(applied)
    assert [d["node"] for d in docs] == [n.name for n in plan.nodes]
    for want in docs:
        c = docker_engine.containers.get(want["name"])
        image = docker_engine.images.get(c.attrs["Image"]).attrs
        live = from_inspect(c.attrs, image, volume_files(c), secrets_of(plan, want["node"]), want["files"])
        differences = {k: (live.get(k), want[k]) for k in sorted(set(want) | set(live)) if live.get(k) != want[k]}
        assert differences == {}, f"{want['name']}: live != judged document: {json.dumps(differences)[:2000]}"


def test_nothing_beyond_the_document_is_granted(docker_engine: Any, applied: TestNetwork) -> None:
    """Engine settings the document does not list keep their unprivileged defaults."""
    _, docs = judged(applied)
    for want in docs:
        hc = docker_engine.containers.get(want["name"]).attrs["HostConfig"]
        assert not hc.get("Devices") and not hc.get("DeviceRequests"), want["name"]
        assert hc.get("PidMode", "") == "" and hc.get("UsernsMode", "") == "" and hc["IpcMode"] in ("private", "")
        assert hc["Binds"] == [f"{want['volume']}:/cometbft:rw"]
        assert hc["NetworkMode"] == want["network"]


def test_the_judged_document_is_what_plan_compares(applied: TestNetwork) -> None:
    """A second plan against the running containers sees no difference: the document is stable."""
    proc = applied.hcops("plan", "--detailed-exitcode")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan, _ = judged(applied)
    assert KeyStore(plan.state_dir).private_files(plan.nodes[0].name)  # the keys the containers were handed
