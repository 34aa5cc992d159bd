"""How long-running core work reports progress without printing: the CLI passes a ``Reporter``."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def step(self, message: str) -> None:
        """A new phase began (e.g. "creating network")."""

    def update(self, task: str, completed: int, total: int, detail: str = "") -> None:
        """Progress on a counted task (e.g. "blocks signed by every validator", 2, 3)."""

    def warn(self, message: str) -> None:
        """Something the user should know that does not stop the work."""


class SilentReporter:
    def step(self, message: str) -> None:
        pass

    def update(self, task: str, completed: int, total: int, detail: str = "") -> None:
        pass

    def warn(self, message: str) -> None:
        pass


class RecordingReporter:
    """Keeps every event; for tests and for logs."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def step(self, message: str) -> None:
        self.events.append(("step", message))

    def update(self, task: str, completed: int, total: int, detail: str = "") -> None:
        self.events.append(("update", f"{task} {completed}/{total} {detail}".strip()))

    def warn(self, message: str) -> None:
        self.events.append(("warn", message))
