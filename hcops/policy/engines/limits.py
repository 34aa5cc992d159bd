"""Time and memory limits for the in-process engine.

A custom rule can ask rego-cpp for unbounded work (``numbers.range(1, 1e8)`` grew past 24 GB before
the kernel killed the whole process), and C++ code cannot be interrupted from Python. The evaluation
therefore runs in a forked child whose address space is capped (RLIMIT_AS) and which is killed at the
deadline; the parent only ever sees a result, an ``InvalidInput`` from the engine, or a clear
"limit exceeded" error. Forking keeps the loaded interpreter and input without copying them.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hcops.errors import Diagnostic, InvalidInput, Location

DEFAULT_TIMEOUT_S = 300.0
DEFAULT_MEMORY_MB = 4096


@dataclass(frozen=True)
class EngineLimits:
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB  # on top of what the process already maps


class EngineLimitExceeded(InvalidInput):
    """The evaluation hit the engine's time or memory limit; the gate must not pass."""


def _vm_size() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return 0


def _encode_error(exc: InvalidInput) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "message": exc.message,
        "hint": exc.hint,
        "diagnostics": [
            {"message": d.message, "path": d.path, "severity": d.severity,
             "location": [d.location.file, d.location.line, d.location.column] if d.location else None}
            for d in exc.diagnostics
        ],
    }


def _decode_error(doc: dict[str, Any], classes: dict[str, type[InvalidInput]]) -> InvalidInput:
    diags = [
        Diagnostic(d["message"], path=d.get("path", ""), severity=d.get("severity", "error"),
                   location=Location(*d["location"]) if d.get("location") else None)
        for d in doc.get("diagnostics", [])
    ]
    cls = classes.get(doc.get("type", ""), InvalidInput)
    return cls(doc.get("message", "policy evaluation failed"), diags, hint=doc.get("hint"))


def _child(fn: Callable[[], Any], write_fd: int, memory_mb: int) -> None:  # pragma: no cover - in the child
    code = 0
    try:
        # The C++ runtime reports a failed allocation on stderr; the parent says it better.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        if memory_mb > 0:
            limit = _vm_size() + memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            payload: dict[str, Any] = {"ok": fn()}
        except InvalidInput as exc:
            payload = {"error": _encode_error(exc)}
        except MemoryError:
            payload = {"limit": "memory"}
        data = json.dumps(payload, default=str).encode()
        view = memoryview(data)
        while view:
            n = os.write(write_fd, view)
            view = view[n:]
    except BaseException:  # noqa: BLE001 - anything else is reported by the parent as a crash
        code = 70
    finally:
        os._exit(code)


def run_limited(fn: Callable[[], Any], limits: EngineLimits, *, what: str,
                classes: dict[str, type[InvalidInput]] | None = None,
                cancelled: threading.Event | None = None) -> Any:
    """``fn()`` (which returns JSON-able data or raises InvalidInput) in a child under ``limits``;
    ``cancelled`` set by another thread stops the child early."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        _child(fn, write_fd, limits.memory_mb)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + limits.timeout_s
    timed_out = stopped = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if cancelled is not None and cancelled.is_set():
                stopped = True
                break
            ready, _, _ = select.select([read_fd], [], [], min(left, 0.1))
            if not ready:
                continue
            chunk = os.read(read_fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        if timed_out or stopped:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if stopped:
        raise InvalidInput(f"{what} was cancelled")
    if timed_out:
        raise EngineLimitExceeded(
            f"{what} exceeded the embedded engine's time limit of {limits.timeout_s:g} s",
            hint="a policy asks for too much work; simplify it, or raise the limit (--engine-timeout)")
    raw = b"".join(chunks)
    signalled = os.WIFSIGNALED(status)
    if not raw or signalled:
        cause = f"signal {os.WTERMSIG(status)}" if signalled else f"exit status {os.waitstatus_to_exitcode(status)}"
        # With the address space capped, rego-cpp's failed allocation ends the child (std::bad_alloc).
        raise EngineLimitExceeded(
            f"{what} stopped ({cause}): the embedded engine crashed or reached its memory limit of "
            f"{limits.memory_mb} MB",
            hint="a policy asks for too much memory; simplify it, or raise the limit (--engine-memory)")
    doc = json.loads(raw)
    if "error" in doc:
        raise _decode_error(doc["error"], {"InvalidInput": InvalidInput, **(classes or {})})
    if doc.get("limit") == "memory":
        raise EngineLimitExceeded(f"{what} exceeded the embedded engine's memory limit of {limits.memory_mb} MB",
                                  hint="a policy asks for too much memory; simplify it, or raise the limit "
                                       "(--engine-memory)")
    return doc["ok"]
