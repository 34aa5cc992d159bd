"""Backup archives: a node's data folder as a tar, filtered, gzip-compressed and encrypted in one stream;
its manifest (what, from where, which heights, digest); and the way back to a plain tar for a restore.

What is kept: the block store, state, evidence and (if any) tx index databases and the address book,
i.e. everything under ``data/`` except

* ``priv_validator_state.json``: the validator's last signed height/round/step. Restoring an old copy of it
  is exactly how a validator double-signs, so it is never part of a data backup; its height/round/step are
  recorded in the manifest, and a restore derives the state to install from the chain (``safety``).
* ``cs.wal/``: the consensus write-ahead log of the height the node was working on, which holds the node's
  own in-flight votes; replayed on another node or later, it is stale at best. CometBFT starts without one.

The built-in ``kvstore`` app keeps its state in memory (CometBFT 0.38 ``proxy_app = "kvstore"``): nothing
of it is in the data folder, and a restored node rebuilds it by replaying the stored blocks at start-up.
The validator and node keys live under ``config/`` and are never read by a backup; an observer's
throwaway key (``data/hcops-observer-key.json``) is left out like everything not on the allow-list.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from hcops.backup.crypto import CIPHER, ArchiveError, EncryptingWriter, decrypt_chunks, key_id
from hcops.errors import InvalidInput
from hcops.fsutil import existing_file, make_dirs, os_problem

FORMAT = "hcops-backup/1"
ROOT = "data"
STATE_FILE = "priv_validator_state.json"
ADDRBOOK = "addrbook.json"
EXCLUDED = (f"{ROOT}/{STATE_FILE}", f"{ROOT}/cs.wal")  # named in manifests; _kept is the actual rule
NODE_UID = 10001
SUFFIX = ".hcbk"


@dataclass(frozen=True)
class SigningState:
    """A validator's last signed height/round/step (``priv_validator_state.json`` without the signature)."""

    height: int
    round: int
    step: int

    def key(self) -> tuple[int, int, int]:
        return self.height, self.round, self.step

    def __str__(self) -> str:
        return f"{self.height}/{self.round}/{self.step}"

    @classmethod
    def parse(cls, raw: bytes | None) -> SigningState | None:
        if not raw:
            return None
        try:
            doc = json.loads(raw)
            return cls(int(doc.get("height", 0)), int(doc.get("round", 0)), int(doc.get("step", 0)))
        except (ValueError, TypeError, AttributeError):
            return None

    def to_json(self) -> dict[str, int]:
        return {"height": self.height, "round": self.round, "step": self.step}


@dataclass(frozen=True)
class Manifest:
    """What one archive holds; stored beside it (``<id>.json``) and, with its path, in the audit log."""

    id: str
    network: str
    chain_id: str
    node: str
    role: str
    provider: str
    created: str
    base_height: int  # lowest block in the copied store
    height: int  # the node's height when it was stopped (the store holds at least this)
    sha256: str  # of the encrypted archive file
    size: int
    key_id: str
    files: int
    data_bytes: int
    stopped_seconds: float
    signing_state: SigningState | None = None  # the source validator's own, for the record only
    skipped: tuple[str, ...] = ()  # top-level entries of data/ left out (names only)
    format: str = FORMAT
    cipher: str = CIPHER
    compression: str = "gzip"

    def to_json(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc["signing_state"] = self.signing_state.to_json() if self.signing_state else None
        doc["skipped"] = list(self.skipped)
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Manifest:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in doc.items() if k in fields}
        state = doc.get("signing_state")
        values["signing_state"] = SigningState(**state) if isinstance(state, Mapping) else None
        values["skipped"] = tuple(values.get("skipped") or ())
        return cls(**values)


@dataclass(frozen=True)
class Written:
    sha256: str
    size: int
    files: int
    data_bytes: int
    signing_state: SigningState | None
    skipped: tuple[str, ...]


class _Reader:
    """A file-like view of an iterator of byte chunks (the engine's archive stream)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._it)
            except StopIteration:
                break
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out


class _Gzip:
    """gzip (RFC 1952) into a writer, streamed."""

    def __init__(self, out: EncryptingWriter) -> None:
        self._out = out
        self._z = zlib.compressobj(6, zlib.DEFLATED, 31)

    def write(self, data: bytes) -> int:
        self._out.write(self._z.compress(data))
        return len(data)

    def close(self) -> None:
        self._out.write(self._z.flush())


def _kept(name: str) -> str | None:
    """The normalised member name to keep, or None. An allow-list, not a deny-list: ``data/`` itself, the
    address book and the LevelDB folders (``*.db``) with what is in them. Anything else a node or a later
    CometBFT keeps in its data folder (the signing state, the consensus WAL, the throwaway key an observer
    generates there) stays out, so that no key or signing state can ever reach an archive."""
    clean = posixpath.normpath(name.lstrip("/"))
    if clean in (ROOT, f"{ROOT}/{ADDRBOOK}"):
        return clean
    parts = clean.split("/")
    if len(parts) >= 2 and parts[0] == ROOT and parts[1].endswith(".db") and ".." not in parts:
        return clean
    return None


def write_archive(chunks: Iterable[bytes], out: BinaryIO, key: bytes) -> Written:
    """Filter the data folder's tar stream (``data/...`` members), compress and encrypt it into ``out``.
    Only folders and regular files are kept, owned by the node's uid; the signing state is read on the
    way (for the manifest) but not written."""
    enc = EncryptingWriter(out, key)
    gz = _Gzip(enc)
    files = data_bytes = 0
    state: SigningState | None = None
    skipped: set[str] = set()
    reader: Any = _Reader(chunks)  # file-likes of our own: tarfile's stubs want its _Fileobj protocol
    sink: Any = gz
    with tarfile.open(fileobj=reader, mode="r|") as src, \
            tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            if member.name.lstrip("/") == EXCLUDED[0] and member.isfile():
                fh = src.extractfile(member)
                state = SigningState.parse(fh.read(4096) if fh else None)
                skipped.add(EXCLUDED[0])
                continue
            name = _kept(member.name)
            if name is None or not (member.isdir() or member.isfile()):
                skipped.add("/".join(posixpath.normpath(member.name.lstrip("/")).split("/")[:2]))
                continue
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.size = member.type, member.mode & 0o7777, member.mtime, 0
            info.uid = info.gid = NODE_UID
            info.uname = info.gname = "cometbft"
            if member.isfile():
                info.size = member.size
                dst.addfile(info, src.extractfile(member))
                files += 1
                data_bytes += member.size
            else:
                dst.addfile(info)
    gz.close()
    enc.close()
    return Written(enc.sha256.hexdigest(), enc.size, files, data_bytes, state, tuple(sorted(skipped)))


def decrypt_archive(archive: Path, key: bytes, expected_sha256: str, out: IO[bytes]) -> None:
    """Decrypt and decompress ``archive`` into ``out`` (a plain tar of ``data/``): its digest is compared
    with the recorded one first (the clearest message for a damaged file), then every chunk's tag is
    checked while decrypting. Raises :class:`ArchiveError` naming what is wrong."""
    if existing_file(archive) is None:
        raise ArchiveError(f"{archive}: the archive is missing")
    actual = sha256_file(archive)
    if actual != expected_sha256:
        raise ArchiveError(f"{archive}: the archive is damaged: its SHA-256 is {actual}, the audit log "
                           f"recorded {expected_sha256}",
                           hint="restore from another backup (`hcops backup list` shows which verify)")
    z = zlib.decompressobj(31)
    try:
        with open(archive, "rb") as src:
            for plain in decrypt_chunks(src, key):
                out.write(z.decompress(plain))
            out.write(z.flush())
    except zlib.error as exc:
        raise ArchiveError(f"{archive}: the archive's content is not valid gzip ({exc})") from None
    except OSError as exc:
        raise os_problem(exc, archive, "read") from None
    except ArchiveError as exc:
        raise ArchiveError(f"{archive}: {exc.message}") from None
    if not z.eof:
        raise ArchiveError(f"{archive}: the compressed stream is truncated")


def check_tar(path: Path) -> tuple[int, int]:
    """(files, bytes) of a decrypted archive, refusing any member a restore must not write."""
    files = size = 0
    with tarfile.open(path, mode="r:") as tar:
        for m in tar:
            if _kept(m.name) != m.name or not (m.isdir() or m.isfile()):
                raise ArchiveError(f"{path}: unexpected member {m.name!r} (a restore writes data/ only)")
            files += m.isfile()
            size += m.size
    return files, size


def sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise os_problem(exc, path, "read") from None
    return digest.hexdigest()


def destination(folder: Path) -> Path:
    """The archive folder (created 0700 when missing)."""
    make_dirs(folder, private=True)
    if not folder.is_dir():
        raise InvalidInput(f"{folder}: not a folder")
    return folder


def paths(folder: Path, backup_id: str) -> tuple[Path, Path]:
    return folder / f"{backup_id}{SUFFIX}", folder / f"{backup_id}.json"


__all__ = ["Manifest", "SigningState", "Written", "write_archive", "decrypt_archive", "check_tar", "key_id",
           "sha256_file", "destination", "paths", "ArchiveError"]
