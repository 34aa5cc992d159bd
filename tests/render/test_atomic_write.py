"""Rendered files are written atomically (temp file in the same folder, fsync, rename) and never through a
symbolic link. A full disk is simulated by an ``os.write`` that fails half-way, as the kernel does."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from hcops.errors import EnvironmentProblem, InvalidInput
from hcops.render.base import MANIFEST, TargetOutput

OLD = {"compose.yaml": "services: {old: {}}\n" * 50, "nodes/a/config.toml": "moniker = \"a\"\n" * 40,
       "nodes/b/config.toml": "moniker = \"b\"\n" * 40}
NEW = {name: text.replace("old", "new").replace("moniker", "moniker2") for name, text in OLD.items()}


def output(files: dict[str, str], key: bytes | None = None) -> TargetOutput:
    out = TargetOutput("docker")
    for path, text in files.items():
        out.text(path, text)
    if key is not None:
        out.private("nodes/a/keys/node_key.json", key)
    return out


def contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def full_disk(monkeypatch: pytest.MonkeyPatch, names: Callable[[str], bool]) -> None:
    """``os.write`` to a (temp) file whose name passes ``names`` writes half, then fails with ENOSPC."""
    real = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        try:
            name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            name = ""
        if names(name):
            real(fd, bytes(data[: max(1, len(data) // 2)]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)


def test_full_disk_on_rerender_keeps_the_previous_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output(OLD).write(tmp_path)
    root = tmp_path / "docker"
    before = contents(root)
    full_disk(monkeypatch, lambda name: "config.toml" in name)
    with pytest.raises(EnvironmentProblem) as info:
        output(NEW).write(tmp_path)
    assert "no space left" in info.value.message.lower() and "config.toml" in info.value.message
    assert info.value.hint and "kept" in info.value.hint
    after = contents(root)
    for name in ("nodes/a/config.toml", "nodes/b/config.toml"):
        assert after[name] == before[name], "a previous file was truncated"
    assert not temp_files(root)


def test_full_disk_on_first_render_leaves_no_empty_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full_disk(monkeypatch, lambda name: "compose.yaml" in name)
    with pytest.raises(EnvironmentProblem, match="No space left"):
        output(OLD).write(tmp_path)
    root = tmp_path / "docker"
    assert not (root / "compose.yaml").exists()
    assert all(p.stat().st_size > 0 for p in root.rglob("*") if p.is_file())
    assert not temp_files(root)


def test_failing_rename_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output(OLD).write(tmp_path)
    before = contents(tmp_path / "docker")

    def replace(src: str, dst: str) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(EnvironmentProblem, match="cannot write: Input/output error"):
        output(NEW).write(tmp_path)
    assert contents(tmp_path / "docker") == before and not temp_files(tmp_path)


def test_every_file_is_fsynced_before_the_rename_with_its_exact_mode(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    old = os.umask(0o077)  # the modes do not depend on it
    try:
        output(OLD, key=b"{}").write(tmp_path)
    finally:
        os.umask(old)
    for name in (*OLD, MANIFEST, "node_key.json"):
        assert any(s.startswith(f".{name.rpartition('/')[2]}.") for s in synced), name
    root = tmp_path / "docker"
    assert stat.S_IMODE((root / "compose.yaml").stat().st_mode) == 0o644
    assert stat.S_IMODE((root / "nodes/a/keys/node_key.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "nodes/a/keys").stat().st_mode) == 0o700


def test_symlinked_output_file_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    key = b'{"not": "a real key"}'
    output(OLD, key=key).write(tmp_path / "out")
    link = tmp_path / "out" / "docker" / "nodes" / "a" / "keys" / "node_key.json"
    os.chmod(link, 0o644)  # a real file with a drifted mode is ours: its mode is repaired in place
    inode = link.stat().st_ino
    output(OLD, key=key).write(tmp_path / "out")
    assert link.stat().st_ino == inode and stat.S_IMODE(link.stat().st_mode) == 0o600
    target = tmp_path / "victim"
    target.write_bytes(key)  # the same bytes: the "unchanged file" path must not chmod through the link
    os.chmod(target, 0o644)
    link.unlink()
    link.symlink_to(target)
    with pytest.raises(InvalidInput, match="symbolic link") as info:
        output(OLD, key=key).write(tmp_path / "out")
    assert str(link) in info.value.message
    assert stat.S_IMODE(target.stat().st_mode) == 0o644 and target.read_bytes() == key and link.is_symlink()


def test_symlinked_output_folder_is_refused_but_the_output_dir_may_be_a_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "real", target_is_directory=True)  # the user's choice
    output(OLD).write(tmp_path / "out")
    assert (tmp_path / "real" / "docker" / "compose.yaml").read_text() == OLD["compose.yaml"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    folder = tmp_path / "out" / "docker" / "nodes" / "b"
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    folder.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InvalidInput, match="symbolic link"):
        output(NEW).write(tmp_path / "out")
    assert list(elsewhere.iterdir()) == [] and stat.S_IMODE(elsewhere.stat().st_mode) == 0o755


def test_folder_where_a_file_belongs_and_file_where_a_folder_belongs(tmp_path: Path) -> None:
    (tmp_path / "a" / "docker" / "compose.yaml").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="is a folder where hcops writes a file"):
        output(OLD).write(tmp_path / "a")
    (tmp_path / "b" / "docker" / "nodes").mkdir(parents=True)
    (tmp_path / "b" / "docker" / "nodes" / "a").write_text("x")
    with pytest.raises(InvalidInput, match="is a file, but hcops needs a folder") as info:
        output(OLD).write(tmp_path / "b")
    assert str(tmp_path / "b" / "docker" / "nodes" / "a") in info.value.message


def test_read_only_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root ignores mode bits, so the read-only folder is simulated where the kernel would refuse."""
    def mkstemp(*args: object, dir: str | None = None, **kwargs: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), dir)

    monkeypatch.setattr("tempfile.mkstemp", mkstemp)
    with pytest.raises(EnvironmentProblem, match="Read-only file system") as info:
        output(OLD).write(tmp_path)
    assert str(tmp_path / "docker") in info.value.message and info.value.hint
