"""What every target shares: the templates, the YAML-safe filters, and writing the files of a render."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import stat
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hcops.fsutil import existing_file, existing_folder, make_dirs, os_problem, read_file, replace_file
from hcops.render.context import Context, digest  # noqa: F401 (re-exported: render modules import them here)
from hcops.settings import TEMPLATES_DIR, Settings, resolve

if TYPE_CHECKING:
    import jinja2

TEMPLATES_ENV = TEMPLATES_DIR
NODE_UID = 10001  # the node image's user (images/cometbft)
WRITERS = 4
MANIFEST = ".hcops-files"  # per target: the files of the last render, so that stale ones can be removed

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
# Plain scalars that YAML 1.1 readers (PyYAML, go-yaml v2) turn into booleans or null.
_YAML11_SPECIAL = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null"])
_BLOCK_SAFE = re.compile(r"[^ \n][\x20-\x7e\n]*")
_SIMPLE_STRING = re.compile(r'[ !#-\[\]-~]*')  # printable ASCII but '"' and '\\': the same in JSON and YAML
_KEYS: dict[str, str] = {}
_STRINGS: dict[str, str] = {}
_UMASK_LOCK = threading.Lock()
_SURROGATES = re.compile(r"(\\\\)|\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def templates_dir(settings: Settings | None = None) -> Path:
    return resolve(settings).templates


# ----------------------------------------------------------------------------------------------- filters

def _yaml_json(value: Any) -> str:
    """JSON with only printable ASCII, read the same by YAML: DEL escaped, and characters beyond the BMP as
    YAML's \\U escape rather than a JSON surrogate pair (which YAML readers would keep as two characters)."""
    text = json.dumps(value, ensure_ascii=True).replace("\x7f", "\\u007f")
    if "\\ud" in text:
        text = _SURROGATES.sub(_astral, text)
    return text


def _astral(m: re.Match[str]) -> str:
    if m.group(1):
        return m.group(1)  # an escaped backslash, kept as it is
    point = 0x10000 + ((int(m.group(2), 16) - 0xD800) << 10) + (int(m.group(3), 16) - 0xDC00)
    return f"\\U{point:08x}"


def to_json(value: Any) -> str:
    """A YAML-safe scalar or flow collection: JSON is YAML, and strings are always double-quoted."""
    if isinstance(value, str):
        text = _STRINGS.get(value)
        if text is None:
            text = f'"{value}"' if _SIMPLE_STRING.fullmatch(value) else _yaml_json(value)
            if len(_STRINGS) < 65_536 and len(value) < 256:
                _STRINGS[value] = text
        return text
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return _yaml_json(value)


def yaml_key(key: Any) -> str:
    cached = _KEYS.get(key) if isinstance(key, str) else None
    if cached is not None:
        return cached
    plain = isinstance(key, str) and _PLAIN_KEY.fullmatch(key) and key.lower() not in _YAML11_SPECIAL
    text = key if plain else to_json(key)
    if isinstance(key, str) and len(_KEYS) < 10_000:
        _KEYS[key] = text
    return text


def _block_text(text: str, indent: int) -> str | None:
    """A literal block for multi-line, printable-ASCII text ending in exactly one newline; else None."""
    if (indent < 1 or "\n" not in text[:-1] or not text.endswith("\n") or text.endswith("\n\n")
            or not _BLOCK_SAFE.fullmatch(text) or " \n" in text):
        return None
    pad = " " * indent
    return "|\n" + "\n".join(pad + line if line else "" for line in text[:-1].split("\n"))


def to_yaml(value: Any, indent: int = 0) -> str:
    """The text that follows ``key:`` for ``value``, nested block style at ``indent`` columns.

    Collections become block mappings and sequences, multi-line text a literal block, every other string a
    double-quoted JSON string; so no value can change type or structure whatever it contains.
    """
    if isinstance(value, str | int | None) and not (isinstance(value, str) and "\n" in value):
        return " " + to_json(value)
    out: list[str] = []
    _emit(value, indent, out)
    return "".join(out)


def _emit(value: Any, indent: int, out: list[str]) -> None:
    if isinstance(value, dict):
        if not value:
            out.append(" {}")
            return
        pad = "\n" + " " * indent
        for k, v in value.items():
            if isinstance(v, str | int) and not (isinstance(v, str) and "\n" in v):  # the common case, inline
                out += (pad, yaml_key(k), ": ", to_json(v))
            else:
                out += (pad, yaml_key(k), ":")
                _emit(v, indent + 2, out)
    elif isinstance(value, list | tuple):
        if not value:
            out.append(" []")
            return
        dash = "\n" + " " * indent + "-"
        for item in value:
            out.append(dash)
            if isinstance(item, dict) and item:
                pad = " "
                for k, v in item.items():  # the first key on the dash's line, the others below it
                    out += (pad, yaml_key(k), ":")
                    _emit(v, indent + 4, out)
                    pad = "\n" + " " * (indent + 2)
            elif isinstance(item, list | tuple) and item:
                inner: list[str] = []
                _emit(item, indent + 2, inner)
                out += (" ", "".join(inner).lstrip("\n "))
            else:
                _emit(item, indent + 2, out)
    elif isinstance(value, str) and "\n" in value and (block := _block_text(value, indent)) is not None:
        out += (" ", block)
    else:
        out += (" ", to_json(value))


def template(ctx: Context, name: str) -> jinja2.Template:
    """``name`` from the templates folder of the plan's settings."""
    from hcops.render.templating import load_template

    return load_template(templates_dir(ctx.plan.settings), name)


# ------------------------------------------------------------------------------------------------ helpers

@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building thousands of small dicts that all stay alive: its
    full passes would rescan them again and again (about half the time of a 5,000-node policy input)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# ------------------------------------------------------------------------------------------------- output

@dataclass(frozen=True)
class OutFile:
    path: str  # relative to the target folder, "/"-separated
    content: bytes
    private: bool = False  # key material: 0600 in a 0700 folder
    owner: int | None = None  # uid=gid to give a private file to, when running as root


class TargetOutput:
    """The files of one target, collected in memory, then written in one pass."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.files: list[OutFile] = []

    def text(self, path: str, content: str) -> None:
        self.files.append(OutFile(path, content.encode()))

    def private(self, path: str, content: bytes, owner: int | None = None) -> None:
        self.files.append(OutFile(path, content, private=True, owner=owner))

    def write(self, out_dir: Path) -> list[Path]:
        """Write every file atomically (``hcops.fsutil.replace_file``): a full disk or a crash leaves each
        file either as it was or complete. ``out_dir`` is the user's and may be a link; everything hcops
        creates inside it may not be one (refused, exit 2), so that nothing is written, or chmod'ed,
        elsewhere through it."""
        make_dirs(out_dir, private=False)
        root = out_dir / self.target
        umask = _umask()
        _folder(str(root), None, umask)
        previous = _manifest(root)
        names = sorted(f.path for f in self.files)
        if len(set(names)) != len(names):
            raise AssertionError(f"{self.target}: two rendered files share a path")
        private_folders = {f.path.rpartition("/")[0] for f in self.files if f.private}
        levels: dict[int, set[str]] = {}
        for f in self.files:
            folder = f.path.rpartition("/")[0]
            while folder and folder not in levels.get(folder.count("/"), ()):
                levels.setdefault(folder.count("/"), set()).add(folder)
                folder = folder.rpartition("/")[0]
        is_root = os.geteuid() == 0
        base = str(root)

        def make(batch: list[str]) -> None:
            for rel in batch:
                _folder(f"{base}/{rel}", 0o700 if rel in private_folders else 0o755, umask)

        def write(batch: list[OutFile]) -> None:
            for f in batch:
                _write(base, f, is_root)

        # Thousands of small files: the syscalls release the GIL, so a few threads write them much faster.
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            for depth in sorted(levels):  # parents before children
                list(pool.map(make, _split(sorted(levels[depth]), WRITERS)))
            list(pool.map(write, _split(self.files, WRITERS)))
        manifest = "".join(f"{n}\n" for n in names)
        _write(base, OutFile(MANIFEST, manifest.encode()), is_root)
        _prune(root, previous - set(names))
        return [root / n for n in names]


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts) if items[i::parts]]


def _umask() -> int:
    with _UMASK_LOCK:  # reading the umask means setting it; no file is created while it is changed
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _manifest(root: Path) -> set[str]:
    data = read_file(root / MANIFEST)
    return {line for line in data.decode("utf-8", "replace").splitlines() if line} if data else set()


def _folder(path: str, mode: int | None, umask: int) -> None:
    """A real folder (a link or a file there is refused) with ``mode``, repaired if it drifted: rendered
    folders are hcops' own output, rewritten from the state folder on every render. ``None``: the
    umask's mode, and an existing folder's mode is kept."""
    try:
        os.mkdir(path, 0o777 if mode is None else mode)
    except FileExistsError:
        st = existing_folder(path)
        if mode is not None and st is not None and stat.S_IMODE(st.st_mode) != mode:
            _chmod(path, mode)
        return
    except OSError as exc:
        raise os_problem(exc, path, "create the folder") from None
    if mode is not None and mode & umask:
        _chmod(path, mode)


def _chmod(path: str, mode: int) -> None:
    try:
        os.chmod(path, mode)  # checked just before not to be a link, and hcops' own folders hold no others'
    except OSError as exc:
        raise os_problem(exc, path, "set the mode of") from None


def _write(base: str, f: OutFile, is_root: bool) -> None:
    """Write one file with exactly its mode and owner (set before any byte is written); leave it alone when
    its content is already right, so that unchanged files keep their timestamps."""
    path = f"{base}/{f.path}"
    mode = 0o600 if f.private else 0o644
    owner = f.owner if is_root else None
    if not _same(path, f.content, mode, owner):
        replace_file(path, f.content, mode, owner)


def _same(path: str, content: bytes, mode: int, owner: int | None) -> bool:
    """Whether ``path`` already holds ``content``; if so its mode and owner are made right (an older file may
    have had a wider mode). A link or a folder at ``path`` is refused."""
    st = existing_file(path)
    if st is None or st.st_size != len(content):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False  # replaced meanwhile, or unreadable: rewrite it
    try:
        if _read_up_to(fd, len(content) + 1) != content:
            return False
        st = os.fstat(fd)
        if stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
        if owner is not None and (st.st_uid, st.st_gid) != (owner, owner):
            os.fchown(fd, owner, owner)
        return True
    except OSError as exc:
        raise os_problem(exc, path, "update") from None
    finally:
        os.close(fd)


def _read_up_to(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left > 0 and (chunk := os.read(fd, left)):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _prune(root: Path, stale: set[str]) -> None:
    """Remove the files a previous render wrote that this one did not, then the folders left empty."""
    base = root.resolve()
    folders: set[Path] = set()
    for rel in stale:
        path = root / rel
        try:
            if base not in path.resolve().parents:
                continue  # through a link, or outside the folder: not a file of this render
            path.unlink(missing_ok=True)
        except RuntimeError:  # a loop of links: not one hcops made
            continue
        except OSError as exc:
            raise os_problem(exc, path, "remove the file left from the previous render") from None
        folders.update(p for p in path.parents if root in p.parents)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty: still used, or holds files hcops did not write
            folder.rmdir()
