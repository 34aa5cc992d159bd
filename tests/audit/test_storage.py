"""Encryption-at-rest facts: the Docker volume's folder and mount, dm-crypt found through a sysfs tree
(this test host's kernel has no device-mapper: tests/integration/test_encryption_at_rest.py measures a
real fscrypt folder), and the Kubernetes StorageClass of each node's claim."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from hcops.providers.docker import storage
from hcops.providers.kubernetes import storage as kstorage
from hcops.providers.kubernetes.api import Ref
from hcops.providers.kubernetes.objects import Desired, Live

MOUNTINFO = """\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 0:25 / /var/lib/docker rw shared:5 - btrfs /dev/mapper/data rw
41 22 7:0 / /srv/enc\\040data rw shared:9 - ext4 /dev/loop0 rw
42 41 7:0 /x /srv/enc\\040data/x rw shared:9 - ext4 /dev/loop0 rw
"""


def test_mount_table_and_the_mount_of_a_path(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    mounts = storage.read_mounts(info)
    assert [m.point for m in mounts] == ["/", "/var/lib/docker", "/srv/enc data", "/srv/enc data/x"]
    assert storage.mount_of(Path("/var/lib/docker/volumes/v/_data"), mounts).fstype == "btrfs"  # type: ignore[union-attr]
    assert storage.mount_of(Path("/srv/enc data/x/y"), mounts).point == "/srv/enc data/x"  # type: ignore[union-attr]
    assert storage.mount_of(Path("/home"), mounts).source == "/dev/vda1"  # type: ignore[union-attr]


def test_folder_of_a_volume() -> None:
    bind = {"Driver": "local", "Mountpoint": "/var/lib/docker/volumes/v/_data",
            "Options": {"type": "none", "o": "bind", "device": "/srv/enc/v"}}
    assert storage.folder_of(bind) == Path("/srv/enc/v")
    assert storage.folder_of({"Driver": "local", "Mountpoint": "/var/lib/docker/volumes/v/_data", "Options": None}) \
        == Path("/var/lib/docker/volumes/v/_data")
    assert storage.folder_of({"Driver": "rexray", "Mountpoint": "/x"}) is None


def _dev(root: Path, name: str, dev: str, uuid: str | None = None, slaves: tuple[str, ...] = ()) -> None:
    d = root / "devices" / "virtual" / "block" / name
    (d / "dm").mkdir(parents=True)
    (d / "dev").write_text(dev + "\n")
    if uuid is not None:
        (d / "dm" / "uuid").write_text(uuid + "\n")
        (d / "dm" / "name").write_text(f"{name}-name\n")
    (d / "slaves").mkdir()
    for s in slaves:
        (d / "slaves" / s).symlink_to(root / "devices" / "virtual" / "block" / s)
    link = root / "dev" / "block" / dev
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(d)


def test_dm_crypt_directly_and_under_lvm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _dev(tmp_path, "dm-0", "253:0", "CRYPT-LUKS2-0123456789abcdef-luks")
    _dev(tmp_path, "dm-1", "253:1", "LVM-abcdef", slaves=("dm-0",))
    _dev(tmp_path, "dm-2", "253:2", "LVM-plain")
    monkeypatch.setattr(storage, "SYS_BLOCK", tmp_path / "dev" / "block")
    assert storage.dm_crypt("253:0") == "dm-0-name"
    assert storage.dm_crypt("253:1") == "dm-0-name"  # LVM on LUKS
    assert storage.dm_crypt("253:2") is None and storage.dm_crypt("8:1") is None


def test_a_plain_folder_is_measured_unencrypted(tmp_path: Path) -> None:
    folder = tmp_path / "vol"
    folder.mkdir()
    out = storage.measure(folder, storage.read_mounts())
    assert out["measured"] is True and out["encrypted"] is False and out["method"] is None
    assert "no dm-crypt device" in out["detail"]
    missing = storage.measure(tmp_path / "absent", storage.read_mounts())
    assert missing["measured"] is False and missing["encrypted"] is None


def test_fscrypt_policy_reports_none_for_a_plain_folder(tmp_path: Path) -> None:
    try:
        assert storage.fscrypt_policy(tmp_path) is None
    except OSError as exc:  # a filesystem without encryption support says so instead
        assert exc.errno in (errno.ENOTTY, errno.EOPNOTSUPP)


class FakeKube:
    def __init__(self, objects: dict[Ref, Any], classes: list[Any]) -> None:
        self.objects, self.classes = objects, classes
        self.server = "https://k8s.invalid"

    def get(self, ref: Ref) -> Any:
        if ref.kind == "StorageClass":
            return next((c for c in self.classes if c["metadata"]["name"] == ref.name), None)
        return self.objects.get(ref)

    def list(self, api_version: str, kind: str, namespace: str | None = None, **_: Any) -> list[Any]:
        return list(self.classes)


def _sts(name: str, node: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": "n", "labels": {"hcops.node": node}},
            "spec": {"replicas": 1, "volumeClaimTemplates": [{"metadata": {"name": "home"}}]}}


def _pvc(name: str, storage_class: str | None) -> dict[str, Any]:
    spec = {"storageClassName": storage_class} if storage_class else {}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": "n"},
            "spec": spec}


def test_kubernetes_storage_class_states_encryption_or_not() -> None:
    want = Desired("n", (_sts("a-0", "a-0"), _sts("b-0", "b-0"), _sts("c-0", "c-0")), {},  # type: ignore[arg-type]
                   frozenset({"a-0", "b-0", "c-0"}))
    pvcs = {Ref.of(p): p for p in (_pvc("home-a-0-0", "enc"), _pvc("home-b-0-0", None))}
    classes = [
        {"metadata": {"name": "enc"}, "provisioner": "ebs.csi.aws.com",
         "parameters": {"type": "gp3", "encrypted": "true", "secretName": "never-shown"}},
        {"metadata": {"name": "std", "annotations": {kstorage.DEFAULT_CLASS: "true"}},
         "provisioner": "rancher.io/local-path", "parameters": {}},
    ]
    out = kstorage.node_storage(FakeKube({}, classes), want, Live(pvcs))  # type: ignore[arg-type]
    assert out["a-0"]["encrypted"] is True and out["a-0"]["method"] == "storageclass"
    assert out["a-0"]["parameters"] == {"encrypted": "true", "type": "gp3"}  # never secret names
    assert out["b-0"]["measured"] is True and out["b-0"]["encrypted"] is False
    assert out["b-0"]["storageClass"] == "std" and "states no encryption" in out["b-0"]["detail"]
    assert out["c-0"]["measured"] is False and "does not exist" in out["c-0"]["detail"]
    assert kstorage.states_encryption({"kmsKeyId": "arn:aws:kms:…"}) == "kmsKeyId"
    assert kstorage.states_encryption({"encrypted": "false"}) is None
