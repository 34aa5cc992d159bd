"""What hcops last did to a network (``<state-dir>/<network>/state.json``) and the per-network lock.

The engine's labels stay the source of truth for what exists; this file records intent and outcome
(the spec hash being applied, per-node resource ids, when it finished) so that an interrupted apply
can be recognised and reported. Writes are atomic (temp file, fsync, rename).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from hcops.errors import EnvironmentProblem
from hcops.fsutil import private_dir, read_file, symlink_refused, write_private

STATE_FILE = "state.json"
LOCK_FILE = ".lock"
DEFAULT_LOCK_TIMEOUT = 30.0


@dataclass
class NodeRecord:
    container: str | None = None  # container / pod name
    resource_id: str | None = None  # engine id
    volume: str | None = None
    config_hash: str | None = None


@dataclass
class NetworkState:
    network: str
    provider: str
    phase: str = "new"  # applying | applied | destroying | destroyed
    spec_hash: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> NetworkState:
        doc = json.loads(text)
        nodes = {k: NodeRecord(**v) for k, v in (doc.pop("nodes", None) or {}).items()}
        return cls(nodes=nodes, **doc)


class StateStore:
    """``state.json`` of one network, in its folder of the state directory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / STATE_FILE

    def load(self, network: str, provider: str) -> NetworkState:
        data = read_file(self.path)  # never through a link (refused), like everything in the state folder
        if data is None:
            return NetworkState(network=network, provider=provider)
        try:
            return NetworkState.from_json(data.decode())
        except (ValueError, TypeError, AttributeError) as exc:  # AttributeError: JSON, but not an object
            raise EnvironmentProblem(f"{self.path}: unreadable state file ({exc.__class__.__name__})",
                                     hint="move it aside; the next apply rebuilds it from the engine"
                                     ) from None

    def save(self, state: NetworkState) -> None:
        write_atomic(self.path, state.to_json().encode())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def write_atomic(path: Path, content: bytes, mode: int = 0o600) -> None:
    """Temp file, fsync, rename, in a private folder (0700, no link); errors name the path (exit 2)."""
    write_private(path, content, mode=mode)


@contextlib.contextmanager
def network_lock(folder: Path, network: str, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """One apply/destroy per network at a time; a second one waits ``timeout`` seconds, then fails."""
    private_dir(folder)
    if os.path.islink(folder / LOCK_FILE):
        raise symlink_refused(folder / LOCK_FILE)  # taking the lock opens (and may truncate) the file
    lock = FileLock(str(folder / LOCK_FILE))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise EnvironmentProblem(
            f"network {network} is locked by another hcops apply/destroy (waited {timeout:g} s)",
            hint=f"wait for it to finish; if none is running, the lock is {folder / LOCK_FILE}") from None
    try:
        yield
    finally:
        lock.release()
