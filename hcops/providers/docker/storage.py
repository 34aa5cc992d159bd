"""Encryption at rest of each node's volume, measured on the host of a local Docker engine.

A node's data lives in its named volume: the folder behind it is the volume's ``device`` for a local
bind volume (``--opt type=none --opt o=bind --opt device=DIR``), else its ``Mountpoint``. That folder is
encrypted when

* the filesystem itself encrypts it (fscrypt: ext4, f2fs, ubifs): the folder has an encryption policy,
  read with the ``FS_IOC_GET_ENCRYPTION_POLICY_EX`` ioctl (``FS_IOC_GET_ENCRYPTION_POLICY`` on kernels
  before 5.4, v1 policies only); or
* the block device under its filesystem is dm-crypt (LUKS or plain): ``/sys/dev/block/MAJ:MIN`` is a
  device-mapper device whose ``dm/uuid`` starts with ``CRYPT-``, directly or below another mapping (LVM on
  LUKS); a loop device counts when its backing file lies on encrypted storage.

What is reported is what was found (method, filesystem, device), never key material: an fscrypt policy's
master key identifier is a one-way hash of the key and is not reported either. A remote engine, a volume
driver other than ``local``, or a folder this process cannot open are "not measured" (``encrypted``: null),
not "unencrypted".
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from hcops.plan.desired import NetworkPlan
from hcops.providers.docker.containers import volume_name
from hcops.providers.docker.inventory import Inventory

# linux/fscrypt.h: _IOWR('f', 22, __u8[9]) and _IOW('f', 21, struct fscrypt_policy_v1)
FS_IOC_GET_ENCRYPTION_POLICY_EX = 0xC0096616
FS_IOC_GET_ENCRYPTION_POLICY = 0x400C6615
_POLICY_MAX = 24  # sizeof(struct fscrypt_policy_v2), the larger member of the union
_MODES = {1: "AES-256-XTS", 4: "AES-256-CTS", 5: "AES-128-CBC", 6: "AES-128-CTS", 9: "Adiantum",
          10: "AES-256-HCTR2", 7: "SM4-XTS", 8: "SM4-CTS"}
MAX_DEPTH = 4  # loop devices and stacked mappings followed this deep
SYS_BLOCK = Path("/sys/dev/block")
MOUNTINFO = Path("/proc/self/mountinfo")


@dataclass(frozen=True)
class Mount:
    device: str  # MAJ:MIN
    point: str
    fstype: str
    source: str


def read_mounts(path: Path = MOUNTINFO) -> list[Mount]:
    out = []
    try:
        text = path.read_text()
    except OSError:
        return []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if sep and len(fields) >= 5 and len(tail) >= 2:
            point = re.sub(r"\\([0-7]{3})", lambda o: chr(int(o[1], 8)), fields[4])  # \040 is a space
            out.append(Mount(fields[2], point, tail[0], tail[1]))
    return out


def mount_of(path: Path, mounts: list[Mount]) -> Mount | None:
    """The mount that holds ``path``: the last one (it hides earlier ones) with the longest matching point."""
    text = str(path)
    best: Mount | None = None
    for m in mounts:
        point = m.point.rstrip("/") or "/"
        if (text == point or text.startswith(point + "/") or point == "/") and (
            best is None or len(point) >= len(best.point.rstrip("/") or "/")
        ):
            best = m
    return best


def fscrypt_policy(folder: Path) -> dict[str, Any] | None:
    """The folder's fscrypt policy (version and modes), None when it has none. Raises OSError when the
    filesystem cannot say (no encryption support: ENOTTY/EOPNOTSUPP) or the folder cannot be opened."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        buf = bytearray(struct.pack("=Q", _POLICY_MAX) + bytes(_POLICY_MAX))
        try:
            fcntl.ioctl(fd, FS_IOC_GET_ENCRYPTION_POLICY_EX, buf, True)
            policy = bytes(buf[8:])
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                return None
            if exc.errno != errno.ENOTTY:
                raise
            v1 = bytearray(12)  # a kernel before 5.4: the v1 ioctl (v1 policies only)
            try:
                fcntl.ioctl(fd, FS_IOC_GET_ENCRYPTION_POLICY, v1, True)
            except OSError as old:
                if old.errno == errno.ENODATA:
                    return None
                raise
            policy = bytes(v1)
    finally:
        os.close(fd)
    version = {0: 1, 2: 2}.get(policy[0], policy[0])
    return {"version": version, "contents": _MODES.get(policy[1], str(policy[1])),
            "filenames": _MODES.get(policy[2], str(policy[2]))}


def _sys_device(device: str) -> Path | None:
    link = SYS_BLOCK / device
    return link.resolve() if link.exists() else None


def dm_crypt(device: str, depth: int = 0) -> str | None:
    """The dm-crypt mapping (its name) under block device ``MAJ:MIN``, else None."""
    sysdir = _sys_device(device)
    if sysdir is None or depth > MAX_DEPTH:
        return None
    if (sysdir / "partition").exists():  # a partition: what matters is the device it is part of
        sysdir = sysdir.parent
    uuid = _read(sysdir / "dm" / "uuid")
    if uuid is not None and uuid.startswith("CRYPT-"):
        return _read(sysdir / "dm" / "name") or sysdir.name
    for slave in sorted((sysdir / "slaves").glob("*")) if (sysdir / "slaves").is_dir() else ():
        found = dm_crypt(_read(slave / "dev") or "", depth + 1)
        if found:
            return found
    backing = _read(sysdir / "loop" / "backing_file")
    if backing:
        return _path_crypt(Path(backing), read_mounts(), depth + 1)
    return None


def _path_crypt(path: Path, mounts: list[Mount], depth: int) -> str | None:
    m = mount_of(path, mounts)
    device = _device_of(path, m)
    return dm_crypt(device, depth) if device else None


def _device_of(path: Path, m: Mount | None) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if os.major(st.st_dev) != 0:
        return f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    # btrfs and other anonymous devices: the mount's source device, when it is one
    if m is not None and m.source.startswith("/dev/"):
        try:
            rdev = os.stat(m.source).st_rdev
        except OSError:
            return None
        return f"{os.major(rdev)}:{os.minor(rdev)}" if rdev else None
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def folder_of(attrs: Mapping[str, Any]) -> Path | None:
    """The host folder that holds a volume's data (local driver only)."""
    if attrs.get("Driver") != "local":
        return None
    opts = attrs.get("Options") or {}
    if opts.get("type") == "none" and "bind" in str(opts.get("o", "")).split(",") and opts.get("device"):
        return Path(str(opts["device"]))
    point = attrs.get("Mountpoint")
    return Path(str(point)) if point else None


def measure(folder: Path, mounts: list[Mount], crypt_of: dict[str, str | None] | None = None) -> dict[str, Any]:
    """{"measured", "encrypted", "method", "fstype", "device", "detail"} of one folder on this host.
    ``crypt_of``: the dm-crypt answers of this measurement so far, by device (every volume of a host is
    usually on the same one: its block devices are walked once)."""
    real = folder.resolve()
    m = mount_of(real, mounts)
    device = _device_of(real, m)
    out: dict[str, Any] = {"measured": False, "encrypted": None, "method": None,
                           "fstype": m.fstype if m else None, "device": m.source if m else None}
    if device is None:
        out["detail"] = f"{folder} is not readable on this host"
        return out
    try:
        policy = fscrypt_policy(real)
        fs_note = "no fscrypt policy on the folder"
    except OSError as exc:
        policy = None
        fs_note = ("the filesystem has no encryption support" if exc.errno in (errno.ENOTTY, errno.EOPNOTSUPP)
                   else f"fscrypt policy unreadable ({errno.errorcode.get(exc.errno or 0, exc.errno)})")
    if policy is not None:
        out.update(measured=True, encrypted=True, method="fscrypt",
                   detail=f"fscrypt v{policy['version']} policy ({policy['contents']} contents, "
                          f"{policy['filenames']} names) on {folder}, {out['fstype']} on {out['device']}")
        return out
    if crypt_of is None:
        crypt_of = {}
    if device not in crypt_of:
        crypt_of[device] = dm_crypt(device)
    crypt = crypt_of[device]
    if crypt is not None:
        out.update(measured=True, encrypted=True, method="dm-crypt",
                   detail=f"{out['fstype']} on dm-crypt mapping {crypt}")
        return out
    out.update(measured=True, encrypted=False,
               detail=f"{out['fstype']} on {out['device']}: {fs_note}, no dm-crypt device underneath")
    return out


def node_storage(client: docker.DockerClient, plan: NetworkPlan, inv: Inventory) -> dict[str, dict[str, Any]]:
    """Per node: the volume and whether the storage behind it is encrypted (see the module's notes)."""
    local = str(getattr(client.api, "base_url", "")).startswith("http+docker://")
    mounts = read_mounts() if local else []
    crypt_of: dict[str, str | None] = {}
    out: dict[str, dict[str, Any]] = {}
    for n in plan.nodes:
        name = volume_name(plan.name, n.name)
        vol = inv.volumes.get(name)
        attrs: Mapping[str, Any] = getattr(vol, "attrs", None) or {}
        folder = folder_of(attrs) if vol is not None else None
        base = {"kind": "docker-volume", "volume": name, "driver": attrs.get("Driver"),
                "path": str(folder) if folder else None}
        if vol is None:
            out[n.name] = {**base, "measured": False, "encrypted": None, "detail": "the volume does not exist"}
        elif not local:
            out[n.name] = {**base, "measured": False, "encrypted": None,
                           "detail": "the engine is remote: its host's storage cannot be read from here"}
        elif folder is None:
            out[n.name] = {**base, "measured": False, "encrypted": None,
                           "detail": f"volume driver {attrs.get('Driver')!s} keeps the data out of reach"}
        else:
            out[n.name] = {**base, **measure(folder, mounts, crypt_of)}
    return out
