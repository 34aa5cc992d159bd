"""Records a provider wants kept in the audit log (an Ansible run, say), handed up instead of written
directly: the audit log belongs to a higher layer. The use cases install the recorder that writes them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hcops.settings import Settings

# (network folder, record kind, body, the run's settings); the audit log lives in the network folder unless
# the settings name another.
Recorder = Callable[[Path, str, Mapping[str, Any], Settings], None]

_recorders: list[Recorder] = []


def install(recorder: Recorder) -> None:
    """Used by the use case layer; installing the same recorder twice keeps one."""
    if recorder not in _recorders:
        _recorders.append(recorder)


def record(network_dir: Path, kind: str, body: Mapping[str, Any], settings: Settings) -> None:
    for recorder in _recorders:
        recorder(network_dir, kind, body, settings)
