"""Archives: streamed AES-GCM encryption that catches any damage, the data allow-list (no key, no signing
state, no WAL), and the key file's rules."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from hcops.backup import archive, crypto
from hcops.backup.archive import SigningState
from hcops.errors import InvalidInput

KEY = bytes(range(32))


def _encrypt(data: bytes, chunk: int = 1000) -> bytes:
    out = io.BytesIO()
    w = crypto.EncryptingWriter(out, KEY, chunk=chunk)
    for i in range(0, len(data), 333):
        w.write(data[i:i + 333])
    w.close()
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 5000])
def test_round_trip_across_chunk_boundaries(size: int) -> None:
    data = os.urandom(size)
    blob = _encrypt(data)
    assert b"".join(crypto.decrypt_chunks(io.BytesIO(blob), KEY)) == data


def test_any_flipped_byte_truncation_or_extra_data_is_refused() -> None:
    blob = _encrypt(os.urandom(3000))
    for pos in (0, 10, len(blob) // 2, len(blob) - 1):
        bad = bytearray(blob)
        bad[pos] ^= 1
        with pytest.raises(crypto.ArchiveError):
            b"".join(crypto.decrypt_chunks(io.BytesIO(bytes(bad)), KEY))
    for broken in (blob[:-20], blob[: len(blob) // 2], blob + b"x"):
        with pytest.raises(crypto.ArchiveError):
            b"".join(crypto.decrypt_chunks(io.BytesIO(broken), KEY))


def test_dropping_the_last_chunk_is_refused() -> None:
    blob = _encrypt(os.urandom(2500))  # three chunks: 1000, 1000, 500 (the last one marked final)
    header = 27
    frames, pos = [], header
    while pos < len(blob):
        n = int.from_bytes(blob[pos:pos + 4], "big")
        frames.append(blob[pos:pos + 4 + n])
        pos += 4 + n
    assert len(frames) == 3
    with pytest.raises(crypto.ArchiveError, match="truncated"):
        b"".join(crypto.decrypt_chunks(io.BytesIO(blob[:header] + b"".join(frames[:2])), KEY))
    with pytest.raises(crypto.ArchiveError):  # reordered chunks fail their nonce
        b"".join(crypto.decrypt_chunks(io.BytesIO(blob[:header] + frames[1] + frames[0] + frames[2]), KEY))


def test_wrong_key_is_named_by_id_only() -> None:
    blob = _encrypt(b"data")
    other = bytes(32)
    with pytest.raises(crypto.ArchiveError) as info:
        b"".join(crypto.decrypt_chunks(io.BytesIO(blob), other))
    assert crypto.key_id(KEY) in info.value.message and KEY.hex() not in info.value.message


def test_key_is_created_once_private_and_never_replaced(tmp_path: Path) -> None:
    state = tmp_path / "net"
    key = crypto.load_key(state)
    path = state / crypto.KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600 and state.stat().st_mode & 0o777 == 0o700
    assert crypto.load_key(state) == key
    os.chmod(path, 0o644)
    with pytest.raises(InvalidInput, match="0600"):
        crypto.load_key(state)
    os.chmod(path, 0o600)
    path.write_bytes(b"c2VjcmV0LXZhbHVl\n")
    with pytest.raises(InvalidInput) as info:
        crypto.load_key(state)
    assert "c2VjcmV0" not in info.value.message  # key material is never echoed
    with pytest.raises(InvalidInput) as info:
        crypto.load_key(tmp_path / "other", create=False)
    assert "escrow" in (info.value.hint or "")


def _node_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name: str, content: bytes | None, mode: int = 0o600) -> None:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        add("data", None, 0o700)
        add("data/blockstore.db", None, 0o755)
        add("data/blockstore.db/000001.log", b"blocks" * 100)
        add("data/state.db", None, 0o755)
        add("data/state.db/CURRENT", b"MANIFEST-000000\n")
        add("data/addrbook.json", b"{}")
        add("data/priv_validator_state.json", json.dumps({"height": "42", "round": 1, "step": 3,
                                                          "signature": "c2ln"}).encode())
        add("data/hcops-observer-key.json", b'{"priv_key": {"value": "SECRET"}}')
        add("data/cs.wal", None, 0o700)
        add("data/cs.wal/wal", b"votes")
        link = tarfile.TarInfo("data/state.db/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    return buf.getvalue()


def test_archive_keeps_the_chain_data_only(tmp_path: Path) -> None:
    out = io.BytesIO()
    w = archive.write_archive([_node_tar()[i:i + 700] for i in range(0, len(_node_tar()), 700)], out, KEY)
    assert w.signing_state == SigningState(42, 1, 3)
    assert w.skipped == ("data/cs.wal", "data/hcops-observer-key.json", "data/priv_validator_state.json",
                         "data/state.db")  # the link inside state.db is not a file or folder
    path = tmp_path / "a.hcbk"
    path.write_bytes(out.getvalue())
    assert archive.sha256_file(path) == w.sha256 and path.stat().st_size == w.size
    assert b"SECRET" not in path.read_bytes()
    plain = io.BytesIO()
    archive.decrypt_archive(path, KEY, w.sha256, plain)
    tar_path = tmp_path / "data.tar"
    tar_path.write_bytes(plain.getvalue())
    assert archive.check_tar(tar_path) == (w.files, w.data_bytes)
    with tarfile.open(tar_path) as tar:
        names = tar.getnames()
        assert names == ["data", "data/blockstore.db", "data/blockstore.db/000001.log", "data/state.db",
                         "data/state.db/CURRENT", "data/addrbook.json"]
        assert {m.uid for m in tar.getmembers()} == {10001}
    assert b"SECRET" not in plain.getvalue() and b"votes" not in plain.getvalue()


def test_damaged_archive_names_both_digests(tmp_path: Path) -> None:
    out = io.BytesIO()
    w = archive.write_archive([_node_tar()], out, KEY)
    path = tmp_path / "a.hcbk"
    data = bytearray(out.getvalue())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(crypto.ArchiveError) as info:
        archive.decrypt_archive(path, KEY, w.sha256, io.BytesIO())
    assert "damaged" in info.value.message and w.sha256 in info.value.message
    with pytest.raises(crypto.ArchiveError, match="missing"):
        archive.decrypt_archive(tmp_path / "gone.hcbk", KEY, w.sha256, io.BytesIO())


def test_restore_refuses_a_tar_reaching_outside_data(tmp_path: Path) -> None:
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("data/../config/priv_validator_key.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(crypto.ArchiveError, match="unexpected member"):
        archive.check_tar(path)


def test_manifest_round_trip() -> None:
    m = archive.Manifest(id="x", network="n", chain_id="c", node="v", role="validator", provider="docker",
                         created="t", base_height=1, height=9, sha256="ab", size=3, key_id="k", files=2,
                         data_bytes=5, stopped_seconds=0.5, signing_state=SigningState(9, 0, 3), skipped=("data/x",))
    assert archive.Manifest.from_json(json.loads(json.dumps(m.to_json()))) == m
