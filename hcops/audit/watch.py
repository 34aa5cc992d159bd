"""The continuous audit, modelled on Gatekeeper's: sweeps at a fixed interval (from the start time, so
they do not drift), an audit id per sweep, started/finding/finished events, clean stop on SIGINT/SIGTERM.

A stop request during a sweep lets the sweep finish and be recorded (its records are one transaction);
a second request aborts it, and the transaction is rolled back, so a sweep is never half recorded.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from hcops.audit.sweep import Auditor, Event, Sweep
from hcops.errors import HcopsError

if TYPE_CHECKING:
    from hcops.backup.schedule import ScheduledBackups


class StopNow(BaseException):
    """A second stop request: abandon the sweep in progress (its transaction rolls back)."""


@dataclass
class WatchResult:
    sweeps: int = 0
    failed: int = 0  # sweeps that could not be completed (engine down, ...)
    stopped_by: str | None = None


@contextmanager
def stop_signals(stop: threading.Event, result: WatchResult) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise StopNow()
        result.stopped_by = signal.Signals(signum).name
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def scheduled_backups(auditor: Auditor) -> ScheduledBackups | None:
    """The schedule hook: ``spec.backup.schedule`` is honoured by the watch (hcops.backup.schedule)."""
    from hcops.backup.schedule import ScheduledBackups

    return ScheduledBackups.of(auditor.plan, auditor.log)


def _tolerant(emit: Event) -> Event:
    """``emit`` for the backup events: a printer written for the audit's own events only (the table
    format) skips them instead of ending the watch; the audit log records every backup either way."""

    def send(event: Mapping[str, Any]) -> None:
        with contextlib.suppress(KeyError, TypeError):
            emit(event)

    return send


def watch(
    auditor: Auditor,
    interval: float,
    *,
    emit: Event,
    on_sweep: Callable[[Sweep], None],
    on_error: Callable[[HcopsError], None],
    max_sweeps: int | None = None,
    stop: threading.Event | None = None,
    on_recorded: Callable[[Sweep], None] | None = None,
) -> WatchResult:
    """Sweeps on a grid of ``interval`` seconds until stopped. ``on_recorded`` sees each sweep before its
    ``audit_finished`` event, ``on_sweep`` after it."""
    stop = stop or threading.Event()
    result = WatchResult()
    start = time.monotonic()
    backups = scheduled_backups(auditor)
    with stop_signals(stop, result):
        k = 0  # the slot on the interval grid
        while not stop.is_set():
            try:
                if backups is not None:
                    backups.tick(_tolerant(emit))  # before the sweep, so that its facts show the new backup
                sweep = auditor.run(emit, on_recorded)
            except StopNow:
                break
            except HcopsError as exc:  # one failed sweep (engine unreachable, ...) does not end the watch
                result.failed += 1
                on_error(exc)
            else:
                result.sweeps += 1
                on_sweep(sweep)
            k += 1
            if max_sweeps is not None and result.sweeps + result.failed >= max_sweeps:
                break
            next_at = start + k * interval
            behind = time.monotonic() - next_at
            if behind > 0:  # a sweep longer than the interval: skip the missed slots, keep the grid
                k += int(behind // interval) + 1
                next_at = start + k * interval
            stop.wait(max(0.0, next_at - time.monotonic()))
    return result
