"""Real hosts for the ansible provider's tests: containers of the image ``scripts/bootstrap testhost`` builds
(Debian bookworm from Debian's packages, systemd as PID 1, sshd), on a Docker network of their own, reached
over SSH with a key made here. Nothing is mocked: Ansible logs in over SSH, sudo, systemd, nftables and
CometBFT are the real ones.

Docker here runs cgroup v1 with the cgroupfs driver: systemd runs as PID 1 with /run and /run/lock as
tmpfs, the host's cgroup tree mounted read-only, and CAP_SYS_ADMIN (mount namespaces for the units'
sandboxing: ProtectSystem, PrivateTmp, ...) plus CAP_NET_ADMIN (nftables); not privileged.

``shared_hosts(5)`` is made once per test session (the contract test and the integration module share it)
and removed at the end; between networks ``reset`` wipes whatever a network left on the hosts.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import shlex
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.requirements import unavailable
from tests.providers import docker_support

IMAGE = "hcops/testhost:bookworm"
LOGIN = "ops"  # the image's login user, with passwordless sudo
LABEL = "hcops.test.hosts"
BOOT_TIMEOUT = 120.0


def _engine() -> Any:
    try:
        import docker

        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        unavailable(f"no Docker engine ({exc.__class__.__name__}); run `scripts/bootstrap docker`")
        raise AssertionError("unreachable") from None
    try:
        client.images.get(IMAGE)
    except Exception:  # noqa: BLE001
        unavailable(f"the test host image {IMAGE} is missing; run `scripts/bootstrap testhost`")
    for tool in ("ssh", "ssh-keygen"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0:
            unavailable(f"{tool} (OpenSSH client) is missing; apt-get install openssh-client")
    try:
        import ansible_runner  # noqa: F401
    except ImportError:
        unavailable("ansible-runner is not installed; run `scripts/bootstrap python`")
    return client


@dataclass
class Host:
    name: str
    container: Any
    address: str

    def sh(self, script: str, *, check: bool = True) -> str:
        """Run a shell script on the host as root (docker exec: the tests' own look, not hcops')."""
        code, out = self.container.exec_run(["sh", "-c", script], demux=False)
        text = (out or b"").decode("utf-8", "replace")
        if check and code != 0:
            raise AssertionError(f"{self.name}: `{script}` exited {code}: {text}")
        return text


@dataclass
class Hosts:
    client: Any
    network: Any
    key: Path  # the SSH private key (its .pub is in every host's authorized_keys)
    hosts: list[Host] = field(default_factory=list)

    def remove(self) -> None:
        for h in self.hosts:
            with contextlib.suppress(Exception):
                h.container.remove(force=True, v=True)
        with contextlib.suppress(Exception):
            self.network.remove()
        with contextlib.suppress(Exception):
            for f in (self.key, self.key.with_suffix(".pub")):
                f.unlink(missing_ok=True)
            self.key.parent.rmdir()

    def ssh_ok(self, host: Host) -> bool:
        cmd = ["ssh", "-i", str(self.key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
               "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=3", "-o", "LogLevel=ERROR",
               f"{LOGIN}@{host.address}", "sudo -n systemctl is-system-running --wait >/dev/null; true"]
        return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0

    def wait_ssh(self, hosts: list[Host] | None = None, timeout: float = BOOT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        for h in hosts or self.hosts:
            while not self.ssh_ok(h):
                if time.monotonic() > deadline:
                    logs = h.container.logs(tail=20).decode("utf-8", "replace")
                    raise AssertionError(f"{h.name}: sshd did not answer within {timeout:g} s\n{logs}")
                time.sleep(1)

    def restart(self, host: Host) -> None:
        """A reboot: the container stops (systemd shuts down) and boots again."""
        host.container.restart(timeout=30)
        self.wait_ssh([host])


def _authorized_keys(public: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("authorized_keys")
        info.size, info.mode, info.uid, info.gid = len(public), 0o600, 1000, 1000
        tar.addfile(info, io.BytesIO(public))
    return buf.getvalue()


def start_hosts(count: int, tag: str = "hosts") -> Hosts:
    """``count`` fresh hosts on a network of their own, booted and answering SSH."""
    client = _engine()
    folder = Path(tempfile.mkdtemp(prefix="hcops-hosts-"))
    key = folder / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hcops-tests", "-f", str(key)], check=True)
    name = docker_support.unique_name(tag)
    from docker.types import IPAMConfig, IPAMPool

    network = client.networks.create(name, driver="bridge", labels={LABEL: name},
                                      ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=docker_support.free_subnet(client))]))
    hosts = Hosts(client, network, key)
    try:
        for i in range(count):
            c = client.containers.create(
                IMAGE, name=f"{name}-{i}", hostname=f"host{i}", detach=True, labels={LABEL: name},
                network=name, tmpfs={"/run": "rw", "/run/lock": "rw"},
                volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "ro"}},
                cap_add=["SYS_ADMIN", "NET_ADMIN"], stop_signal="SIGRTMIN+3", environment={"container": "docker"})
            c.put_archive(f"/home/{LOGIN}/.ssh", _authorized_keys(key.with_suffix(".pub").read_bytes()))
            c.start()
            c.reload()
            address = c.attrs["NetworkSettings"]["Networks"][name]["IPAddress"]
            hosts.hosts.append(Host(f"host{i}", c, address))
        hosts.wait_ssh()
    except BaseException:
        hosts.remove()
        raise
    return hosts


_SHARED: dict[int, Hosts] = {}


def shared_hosts(count: int) -> Hosts:
    """Hosts shared by the tests of this session (removed when the process exits)."""
    found = _SHARED.get(count)
    if found is None:
        found = _SHARED[count] = start_hosts(count, f"hosts{count}")
        atexit.register(found.remove)
    for h in found.hosts:
        h.container.reload()
        if h.container.status != "running":
            h.container.start()
            found.wait_ssh([h])
    return found


def reset(hosts: Hosts) -> None:
    """Remove everything any hcops network put on the hosts (units, firewall tables, data, users)."""
    script = """
set -u
for u in $(systemctl list-unit-files 'cometbft-*' --no-legend 2>/dev/null | awk '{print $1}'); do
  systemctl disable --now "$u" >/dev/null 2>&1
  rm -f "/etc/systemd/system/$u"
done
systemctl daemon-reload
for t in $(nft -j list tables 2>/dev/null | python3 -c 'import json,sys
print(" ".join(o["table"]["name"] for o in json.load(sys.stdin)["nftables"] if "table" in o and o["table"]["name"].startswith("hcops_")))'); do
  nft delete table inet "$t"
done
rm -rf /etc/hcops /usr/local/lib/hcops /var/lib/cometbft*
id cometbft >/dev/null 2>&1 && userdel cometbft
getent group cometbft >/dev/null && groupdel cometbft
true
"""
    for h in hosts.hosts:
        h.sh(script)


def leftovers(hosts: Hosts, network: str, home: str = "/var/lib/cometbft") -> list[str]:
    """What a destroyed (and pruned) network left behind on the hosts."""
    table = "hcops_" + network.replace("-", "_")
    checks = {
        "unit": f"test -e /etc/systemd/system/cometbft-{network}.service",
        "firewall unit": f"test -e /etc/systemd/system/cometbft-{network}-firewall.service",
        "firewall table": f"nft list table inet {table} >/dev/null 2>&1",
        "rules file": f"test -e /etc/hcops/{network}.nft",
        "binary": f"test -e /usr/local/lib/hcops/{network}",
        "home": f"test -e {shlex.quote(home)}",
        "user": "id cometbft >/dev/null 2>&1",
    }
    out = []
    for h in hosts.hosts:
        for what, test in checks.items():
            if h.sh(f"{test} && echo yes || echo no").strip() == "yes":
                out.append(f"{h.name}: {what}")
    return out


@dataclass
class HostNetwork(docker_support.TestNetwork):
    """The example consortium on hosts: an overlay (environments/test.yaml) that names the ansible provider,
    the hosts' addresses and the SSH key."""

    hosts: Hosts | None = None
    extra: tuple[str, ...] = ()

    def write(self, **extra: str) -> None:
        assert self.hosts is not None
        self.root.mkdir(parents=True, exist_ok=True)
        spec = docker_support.EXAMPLE.read_text()
        self.spec.write_text(spec)
        env = self.root / "environments"
        env.mkdir(exist_ok=True)
        from hcops.spec.loader import load_spec

        nodes = [n.name for n in load_spec(docker_support.EXAMPLE).consortium.nodes]
        if len(nodes) > len(self.hosts.hosts):
            raise AssertionError(f"{len(nodes)} nodes need as many hosts, got {len(self.hosts.hosts)}")
        lines = [f"metadata: {{name: {self.name}}}", "spec:", "  tier: development",
                 f"  chain: {{blockInterval: {self.block_interval}}}",
                 "  defaults: {resources: {cpu: 500m, memory: 512Mi}}",
                 *self.extra,
                 "  provider:", "    type: ansible", "    ansible:",
                 f"      connection: {{user: {LOGIN}, privateKeyFile: {self.hosts.key}}}",
                 "      hosts:"]
        lines += [f"        {n}: {{address: {h.address}}}" for n, h in zip(nodes, self.hosts.hosts, strict=False)]
        lines += list(extra.values())
        (env / "test.yaml").write_text("\n".join(lines) + "\n")

    def host(self, node: str) -> Host:
        assert self.hosts is not None
        from hcops.spec.loader import load_spec

        nodes = [n.name for n in load_spec(docker_support.EXAMPLE).consortium.nodes]
        return self.hosts.hosts[nodes.index(node)]


def host_network(hosts: Hosts, root: Path, tag: str, *extra: str) -> HostNetwork:
    net = HostNetwork(root=root, name=docker_support.unique_name(tag), port_base=0, subnet="", hosts=hosts,
                      extra=extra)
    net.write()
    return net


def environ() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200"}
