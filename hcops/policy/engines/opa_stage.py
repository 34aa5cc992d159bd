"""The managed OPA server's staged input: the policy input sent part by part while hcops builds it, then
evaluated in two requests that the server answers at once, on both cores.

Why: the server reads (parses and converts) the input at about 30 ms per MB (a 1,000-node network's is
7 to 11 MB), and with the input in the request body it does so only once hcops has built the whole
document, while hcops waits. Sent part by part as the builder finishes each part
(hcops.policy.input.InputSink), the document is read on the server's core while hcops builds the rest.
The packages are then asked in two groups of about equal work, each in its own request, which the
server answers concurrently on the two cores; each request converts the staged document to Rego values
again (about 15 ms per MB), which costs less than it saves. Keeping the data converted at once
(``--optimize-store-for-read-speed``) made the parts three times slower to send and was no faster in
all (bench/RESULTS.md, check).

The same rules on the same document: each group's rule is evaluated ``with input as
data.hcops_engine_input``, and the differential test (tests/integration/test_policy_engines.py) runs the
corpus both ways. The staged document is the server's alone (its Unix socket is in a 0700 folder). A part
that could not be sent, or a document other than the one staged, makes the evaluation go the one-request
way: a partial document is never evaluated.
"""

from __future__ import annotations

import sys
import urllib.parse
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import orjson

from hcops.policy.engines.base import Analysis, canonical, package_values

STAGE_ROOT = "hcops_engine_input"  # data root of the staged document (reserved: hcops.policy.sources)
STAGED_PACKAGE = "hcops_engine_staged"
STAGED_FILENAME = "__hcops_engine_staged__.rego"
SWITCH_INTERVAL_S = 0.0005  # while parts are being sent (sys.setswitchinterval)
# Requests the server answers at once. Each converts the staged document once more, so groups beyond the
# cores cost CPU and save nothing; two is what was measured (bench/RESULTS.md, check).
GROUPS = 2


class StagingServer(Protocol):
    def wait_ready(self, timeout: float) -> None: ...

    def request(self, method: str, path: str, body: bytes | None, timeout: float) -> tuple[int, Any]: ...


class StagingFailed(Exception):
    """A part did not reach the server."""


def staged_module(analysis: Analysis, digest: str, groups: list[list[str]]) -> str:
    """``staged_<g>``: the deny/warn values of group g's packages on the staged document, with the pack's
    digest."""
    lines = [f"package {STAGED_PACKAGE}", "", f"pack := {orjson.dumps(digest).decode()}"]
    for g, names in enumerate(groups):
        members = []
        for name in names:
            members.append(f"\t{canonical(name)}: {package_values(*analysis.packages[name])},")
        lines += ["", f"group_{g} := {{", *members, "}", "",
                  f'staged_{g} := {{"pack": pack, "result": x}} if {{',
                  f"\tx := group_{g} with input as data.{STAGE_ROOT}", "}"]
    return "\n".join(lines) + "\n"


def package_groups(modules: Mapping[str, str], analysis: Analysis, groups: int = GROUPS) -> list[list[str]]:
    """The packages in at most ``groups`` groups of about equal work, the work of a package taken to be
    the size of its modules' source (largest first, each into the lightest group)."""
    size: dict[str, int] = dict.fromkeys(analysis.packages, 0)
    for info in analysis.infos:
        if info.package_name in size:
            size[info.package_name] += len(modules.get(info.filename, ""))
    bins: list[tuple[int, list[str]]] = [(0, []) for _ in range(max(1, min(groups, len(size))))]
    for name in sorted(size, key=lambda n: (-size[n], n)):
        i = min(range(len(bins)), key=lambda k: bins[k][0])
        bins[i] = (bins[i][0] + size[name], [*bins[i][1], name])
    return [sorted(names) for _, names in bins if names]


def staged_query(index: int) -> str:
    return f"/v1/data/{STAGED_PACKAGE}/staged_{index}?strict-builtin-errors=true"


def _data_path(path: tuple[str, ...]) -> str:
    return "/".join([f"/v1/data/{STAGE_ROOT}", *(urllib.parse.quote(seg, safe="") for seg in path)])


class Stager:
    """An InputSink that sends each part to the server (``PUT``), in order, from one background thread;
    the first part, the whole document, replaces what an earlier evaluation staged."""

    def __init__(self, server: StagingServer, timeout: float) -> None:
        self._server = server
        self._timeout = timeout
        self._pool: ThreadPoolExecutor | None = None
        self._sent: list[Future[None]] = []
        self._document: dict[str, Any] | None = None
        self._interval: float | None = None

    def part(self, path: tuple[str, ...], value: Any) -> None:
        if not path:  # a new document
            self._sent, self._document = [], None
            self._quick_switch()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hcops-opa-stage")
        self._sent.append(self._pool.submit(self._put, path, value))

    def done(self, document: dict[str, Any]) -> None:
        self._document = document

    def _quick_switch(self) -> None:
        # The sending thread needs the interpreter lock a few times per part, and the building thread
        # holds it; at the default 5 ms switch interval the parts reached the server up to 0.1 s later.
        if self._interval is None:
            self._interval = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL_S)

    def _restore_switch(self) -> None:
        interval, self._interval = self._interval, None
        if interval is not None:
            sys.setswitchinterval(interval)

    def _put(self, path: tuple[str, ...], value: Any) -> None:
        body = orjson.dumps(value, default=str)  # as the request body would be
        self._server.wait_ready(self._timeout)
        status, _ = self._server.request("PUT", _data_path(path), body, self._timeout)
        if status != 204:
            raise StagingFailed(f"HTTP {status}")

    def holds(self, document: dict[str, Any]) -> bool:
        """Whether ``document`` is the staged one and every part of it reached the server (waits for the
        parts still under way)."""
        try:
            if self._document is not document or not self._sent:
                return False
            for sent in self._sent:
                sent.result()
        except Exception:  # noqa: BLE001 - any failure: the document goes in the request instead
            return False
        finally:
            self._restore_switch()
        return True

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        self._sent, self._document = [], None
        self._restore_switch()


def ask_groups(count: int, ask: Callable[[int], Any], on_failure: Callable[[], None]) -> list[Any]:
    """``ask(g)`` for every group g, all at once; on the first failure ``on_failure`` (which stops the
    server, so that the requests still under way end) and that failure is raised."""
    with ThreadPoolExecutor(max_workers=max(1, count), thread_name_prefix="hcops-opa-ask") as pool:
        futures = [pool.submit(ask, i) for i in range(count)]
        try:
            return [future.result() for future in futures]
        except BaseException:
            on_failure()
            raise  # leaving the pool waits for the requests still under way
