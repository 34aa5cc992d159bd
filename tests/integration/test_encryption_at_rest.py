"""Encryption at rest, measured on a real network (fails under CI=true when the host cannot do it).

An ext4 filesystem made with ``-O encrypt`` on a loop device holds a folder with an fscrypt v2 policy
(set with the kernel's ioctls: FS_IOC_ADD_ENCRYPTION_KEY, FS_IOC_SET_ENCRYPTION_POLICY). Every node's
Docker volume is created under hcops' name and labels before ``hcops apply``, as a local bind volume on a
folder inside it; the sweep finds the fscrypt policy behind every volume and the report shows AC-5
verified. The observer's volume is then replaced by a plain one: the sweep names it, and AC-5 is only
declared. dm-crypt is not exercised here: this host's kernel has no device-mapper
(tests/audit/test_storage.py reads a dm-crypt chain from a sysfs tree instead).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcops.spec.loader import load_spec
from tests.integration.requirements import unavailable
from tests.providers import docker_support
from tests.providers.docker_support import TestNetwork

pytestmark = pytest.mark.integration

FS_IOC_ADD_ENCRYPTION_KEY = 0xC0506617  # _IOWR('f', 23, struct fscrypt_add_key_arg)
FS_IOC_SET_ENCRYPTION_POLICY = 0x800C6613  # _IOR('f', 19, struct fscrypt_policy_v1); takes a v2 policy too
KEY_SPEC_TYPE_IDENTIFIER = 2
AES_256_XTS, AES_256_CTS, PAD_16 = 1, 4, 2
OBSERVER = "state-obs-0"
NODE_UID = 10001


def _require() -> None:
    if os.geteuid() != 0:
        unavailable("encryption at rest: needs root (loop devices, mount)")
    if not Path("/sys/fs/ext4/features/encryption").exists():
        unavailable("encryption at rest: the kernel's ext4 has no encryption support")
    for tool in ("losetup", "mkfs.ext4", "mount", "umount"):
        if shutil.which(tool) is None:
            unavailable(f"encryption at rest: {tool} is missing (apt-get install -y e2fsprogs mount)")


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout.strip()


def _encrypt_folder(mount: Path, folder: Path) -> None:
    """Add a random raw key to the filesystem and give ``folder`` (empty) a v2 policy under it."""
    raw = os.urandom(64)
    arg = bytearray(struct.pack("=II32sII32x", KEY_SPEC_TYPE_IDENTIFIER, 0, bytes(32), len(raw), 0) + raw)
    fd = os.open(mount, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, FS_IOC_ADD_ENCRYPTION_KEY, arg, True)
    finally:
        os.close(fd)
    identifier = bytes(arg[8:24])  # the kernel fills in the key's identifier
    policy = struct.pack("=BBBB4x16s", 2, AES_256_XTS, AES_256_CTS, PAD_16, identifier)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, FS_IOC_SET_ENCRYPTION_POLICY, policy)
    finally:
        os.close(fd)


@contextlib.contextmanager
def encrypted_folder(root: Path) -> Iterator[Path]:
    """An fscrypt-encrypted folder on a fresh ext4 loop filesystem; unmounted and detached afterwards."""
    image, mount = root / "disk.img", root / "mnt"
    mount.mkdir(parents=True)
    with image.open("wb") as fh:
        fh.truncate(256 * 2**20)
    _run("mkfs.ext4", "-q", "-F", "-O", "encrypt", str(image))
    loop = _run("losetup", "--find", "--show", str(image))
    mounted = False
    try:
        _run("mount", loop, str(mount))
        mounted = True
        folder = mount / "volumes"
        folder.mkdir()
        _encrypt_folder(mount, folder)
        yield folder
    finally:
        if mounted:
            for _ in range(10):  # the engine may still hold a mount of a volume for a moment
                if subprocess.run(["umount", str(mount)], capture_output=True).returncode == 0:
                    break
                time.sleep(1)
            else:
                subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)


def _labels(net: TestNetwork, node: Any) -> dict[str, str]:
    return {"hcops.managed-by": "hcops", "hcops.network": net.name, "hcops.node": node.name,
            "hcops.org": node.org, "hcops.role": node.role.value}


def _bind_volume(docker_engine: Any, net: TestNetwork, node: Any, folder: Path) -> None:
    """The node's volume, with hcops' name and labels, bound to ``folder`` (owned by the node user)."""
    folder.mkdir()
    os.chown(folder, NODE_UID, NODE_UID)
    folder.chmod(0o700)
    docker_engine.volumes.create(name=f"{net.name}-{node.name}-data", driver="local", labels=_labels(net, node),
                                 driver_opts={"type": "none", "o": "bind", "device": str(folder)})


def _ac5(net: TestNetwork, out: Path) -> dict[str, Any]:
    proc = net.hcops("report", "--format", "json", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    row: dict[str, Any] = next(c for c in json.loads(out.read_text())["controls"] if c["id"] == "AC-5")
    return row


def _storage(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["name"]: n["storage"] for n in doc["nodes"]}


def test_fscrypt_volumes_verify_ac5_and_a_plain_volume_is_declared(
    make_network: Any, docker_engine: Any, tmp_path: Path
) -> None:
    _require()
    net: TestNetwork = make_network("enc")
    nodes = load_spec(net.spec, "test").consortium.nodes
    with encrypted_folder(tmp_path / "fs") as folder:
        try:
            _fscrypt_then_plain(net, docker_engine, nodes, folder, tmp_path)
        finally:
            docker_support.cleanup(docker_engine, net.name)  # before the filesystem under the volumes goes


def _fscrypt_then_plain(net: TestNetwork, docker_engine: Any, nodes: Any, folder: Path, tmp_path: Path) -> None:
    for node in nodes:
        _bind_volume(docker_engine, net, node, folder / node.name)
    net.hcops("apply", "--yes", check=True, timeout=600)

    doc = json.loads(net.hcops("audit", "--format", "json").stdout)
    storage = _storage(doc)
    assert all(s["encrypted"] is True and s["method"] == "fscrypt" for s in storage.values()), storage
    assert "fscrypt v2 policy (AES-256-XTS contents" in storage[OBSERVER]["detail"]
    record = doc["evidence"]["storageEncryption"]
    assert record["measured"] is True and "(fscrypt)" in record["detail"], record
    ac5 = _ac5(net, tmp_path / "verified.json")
    part = next(p for p in ac5["evidenceParts"] if p["part"] == "storage-encryption")
    assert part["evidence"] == "verified", part
    assert (ac5["evidence"], ac5["status"]) == ("verified", "pass"), ac5["evidenceParts"]

    # the observer (it signs nothing, so a fresh data folder is safe) moves to a plain volume
    docker_engine.containers.get(f"{net.name}-{OBSERVER}").remove(force=True)
    docker_engine.volumes.get(f"{net.name}-{OBSERVER}-data").remove(force=True)
    net.hcops("apply", "--yes", check=True, timeout=600)
    doc = json.loads(net.hcops("audit", "--format", "json").stdout)
    storage = _storage(doc)
    assert storage[OBSERVER]["measured"] is True and storage[OBSERVER]["encrypted"] is False
    assert all(s["encrypted"] is True for name, s in storage.items() if name != OBSERVER)
    record = doc["evidence"]["storageEncryption"]
    assert record["measured"] is False and OBSERVER in record["detail"]
    ac5 = _ac5(net, tmp_path / "declared.json")
    part = next(p for p in ac5["evidenceParts"] if p["part"] == "storage-encryption")
    assert part["evidence"] == "declared" and any(OBSERVER in d for d in part["detail"])
    assert (ac5["evidence"], ac5["status"]) == ("declared", "declared")
