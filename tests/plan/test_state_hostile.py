"""The state folder under attack or damaged: links, loose modes, other owners, copied keys, key files of the
wrong shape, files where folders belong, read-only folders and full disks. Every case is an ``HcopsError``
(exit 2) naming the path; nothing is read, written or chmod'ed through a link, and no key is regenerated.

Tests run as root, who ignores mode bits: a read-only folder and a full disk are simulated by making the
system call fail as the kernel would (monkeypatch)."""

from __future__ import annotations

import base64
import errno
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from hcops.errors import EnvironmentProblem, InvalidInput
from hcops.plan.keys import NODE_KEY, PRIV_VALIDATOR_KEY, KeyStore, write_private
from hcops.plan.state import genesis_time
from hcops.providers.state import LOCK_FILE, StateStore, network_lock

OTHER_UID = 12345


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    s = KeyStore(tmp_path / "state" / "net")
    for node in ("a", "b"):
        s.ensure(node)
    return KeyStore(s.root)  # a fresh store, as the next hcops run opens it


def secret(store: KeyStore, node: str, name: str = PRIV_VALIDATOR_KEY) -> str:
    value: str = json.loads((store.node_dir(node) / name).read_text())["priv_key"]["value"]
    return value


def leaks(value: str, error: InvalidInput) -> bool:
    """Whether key material shows in an error; a bare bool, so a failing assert never prints the key."""
    return value in error.message + (error.hint or "")


def victim_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    os.chmod(folder, 0o755)
    (folder / "notes.txt").write_text("mine")
    return folder


# ------------------------------------------------------------------------------------------------ links

def test_symlinked_node_folder_is_neither_chmoded_nor_filled(tmp_path: Path, store: KeyStore) -> None:
    target = victim_dir(tmp_path)
    link = store.node_dir("c")
    link.symlink_to(target, target_is_directory=True)
    with pytest.raises(InvalidInput, match="symbolic link") as info:
        store.ensure("c")
    assert str(link) in info.value.message
    assert mode(target) == 0o755 and [p.name for p in target.iterdir()] == ["notes.txt"]


def test_symlinked_network_folder_is_refused_but_the_state_root_may_be_a_link(tmp_path: Path) -> None:
    (tmp_path / "disk").mkdir()
    (tmp_path / "state").symlink_to(tmp_path / "disk", target_is_directory=True)  # the user's choice
    KeyStore(tmp_path / "state" / "net").ensure("a")
    assert (tmp_path / "disk" / "net" / "keys" / "a" / NODE_KEY).is_file()
    target = victim_dir(tmp_path)
    (tmp_path / "disk" / "net2").symlink_to(target, target_is_directory=True)
    with pytest.raises(InvalidInput, match="symbolic link") as info:
        KeyStore(tmp_path / "state" / "net2").ensure("a")
    assert str(tmp_path / "state" / "net2") in info.value.message
    assert mode(target) == 0o755 and [p.name for p in target.iterdir()] == ["notes.txt"]


def test_dangling_key_link_is_refused_and_not_replaced(tmp_path: Path, store: KeyStore) -> None:
    key = store.node_dir("a") / NODE_KEY
    key.unlink()
    key.symlink_to(tmp_path / "nowhere.json")
    with pytest.raises(InvalidInput, match="symbolic link"):
        store.ensure("a")
    assert key.is_symlink() and not (tmp_path / "nowhere.json").exists()


def test_key_link_to_a_real_key_is_refused(tmp_path: Path, store: KeyStore) -> None:
    key = store.node_dir("b") / PRIV_VALIDATOR_KEY
    shutil.move(key, tmp_path / "moved.json")
    key.symlink_to(tmp_path / "moved.json")
    with pytest.raises(InvalidInput, match="symbolic link"):
        store.public("b")
    with pytest.raises(InvalidInput, match="symbolic link"):
        store.private_files("b")


def test_symlinked_genesis_time_is_not_read(tmp_path: Path, store: KeyStore) -> None:
    write_private(store.root / "genesis_time", b"2026-01-01T00:00:00.123456789Z\n")
    assert genesis_time(store.root) == "2026-01-01T00:00:00.123456789Z"  # a real file is read
    (store.root / "genesis_time").unlink()
    other = tmp_path / "other"
    other.write_text("2020-01-01T00:00:00Z")
    (store.root / "genesis_time").symlink_to(other)
    with pytest.raises(InvalidInput, match="symbolic link"):
        genesis_time(store.root)
    assert other.read_text() == "2020-01-01T00:00:00Z"


def test_symlinked_verified_cache_is_refused(tmp_path: Path, store: KeyStore) -> None:
    (tmp_path / "digests.json").write_text("[]")
    (store.root / "keys" / KeyStore.VERIFIED).unlink(missing_ok=True)
    (store.root / "keys" / KeyStore.VERIFIED).symlink_to(tmp_path / "digests.json")
    with pytest.raises(InvalidInput, match="symbolic link"):
        store.public("a")


def test_removing_a_symlinked_node_folder_leaves_its_target(tmp_path: Path, store: KeyStore) -> None:
    target = victim_dir(tmp_path)
    store.node_dir("c").symlink_to(target, target_is_directory=True)
    with pytest.raises(InvalidInput, match="symbolic link"):
        store.remove("c")
    assert (target / "notes.txt").exists()


def test_state_file_and_lock_links_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "net"
    folder.mkdir(mode=0o700)
    (tmp_path / "victim").write_text("keep me")
    (folder / "state.json").symlink_to(tmp_path / "victim")
    with pytest.raises(InvalidInput, match="symbolic link"):
        StateStore(folder).load("net", "docker")
    (folder / LOCK_FILE).symlink_to(tmp_path / "victim")
    with pytest.raises(InvalidInput, match="symbolic link"), network_lock(folder, "net"):
        pass
    assert (tmp_path / "victim").read_text() == "keep me"


# ------------------------------------------------------------------------------------ modes and owners

@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o660])
def test_readable_key_file_is_refused_with_the_chmod_to_run(store: KeyStore, loose: int) -> None:
    key = store.node_dir("a") / PRIV_VALIDATOR_KEY
    os.chmod(key, loose)
    with pytest.raises(InvalidInput) as info:
        store.ensure("a")
    assert f"chmod 600 {key}" in info.value.message
    leaked = leaks(secret(store, "a"), info.value)
    assert not leaked
    assert mode(key) == loose  # refused, not repaired behind the user's back


def test_key_file_of_another_user_is_refused(store: KeyStore) -> None:
    key = store.node_dir("b") / NODE_KEY
    os.chown(key, OTHER_UID, OTHER_UID)
    with pytest.raises(InvalidInput, match=f"uid {OTHER_UID}") as info:
        store.public("b")
    assert str(key) in info.value.message
    with pytest.raises(InvalidInput, match=f"uid {OTHER_UID}"):
        store.private_files("b")


@pytest.mark.parametrize("level", ["network", "keys", "node"])
def test_open_folder_is_refused_with_the_chmod_to_run(store: KeyStore, level: str) -> None:
    folder = {"network": store.root, "keys": store.root / "keys", "node": store.node_dir("a")}[level]
    os.chmod(folder, 0o750)
    with pytest.raises(InvalidInput) as info:
        store.ensure("a")
    assert f"chmod 700 {folder}" in info.value.message and mode(folder) == 0o750


def test_folder_of_another_user_is_refused(store: KeyStore) -> None:
    os.chown(store.node_dir("a"), OTHER_UID, OTHER_UID)
    with pytest.raises(InvalidInput, match=f"uid {OTHER_UID}"):
        store.ensure("a")


# ------------------------------------------------------------------------------------- duplicate keys

@pytest.mark.parametrize("name,kind", [(PRIV_VALIDATOR_KEY, "validator key"), (NODE_KEY, "node key")])
def test_copied_key_is_refused_naming_both_nodes(store: KeyStore, name: str, kind: str) -> None:
    shutil.copy2(store.node_dir("a") / name, store.node_dir("b") / name)
    assert store.ensure("a") == store.ensure("a")  # the same node twice is no duplicate
    with pytest.raises(InvalidInput, match=f"nodes a and b have the same {kind}") as info:
        store.ensure("b")
    leaked = leaks(secret(store, "a", name), info.value)
    assert not leaked


# ------------------------------------------------------------------------------------- key JSON shape

def _shapes(doc: dict[str, object]) -> dict[str, tuple[object, str]]:
    priv = doc["priv_key"]
    assert isinstance(priv, dict)
    pub = "tendermint/PubKeyEd25519"
    other = base64.b64encode(bytes(32)).decode()
    return {
        "list": ([], "expected a JSON object"),
        "string": ("key", "expected a JSON object"),
        "priv_key a number": ({**doc, "priv_key": 5}, "priv_key: expected an object"),
        "no priv_key": ({k: v for k, v in doc.items() if k != "priv_key"}, "priv_key: expected an object"),
        "secp256k1": ({**doc, "priv_key": {**priv, "type": "tendermint/PrivKeySecp256k1"}},
                      'priv_key.type: expected "tendermint/PrivKeyEd25519"'),
        "value a list": ({**doc, "priv_key": {**priv, "value": []}}, "priv_key.value: expected a base64 string"),
        "short priv_key": ({**doc, "priv_key": {**priv, "value": "AAAA"}}, "expected a CometBFT ed25519"),
        "short pub_key": ({**doc, "pub_key": {"type": pub, "value": "AAAA"}}, "got 3 bytes"),
        "pub_key not base64": ({**doc, "pub_key": {"type": pub, "value": "%%%"}}, "not base64"),
        "another pub_key": ({**doc, "pub_key": {"type": pub, "value": other}}, "not the public half"),
        "no address": ({k: v for k, v in doc.items() if k != "address"}, "address: expected"),
        "wrong address": ({**doc, "address": "00" * 20}, "address: expected"),
    }


CASES = ["list", "string", "priv_key a number", "no priv_key", "secp256k1", "value a list", "short priv_key",
         "short pub_key", "pub_key not base64", "another pub_key", "no address", "wrong address"]


@pytest.mark.parametrize("case", CASES)
def test_validator_key_of_the_wrong_shape(store: KeyStore, case: str) -> None:
    key = store.node_dir("a") / PRIV_VALIDATOR_KEY
    value = secret(store, "a")
    shape, expected = _shapes(json.loads(key.read_text()))[case]
    key.write_text(json.dumps(shape))
    with pytest.raises(InvalidInput) as info:
        KeyStore(store.root).ensure("a")
    assert info.value.message.startswith(f"{key}: ") and expected in info.value.message
    leaked = leaks(value, info.value)
    assert not leaked


def test_node_key_of_the_wrong_shape(store: KeyStore) -> None:
    key = store.node_dir("b") / NODE_KEY
    key.write_text(json.dumps({"priv_key": {"type": "tendermint/PrivKeyEd25519"}}))
    with pytest.raises(InvalidInput, match="priv_key.value: expected a base64 string, got null"):
        store.public("b")


@pytest.mark.parametrize("text", ["", "now", "2026-13-45T00:00:00Z", "2026-01-01 00:00:00", "-----BEGIN"])
def test_malformed_genesis_time_is_refused_without_echoing_it(store: KeyStore, text: str) -> None:
    write_private(store.root / "genesis_time", text.encode())
    with pytest.raises(InvalidInput, match="genesis time") as info:
        genesis_time(store.root)
    assert (not text or text not in info.value.message) and str(store.root / "genesis_time") in info.value.message


def test_state_file_of_the_wrong_shape(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "net")
    write_private(store.path, b"5")  # JSON, but not an object
    with pytest.raises(EnvironmentProblem, match="unreadable state file"):
        store.load("net", "docker")


# ------------------------------------------------------------------ files in the way, read-only, full disk

@pytest.mark.parametrize("where", ["network", "keys", "node"])
def test_file_where_a_folder_belongs(tmp_path: Path, where: str) -> None:
    root = tmp_path / "state" / "net"
    blocker = {"network": root, "keys": root / "keys", "node": root / "keys" / "a"}[where]
    blocker.parent.mkdir(parents=True, exist_ok=True)
    for folder in (root, root / "keys"):
        if folder.is_dir():
            os.chmod(folder, 0o700)
    blocker.write_text("x")
    with pytest.raises(InvalidInput, match="is a file, but hcops needs a folder") as info:
        KeyStore(root).ensure("a")
    assert str(blocker) in info.value.message


def test_state_root_below_a_file(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(InvalidInput, match="is a file") as info:
        KeyStore(tmp_path / "blocker" / "state" / "net").ensure("a")
    assert str(tmp_path / "blocker") in info.value.message


def test_read_only_state_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def mkdir(path: object, mode: int = 0o777, **kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(EnvironmentProblem, match="Read-only file system") as info:
        KeyStore(tmp_path / "net").ensure("a")
    assert str(tmp_path / "net") in info.value.message and info.value.hint


def test_unwritable_key_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def mkstemp(*args: object, dir: str | None = None, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), dir)

    monkeypatch.setattr("tempfile.mkstemp", mkstemp)
    with pytest.raises(EnvironmentProblem, match="Permission denied") as info:
        KeyStore(tmp_path / "net").ensure("a")
    assert str(tmp_path / "net" / "keys" / "a") in info.value.message


def test_full_disk_while_writing_a_key_leaves_no_partial_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        real(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(EnvironmentProblem, match="No space left on device"):
        KeyStore(tmp_path / "net").ensure("a")
    monkeypatch.undo()
    assert list((tmp_path / "net" / "keys" / "a").iterdir()) == []  # no half key, no temp file
    KeyStore(tmp_path / "net").ensure("a")  # and the next run, with space, makes a whole one


def test_a_key_that_appears_meanwhile_is_never_overwritten(tmp_path: Path) -> None:
    key = tmp_path / "net" / "keys" / "a" / NODE_KEY
    assert write_private(key, b"first", replace=False)
    assert not write_private(key, b"second", replace=False)
    assert key.read_bytes() == b"first" and mode(key) == 0o600
    assert [p.name for p in key.parent.iterdir()] == [NODE_KEY]

