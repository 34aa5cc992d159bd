"""Careful file-system primitives for the folders hcops owns: the state folder and rendered output.

The rule they implement: a folder the user names (``--state-dir``, ``HCOPS_STATE_DIR``, ``-o OUT``) may be a
symbolic link, since pointing it at another disk is a legitimate choice; everything hcops creates inside it
is refused when it is a symbolic link, a file where a folder belongs, or (for key material) readable by
others or owned by another user. Refusing rather than following or repairing is what ssh does with its
keys: a link there was put by someone, and a loose mode means the secret may already have been read;
either way the user must look, and hcops cannot tell for them.

Checks are lstat()s on folders plus O_NOFOLLOW opens; between the check and the use someone with write
access to the parent folder could swap an entry, which is why the private folders themselves must be
0700 and owned by the user: then nobody else has that access. Every OS error becomes an
``EnvironmentProblem`` naming the path (exit 2), never a traceback.

This module is at the bottom layer: it imports nothing from hcops but ``hcops.errors``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from hcops.errors import EnvironmentProblem, HcopsError, InvalidInput

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO
_HINTS = {
    errno.ENOSPC: "free some space and run the command again; the files written before were kept",
    errno.EDQUOT: "free some space (disk quota) and run the command again; the files written before were kept",
    errno.EROFS: "the file system is mounted read-only; choose another folder",
    errno.EACCES: "the folder is not writable by you; fix its permissions or choose another folder",
    errno.EPERM: "the folder is not writable by you; fix its permissions or choose another folder",
}


def os_problem(exc: OSError, path: str | Path, action: str) -> HcopsError:
    """The user-facing error for an OS error on ``path``: what failed, the system's reason, what to do."""
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        where = exc.filename if isinstance(exc.filename, str) else path
        return not_a_folder(Path(where)) if exc.errno != errno.EISDIR else InvalidInput(
            f"{where}: is a folder where hcops writes a file", hint="move it aside, then run the command again")
    reason = exc.strerror or exc.__class__.__name__
    return EnvironmentProblem(f"{path}: cannot {action}: {reason}", hint=_HINTS.get(exc.errno or 0))


def not_a_folder(path: Path) -> InvalidInput:
    """A file (or another non-folder) in the way of a folder hcops needs, at ``path`` or above it: the
    message names the one in the way, which is not always the path the system call was given."""
    what = "a file"
    for candidate in (path, *path.parents):
        try:
            st = os.lstat(candidate)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) or (stat.S_ISLNK(st.st_mode) and os.path.isdir(candidate)):
            break
        path = candidate
        what = "a symbolic link to no folder" if stat.S_ISLNK(st.st_mode) else "a file"
    return InvalidInput(f"{path}: is {what}, but hcops needs a folder there",
                        hint="move it aside or choose another folder")


def symlink_refused(path: str | Path) -> InvalidInput:
    return InvalidInput(f"{path}: is a symbolic link; hcops does not follow links inside the folders it "
                        "manages, so that nothing is read or written elsewhere through them",
                        hint="replace the link with the real file or folder (or remove it)")


def make_dirs(path: Path, *, private: bool = True) -> None:
    """A folder the user chose: an existing folder (a link to one is fine), or created with its missing
    parents: 0700 when ``private``, else as the umask says (rendered files are read by other users, such
    as the node containers' own)."""
    if path.is_dir():
        return
    missing: list[Path] = []
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            if not candidate.is_dir():
                raise not_a_folder(candidate)
            break
        missing.append(candidate)
    for folder in reversed(missing):
        _mkdir(folder, private)


def _mkdir(folder: Path, private: bool = True) -> None:
    try:
        os.mkdir(folder, PRIVATE_DIR if private else 0o777)
        if private:
            os.chmod(folder, PRIVATE_DIR)  # mkdir's mode went through the umask
    except FileExistsError:
        if not folder.is_dir():
            raise not_a_folder(folder) from None
    except OSError as exc:
        raise os_problem(exc, folder, "create the folder") from None


def existing_file(path: str | Path) -> os.stat_result | None:
    """What is at ``path``, where hcops is about to write a file: nothing (None) or a regular file;
    a link, a folder or anything else is refused."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise os_problem(exc, path, "look up") from None
    if stat.S_ISLNK(st.st_mode):
        raise symlink_refused(path)
    if stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"{path}: is a folder where hcops writes a file",
                           hint="move it aside, then run the command again")
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput(f"{path}: is not a regular file", hint="move it aside, then run the command again")
    return st


def existing_folder(path: str | Path) -> os.stat_result | None:
    """What is at ``path``, where hcops needs a folder it creates: nothing (None) or a real folder; a
    link (even to a folder) or a file is refused."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise os_problem(exc, path, "look up") from None
    if stat.S_ISLNK(st.st_mode):
        raise symlink_refused(path)
    if not stat.S_ISDIR(st.st_mode):
        raise not_a_folder(Path(path))
    return st


def private_dir(path: Path, *, create: bool = True) -> None:
    """``path`` is a real folder (no link), owned by the user and closed to others (0700): created when
    missing (with its missing parents), refused otherwise. A folder with a loose mode is not repaired:
    its files may already have been read, which only the user can judge."""
    st = existing_folder(path)
    if st is None:
        if not create:
            return
        make_dirs(path.parent)
        _mkdir(path)
        st = existing_folder(path)
    if st is not None:
        _owned_and_closed(path, st, PRIVATE_DIR, "folder")


def _owned_and_closed(path: str | Path, st: os.stat_result, wanted: int, what: str) -> None:
    uid = os.geteuid()
    if st.st_uid != uid:
        raise InvalidInput(f"{path}: {what} is owned by uid {st.st_uid}, not by the user running hcops "
                           f"(uid {uid}); hcops keeps keys only in folders and files of its own user",
                           hint=f"run hcops as uid {st.st_uid}, or if the {what} is yours: chown {uid} {path}")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise InvalidInput(f"{path}: {what} mode {mode:04o} lets other users in; hcops requires {wanted:04o} "
                           f"for key material. Run: chmod {wanted:o} {path}",
                           hint="if others could read it, consider whether the keys were exposed")


def lexists(path: Path) -> bool:
    """Whether anything is at ``path``, a dangling link included (which ``Path.exists`` reports absent)."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise os_problem(exc, path, "look up") from None
    return True


def read_file(path: Path, *, private: bool = False) -> bytes | None:
    """A regular file's bytes, never through a link; None when absent. ``private``: key material, which
    must also be owned by the user and 0600 (or stricter)."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise symlink_refused(path) from None
        raise os_problem(exc, path, "read") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(f"{path}: is not a regular file", hint="move it aside")
        if private:
            _owned_and_closed(path, st, PRIVATE_FILE, "key file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise os_problem(exc, path, "read") from None
    finally:
        os.close(fd)


def write_private(path: Path, content: bytes, *, mode: int = PRIVATE_FILE, replace: bool = True) -> bool:
    """Atomic write into a private folder: a temp file in the same folder, fsync'ed, then renamed over
    ``path`` (``replace``) or linked to it only if nothing is there yet (not ``replace``: keys are never
    overwritten, not even by a concurrent hcops). Returns False when ``replace`` is off and a file won."""
    private_dir(path.parent)
    if existing_file(path) is not None and not replace:
        return False
    tmp = _write_temp(str(path), content, mode, None)
    try:
        if replace:
            os.replace(tmp, path)
        elif not _link_new(tmp, path):
            return False
    except OSError as exc:
        raise os_problem(exc, path, "write") from None
    finally:
        _unlink(tmp)
    _sync_folder(path.parent)
    return True


def _link_new(tmp: str, path: Path) -> bool:
    """``tmp`` becomes ``path`` unless something is there by now (False)."""
    try:
        os.link(tmp, path)  # fails if ``path`` exists, unlike a rename
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        # no hard links on this file system (some FUSE and FAT ones): a rename after one more look,
        # which only a concurrent hcops in the same instant could race
        if existing_file(path) is not None:
            return False
        os.replace(tmp, path)
    return True


def replace_file(path: str, content: bytes, mode: int, owner: int | None = None) -> None:
    """Write ``path`` atomically with exactly ``mode`` (and ``owner``, for uid and gid): a temp file next to
    it, fsync'ed, renamed over it. On any failure the temp file is removed and the previous file is
    left as it was, so a full disk never leaves a truncated or empty file behind. The caller has made
    sure ``path`` is not a link (a rename would replace the link, not write through it, anyway)."""
    tmp = _write_temp(path, content, mode, owner)
    try:
        os.replace(tmp, path)
    except OSError as exc:
        _unlink(tmp)
        raise os_problem(exc, path, "write") from None


def _write_temp(path: str, content: bytes, mode: int, owner: int | None) -> str:
    folder, _, name = path.rpartition("/")
    try:  # mkstemp: O_EXCL and O_NOFOLLOW, mode 0600 from the start, so no byte is ever readable by others
        fd, tmp = tempfile.mkstemp(dir=folder or ".", prefix=f".{name}.", suffix=".tmp")
    except OSError as exc:
        raise os_problem(exc, path, "write") from None
    try:
        if mode != PRIVATE_FILE:
            os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, owner, owner)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException as exc:
        os.close(fd)
        _unlink(tmp)
        if isinstance(exc, OSError):
            raise os_problem(exc, path, "write") from None
        raise
    os.close(fd)
    return tmp


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):  # already renamed, or gone: nothing of ours is left either way
        os.unlink(path)


def _sync_folder(folder: Path) -> None:
    """Make a rename durable; a best effort, since some file systems refuse fsync on folders."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
