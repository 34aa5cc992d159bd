"""Encryption at rest of backup archives: AES-256-GCM over fixed-size chunks (the STREAM construction of
Hoang, Reyhanitabar, Rogaway and Vizár), so that archives of any size are written and read in bounded memory.

File layout: a header (magic, key id, 7-byte random nonce prefix, chunk size), then frames of
``length (4 bytes, big-endian) || ciphertext+tag``. Chunk *i*'s nonce is ``prefix || i (4 bytes) || last``,
where ``last`` is 1 only for the final chunk, and every chunk authenticates the header as associated
data: reordering, dropping, truncating or appending chunks, or changing one byte anywhere, fails the
tag check of some chunk. The key lives in the network's state folder (``backup.key``, 0600, created once
with the ``hcops.fsutil`` helpers); only its id (a digest prefix) is ever recorded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hcops.errors import InvalidInput
from hcops.fsutil import read_file, write_private

MAGIC = b"HCOPSBK1"
KEY_FILE = "backup.key"
KEY_BYTES = 32
CHUNK = 1 << 20  # plaintext bytes per chunk: 1 MiB keeps memory flat and the tag overhead negligible
_HEADER = struct.Struct(">8s8s7sI")  # magic, key id, nonce prefix, chunk size
_FRAME = struct.Struct(">I")
CIPHER = "AES-256-GCM-STREAM-1MiB"


class ArchiveError(InvalidInput):
    """An archive that cannot be read back: wrong key, corrupted or truncated."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"hcops-backup-key-id" + key).hexdigest()[:16]


def load_key(state_dir: Path, *, create: bool = True) -> bytes:
    """The network's backup key (``<state>/backup.key``), created on first use (never replaced: archives
    written with it must stay readable)."""
    path = state_dir / KEY_FILE
    raw = read_file(path, private=True)
    if raw is None:
        if not create:
            raise InvalidInput(f"{path}: no backup key; the archives cannot be decrypted without it",
                               hint="restore the key file from your key escrow into the state folder")
        write_private(path, base64.b64encode(os.urandom(KEY_BYTES)) + b"\n", replace=False)
        raw = read_file(path, private=True) or b""
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:  # the content is never echoed: it is key material
        raise InvalidInput(f"{path}: not a backup key (expected {KEY_BYTES} bytes, base64)",
                           hint="restore the key file from your key escrow")
    return key


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if last else 0)


class EncryptingWriter:
    """A write-only binary stream that encrypts into ``out`` and keeps the SHA-256 and size of what it
    wrote (the archive's digest is over the ciphertext file, so it can be verified without the key)."""

    def __init__(self, out: BinaryIO, key: bytes, chunk: int = CHUNK) -> None:
        self._out = out
        self._aead = AESGCM(key)
        self._prefix = os.urandom(7)
        self._chunk = chunk
        self._buf = bytearray()
        self._index = 0
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.closed = False
        self._header = _HEADER.pack(MAGIC, bytes.fromhex(key_id(key)), self._prefix, chunk)
        self._emit(self._header)

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self.sha256.update(data)
        self.size += len(data)

    def _seal(self, data: bytes, last: bool) -> None:
        if self._index >= 0xFFFFFFFF:
            raise ValueError("archive too large for one key stream")
        sealed = self._aead.encrypt(_nonce(self._prefix, self._index, last), data, self._header)
        self._emit(_FRAME.pack(len(sealed)) + sealed)
        self._index += 1

    def write(self, data: bytes) -> int:
        self._buf += data
        while len(self._buf) > self._chunk:  # keep the tail: the final chunk must be marked as such
            self._seal(bytes(self._buf[: self._chunk]), last=False)
            del self._buf[: self._chunk]
        return len(data)

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        if not self.closed:
            self._seal(bytes(self._buf), last=True)
            self._buf.clear()
            self.closed = True
            self._out.flush()


def decrypt_chunks(src: BinaryIO, key: bytes, *, digest: hashlib._Hash | None = None) -> Iterator[bytes]:
    """The plaintext of an archive, chunk by chunk; raises :class:`ArchiveError` on any damage. ``digest``
    is updated with every byte read (the caller compares it with the recorded one)."""

    def read(n: int) -> bytes:
        data = src.read(n)
        if digest is not None:
            digest.update(data)
        return data

    header = read(_HEADER.size)
    if len(header) != _HEADER.size:
        raise ArchiveError("not an hcops backup archive (too short)")
    magic, kid, prefix, chunk = _HEADER.unpack(header)
    if magic != MAGIC:
        raise ArchiveError("not an hcops backup archive (unknown format)")
    if kid.hex() != key_id(key):
        raise ArchiveError(f"the archive was encrypted with key {kid.hex()}, not with this network's key "
                           f"{key_id(key)}", )
    aead = AESGCM(key)
    index = 0
    while True:
        frame = read(_FRAME.size)
        if len(frame) != _FRAME.size:
            raise ArchiveError("the archive is truncated (its final chunk is missing)")
        (length,) = _FRAME.unpack(frame)
        if length > chunk + 16:
            raise ArchiveError(f"the archive is corrupted (chunk {index} claims {length} bytes)")
        sealed = read(length)
        if len(sealed) != length:
            raise ArchiveError(f"the archive is truncated (in chunk {index})")
        for last in (False, True):
            try:
                plain = aead.decrypt(_nonce(prefix, index, last), sealed, header)
            except InvalidTag:
                continue
            break
        else:
            raise ArchiveError(f"the archive is corrupted or was altered (chunk {index} fails its "
                               "authentication tag)")
        yield plain
        if last:
            if read(1):
                raise ArchiveError("the archive has data after its final chunk")
            return
        index += 1


def decrypt_to(src: BinaryIO, out: BinaryIO, key: bytes) -> str:
    """Decrypt ``src`` into ``out``; returns the SHA-256 of the archive file as read."""
    digest = hashlib.sha256()
    for plain in decrypt_chunks(src, key, digest=digest):
        out.write(plain)
    return digest.hexdigest()
