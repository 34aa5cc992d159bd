"""The folder the ansible provider runs from: ``<state>/<network>/ansible/`` (private, like the rest of the
state folder).

    inventory/ansible/      the ansible render target (``hcops.render.ansible.tree``), except that each
                            host's key files are read from the state folder's keys/<node>/ (no copy)
    ansible.cfg             so that no ansible.cfg of the working directory or the user applies
    known_hosts             the hosts' SSH keys (connection.hostKeyChecking), unless knownHostsFile
    runs/<ident>/           ansible-runner artifacts, rotated

The playbooks and the cometbft_node role are hcops' own (``templates/ansible``), used where they are.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcops.errors import EnvironmentProblem, InvalidInput
from hcops.fsutil import private_dir, write_private
from hcops.plan.desired import NetworkPlan
from hcops.render.base import Context, templates_dir
from hcops.render.templating import ansible_yaml, yaml_key
from hcops.spec.providers import ansible as ansible_settings

ANSIBLE_CFG = "[defaults]\n# Written by hcops: the settings come from the environment of each run.\n"
BINARY_HINT = "run `scripts/bootstrap cometbft` (it builds $HCOPS_CACHE/bin/cometbft), or set " \
              "spec.provider.ansible.binary"


@dataclass(frozen=True)
class Binary:
    """The CometBFT binary copied to every host: where it is here, its digest and the version it reports."""

    path: Path
    sha256: str
    version: str


def spec_path(plan: NetworkPlan, text: str) -> Path:
    """A path from the spec: "~/" is the user's home; a relative one is relative to the spec's folder."""
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else plan.loaded.spec_file.resolve().parent / path


def find_binary(plan: NetworkPlan) -> Binary:
    settings = plan.consortium.spec.provider.ansible
    if settings.binary is not None:
        path: Path | None = spec_path(plan, settings.binary)
        where = "spec.provider.ansible.binary"
    else:
        cached = plan.settings.cache / "bin" / "cometbft"
        found = shutil.which("cometbft")
        path = cached if cached.is_file() else Path(found) if found else None
        where = "$HCOPS_CACHE/bin/cometbft or PATH"
    if path is None or not path.is_file() or not os.access(path, os.X_OK):
        raise EnvironmentProblem(f"no CometBFT binary to copy to the hosts ({where}: "
                                 f"{path if path else 'not found'})", hint=BINARY_HINT)
    st = path.stat()
    return _describe(str(path), st.st_size, st.st_mtime_ns, plan.consortium.spec.chain.version)


@functools.lru_cache(maxsize=8)
def _describe(path: str, size: int, mtime_ns: int, want: str) -> Binary:
    """Digest and version, once per file version (size and mtime key the cache)."""
    try:
        out = subprocess.run([path, "version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"{path}: cannot run `cometbft version` ({exc})", hint=BINARY_HINT) from None
    version = (out.stdout.strip().splitlines() or [""])[0]
    if out.returncode != 0 or version != want:
        raise EnvironmentProblem(f"{path} reports version {version or '(none)'!r}, the spec says {want} "
                                 "(spec.chain.version)", hint=BINARY_HINT)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return Binary(Path(path), h.hexdigest(), version)


def check_spec(plan: NetworkPlan) -> None:
    """The rules over provider.ansible that need the rest of the spec, at FILE:LINE (exit 2)."""
    problems = list(ansible_settings.check(plan.consortium, plan.loaded.sources))
    if problems:
        raise InvalidInput(f"{plan.loaded.spec_file}: spec.provider.ansible is invalid", problems)
    if plan.consortium.spec.network.rpc.tls:
        raise InvalidInput("spec.network.rpc.tls is not supported by the ansible provider yet",
                           hint="turn TLS off for this network, or terminate TLS in front of the RPC")


def control_dir() -> Path:
    """SSH multiplexing sockets: a short path (a unix socket path has at most 107 bytes), private."""
    folder = Path(tempfile.gettempdir()) / f"hcops-ssh-{os.geteuid()}"
    private_dir(folder)
    return folder


class Workspace:
    def __init__(self, plan: NetworkPlan, binary: Binary | None) -> None:
        self.plan = plan
        self.binary = binary
        self.settings = plan.consortium.spec.provider.ansible
        self.root = plan.state_dir / "ansible"
        self.inventory = self.root / "inventory" / "ansible" / "inventory.yaml"
        self.artifacts = self.root / "runs"
        self.keep_runs = self.settings.keep_runs
        conn = self.settings.connection
        self.known_hosts = (spec_path(plan, conn.known_hosts_file) if conn.known_hosts_file
                            else self.root / "known_hosts")
        self.private_key = spec_path(plan, conn.private_key_file) if conn.private_key_file else None

    @property
    def extravars(self) -> dict[str, Any]:
        return {"hcops_binary_src": str(self.binary.path)} if self.binary else {}

    def extra_vars_file(self, ident: str, values: dict[str, Any]) -> Path:
        """One run's extra variables (``-e @file``), every string tagged ``!unsafe``; the caller removes it.
        A file per run: ``hcops status`` may observe while an apply runs."""
        path = self.root / "vars" / f"{ident}.yaml"
        private_dir(path.parent)
        text = "".join(f"{yaml_key(k)}:{ansible_yaml(v, 2)}\n" for k, v in values.items()) or "{}\n"
        write_private(path, text.encode())
        return path

    def playbook(self, name: str) -> Path:
        return templates_dir(self.plan.settings) / "ansible" / "playbooks" / f"{name}.yml"

    def prepare(self) -> Workspace:
        """Write the inventory (a fresh render) and the settings file; check the SSH key is there."""
        from hcops.render.ansible import tree

        check_spec(self.plan)
        if self.private_key is not None and not self.private_key.is_file():
            raise InvalidInput(f"spec.provider.ansible.connection.privateKeyFile: {self.private_key} does not "
                               "exist", hint="generate it (ssh-keygen -t ed25519) or fix the path")
        private_dir(self.root)
        private_dir(self.artifacts)
        store = self.plan.keystore
        tree(Context(self.plan), keys_src=lambda n: str(store.node_dir(n.name))).write(self.root / "inventory")
        write_private(self.root / "ansible.cfg", ANSIBLE_CFG.encode())
        return self

    def ssh_options(self) -> list[str]:
        """ssh options shared by Ansible and the RPC tunnels: known hosts, batch mode (never a prompt)."""
        conn = self.settings.connection
        opts = ["-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", f"StrictHostKeyChecking={'yes' if conn.host_key_checking == 'strict' else 'accept-new'}",
                "-o", "BatchMode=yes", "-o", f"ConnectTimeout={conn.timeout}", "-o", "ServerAliveInterval=15"]
        if self.private_key is not None:
            opts += ["-o", "IdentitiesOnly=yes"]
        return opts

    def envvars(self, hosts: int) -> dict[str, str]:
        conn = self.settings.connection
        env = {
            "ANSIBLE_CONFIG": str(self.root / "ansible.cfg"),
            "ANSIBLE_ROLES_PATH": str(templates_dir(self.plan.settings) / "ansible" / "roles"),
            "ANSIBLE_HOME": str(self.root / "home"),
            "ANSIBLE_LOCAL_TEMP": str(self.root / "tmp"),
            "ANSIBLE_SSH_ARGS": " ".join([*self.ssh_options(), "-o", "ControlMaster=auto",
                                          "-o", "ControlPersist=120s"]),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir()),
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_TIMEOUT": str(conn.timeout),
            "ANSIBLE_FORKS": str(max(1, min(hosts, 25))),
            "ANSIBLE_GATHERING": "explicit",
            "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "True",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "ANSIBLE_COLLECTIONS_PATH": str(self.root / "home" / "collections"),
        }
        if self.private_key is not None:
            env["ANSIBLE_PRIVATE_KEY_FILE"] = str(self.private_key)
        return env


def host_names(plan: NetworkPlan) -> list[str]:
    return [n.name for n in plan.nodes]
