"""The managed OPA server: the OPA binary run by hcops as a private server for the length of one command.

Why: ``opa eval`` (hcops.policy.engines.opa_local) starts only once the input document is built, and then
reads the input, loads, parses and compiles the pack, and evaluates, one after the other. Started by
``prepare`` as soon as the command knows it will need OPA, the server loads and compiles the pack on the
other core while hcops still builds the input document. The document goes to the server part by part as
it is built, and the packages are then asked in two requests at once (hcops.policy.engines.opa_stage);
a document that was not staged goes in one request, whose input OPA's server decodes at a lower cost
than ``opa eval`` (bench/RESULTS.md, check).

Invisible and private: the server listens on a Unix socket in a fresh 0700 temporary folder (only the
user can reach it; no TCP port), with its modules and data in that folder, the version check off and its
log in the folder. It belongs to this engine object only: ``close`` stops it and removes the folder, and
so do ``cancel`` and every failure. The server runs under a small shell that holds a pipe from hcops and
stops the server when that pipe closes, so a server never outlives hcops, even one killed with SIGKILL.
The entry module carries the digest of the modules and data the server was started with, and every answer
must carry that digest back: an answer for another pack is refused.

Fails closed: no binary is an EnvironmentProblem; a server that does not start (a pack that does not
compile, a socket path too long) hands the evaluation to the one-shot engine, which reports compile
errors with file:line (the report then names ``opa``); an evaluation error, the time limit, a wrong
digest or an undefined result is an InvalidInput.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from hcops.errors import EnvironmentProblem, InvalidInput
from hcops.policy.engines.base import (
    ENTRY_FILENAME,
    ENTRY_PACKAGE,
    ENTRY_RULE,
    EngineResult,
    TestResult,
    analyse,
    entry_module,
    parse_entry_result,
)
from hcops.policy.engines.limits import EngineLimitExceeded, EngineLimits
from hcops.policy.engines.opa_local import GO_RUNTIME_MB, OpaLocalEngine, diagnostics, write_modules
from hcops.policy.engines.opa_stage import (
    STAGED_FILENAME,
    Stager,
    ask_groups,
    package_groups,
    staged_module,
    staged_query,
)
from hcops.settings import Settings

PACK_RULE = "pack"
START_TIMEOUT_S = 30.0
# The shell stops the server and removes its folder when hcops closes its end of the pipe (or dies): the
# watcher's ``read`` returns at EOF. A server that exits on its own (a pack it cannot load) is marked at
# once (EXITED), so that hcops falls back without waiting; its log stays until the pipe closes.
EXITED = "exited"
_LIFELINE = ('ulimit -v "$1" 2>/dev/null; folder=$2; shift 2; exec 3<&0; "$@" </dev/null 3<&- & child=$!; '
             '{ read -r _ <&3 || true; kill -KILL "$child" 2>/dev/null; } & watcher=$!; '
             f'wait "$child"; : > "$folder/{EXITED}"; wait "$watcher"; rm -rf "$folder"')


def server_environment(memory_mb: int) -> dict[str, str]:
    """The server's environment: Go's collector off below a soft limit of three quarters of the memory
    limit. The server lives for one command and allocates a few hundred MB at 1,000 nodes; collecting
    on the default schedule cost it a fifth of its time (bench/RESULTS.md, check). Past the soft limit
    Go collects as usual, and the address-space limit still stops a runaway evaluation."""
    return {**os.environ, "GOGC": "off", "GOMEMLIMIT": f"{memory_mb * 3 // 4}MiB"}


class ServerDidNotStart(EnvironmentProblem):
    """The managed server exited or did not answer before it could serve an evaluation."""


def pack_digest(policy: Mapping[str, str], data: Mapping[str, Any]) -> str:
    h = hashlib.sha256()
    for name in sorted(policy):
        h.update(orjson.dumps([name, policy[name]]))
    h.update(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
    return h.hexdigest()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _Server:
    """One ``opa run --server`` on a Unix socket in a private folder, serving the pack of ``digest``."""

    def __init__(self, binary: Path, policy: Mapping[str, str], data: Mapping[str, Any], digest: str,
                 memory_mb: int) -> None:
        self.digest = digest
        self.folder = Path(tempfile.mkdtemp(prefix="hcops-opa-"))  # 0700
        try:
            modules = self.folder / "policy"
            modules.mkdir(mode=0o700)
            self.names = write_modules(modules, policy)
            if data:
                (modules / "data.json").write_bytes(orjson.dumps(data))
            self.socket = str(self.folder / "opa.sock")
            log = (self.folder / "opa.log").open("wb")
            cmd = [str(binary), "run", "--server", "--addr", f"unix://{self.socket}", "--unix-socket-perm", "600",
                   "--skip-version-check", "--log-level", "error", "--shutdown-grace-period", "0", str(modules)]
            kb = (memory_mb + GO_RUNTIME_MB) * 1024
            with log:
                self.proc = subprocess.Popen(["/bin/sh", "-c", _LIFELINE, "sh", str(kb), str(self.folder), *cmd],
                                             stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True, env=server_environment(memory_mb))
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        self._ready = False

    def wait_ready(self, timeout: float) -> None:
        """Until the server answers /health; ServerDidNotStart when it exits or stays silent."""
        if self._ready:
            return
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            if self.proc.poll() is not None or (self.folder / EXITED).exists():
                raise ServerDidNotStart(f"the managed OPA server exited: {self.log_tail()}")
            try:
                status, _ = self.request("GET", "/health", None, 2.0)
                if status == 200:
                    self._ready = True
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerDidNotStart(f"the managed OPA server did not answer within {timeout:g} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def request(self, method: str, path: str, body: bytes | None, timeout: float) -> tuple[int, Any]:
        conn = _UnixConnection(self.socket, timeout)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            raw = response.read()
        except http.client.HTTPException as exc:
            raise ConnectionError(str(exc)) from exc
        finally:
            conn.close()
        try:
            return response.status, orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return response.status, {"message": raw[:300].decode("utf-8", "replace")}

    def log_tail(self) -> str:
        try:
            text = (self.folder / "opa.log").read_text(errors="replace").strip()
        except OSError:
            return "no log"
        lines = [line for line in text.splitlines() if "root privileges" not in line]
        return (lines[-1] if lines else "no output")[:300]

    def stop(self) -> None:
        """Close the lifeline (the shell kills and reaps the server), or kill both if the shell lingers."""
        proc = self.proc
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the shell and the server: their own session
            proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class OpaManagedEngine:
    """Evaluates on a private OPA server it starts (``prepare``, or the first ``evaluate``) and stops."""

    name = "opa-managed"

    def __init__(self, limits: EngineLimits | None = None, *, binary: Path | None = None,
                 settings: Settings | None = None) -> None:
        self.limits = limits or EngineLimits()
        self._oneshot = OpaLocalEngine(self.limits, binary=binary, settings=settings)
        self._server: _Server | None = None
        self._stager: Stager | None = None
        self._groups: list[list[str]] = []  # the packages, grouped as the staged module asks them
        self.last_mode = ""  # how the last evaluation went: "staged", "request" or "one-shot"

    @staticmethod
    def _policy(modules: Mapping[str, str]) -> tuple[dict[str, str], Any]:
        policy = {k: v for k, v in modules.items() if not k.endswith("_test.rego")}
        analysis = analyse(policy)
        return policy, analysis

    def prepare(self, modules: Mapping[str, str], data: Mapping[str, Any], nodes: int = 0) -> None:
        """Start the server for ``modules`` and ``data`` now, without waiting for it (``nodes``, the
        size of the input to come, does not change anything here)."""
        policy, analysis = self._policy(modules)
        digest = pack_digest(policy, data)
        if self._server is not None and self._server.digest == digest and self._server.proc.poll() is None:
            return
        self._stop()
        entry = entry_module(analysis) + f"\n{PACK_RULE} := {orjson.dumps(digest).decode()}\n"
        self._groups = package_groups(policy, analysis)
        staged = staged_module(analysis, digest, self._groups)
        modules_to_serve = {**policy, ENTRY_FILENAME: entry, STAGED_FILENAME: staged}
        try:
            self._server = _Server(self._oneshot.binary, modules_to_serve, data, digest, self.limits.memory_mb)
        except OSError:  # no temporary folder, no /bin/sh, no process: the one-shot engine evaluates instead
            self._server = None
            return
        self._stager = Stager(self._server, min(START_TIMEOUT_S, self.limits.timeout_s))

    def input_sink(self) -> Stager | None:
        """Where the input document's parts go while it is built (hcops.policy.input.InputSink): to the
        server started by ``prepare``; None without one."""
        return self._stager

    def _stop(self) -> None:
        server, self._server = self._server, None
        stager, self._stager = self._stager, None
        if stager is not None:
            stager.close()
        if server is not None:
            server.stop()

    def cancel(self) -> None:
        self._oneshot.cancel()
        self._stop()

    def close(self) -> None:
        self._oneshot.close()
        self._stop()

    def evaluate(self, modules: Mapping[str, str], input: dict[str, Any], data: dict[str, Any]) -> EngineResult:
        _, analysis = self._policy(modules)
        self.prepare(modules, data)
        server, stager = self._server, self._stager
        if server is not None and stager is not None and analysis.packages and stager.holds(input):
            return self._evaluate_staged(server, analysis)
        try:
            body = orjson.dumps(input, default=str)
        except TypeError as exc:
            raise InvalidInput(f"the policy input is not a JSON document: {exc}") from exc
        return self.evaluate_json(modules, body, data, input)

    def evaluate_json(self, modules: Mapping[str, str], body: bytes, data: dict[str, Any],
                      input: dict[str, Any]) -> EngineResult:
        """``body`` is ``input`` serialized (the caller may have done it already)."""
        policy, analysis = self._policy(modules)
        self.prepare(modules, data)
        server = self._server
        started = time.monotonic()
        try:
            if server is None:
                raise ServerDidNotStart("the server could not be started")
            server.wait_ready(min(START_TIMEOUT_S, self.limits.timeout_s))
        except ServerDidNotStart:
            self._stop()
            self.name = self._oneshot.name  # the report names the engine that evaluated
            self.last_mode = "one-shot"
            return self._oneshot.evaluate(modules, input, data)
        left = max(self.limits.timeout_s - (time.monotonic() - started), 1.0)
        path = f"/v1/data/{ENTRY_PACKAGE}?strict-builtin-errors=true"
        try:
            result = self._ask(server, path, b'{"input":' + body + b"}", left)
        except BaseException:
            self._stop()
            raise
        if ENTRY_RULE not in result:
            raise InvalidInput("policy evaluation with the managed OPA server returned no result")
        self.name = type(self).name
        self.last_mode = "request"
        return parse_entry_result(self.name, analysis, result[ENTRY_RULE])

    def _evaluate_staged(self, server: _Server, analysis: Any) -> EngineResult:
        """The groups of packages, each in its own request, at once, on the staged document."""
        left = max(self.limits.timeout_s, 1.0)
        answers = ask_groups(len(self._groups), lambda g: self._ask(server, staged_query(g), b"{}", left),
                             self._stop)
        results: dict[str, Any] = {}
        for answer in answers:
            if not isinstance(answer.get("result"), Mapping):
                raise InvalidInput("policy evaluation with the managed OPA server returned no result")
            results.update(answer["result"])
        self.name = type(self).name
        self.last_mode = "staged"
        return parse_entry_result(self.name, analysis, results)

    def _ask(self, server: _Server, path: str, body: bytes, timeout: float) -> Mapping[str, Any]:
        """The answer's ``result`` for the pack the server was started with; the engine's errors raised
        (the caller stops the server on them)."""
        try:
            status, doc = server.request("POST", path, body, timeout)
        except TimeoutError:
            raise EngineLimitExceeded(
                f"policy evaluation exceeded the engine's time limit of {self.limits.timeout_s:g} s",
                hint="a policy asks for too much work; simplify it, or raise the limit (--engine-timeout)") from None
        except OSError as exc:
            raise InvalidInput(f"the managed OPA server failed during the evaluation ({type(exc).__name__}: "
                               f"{server.log_tail()}; memory limit of {self.limits.memory_mb} MB?)") from exc
        if status >= 300 or not isinstance(doc, Mapping):
            errors = doc.get("errors") if isinstance(doc, Mapping) else None
            diags = diagnostics(errors, server.names)
            message = doc.get("message") if isinstance(doc, Mapping) else None
            raise InvalidInput(f"policy evaluation failed on the managed OPA server (HTTP {status}"
                               + (f": {str(message)[:200]}" if message else "") + ")", diags)
        result = doc.get("result")
        if not isinstance(result, Mapping) or result.get(PACK_RULE) != server.digest:
            raise InvalidInput("the managed OPA server did not answer for the pack it was started with")
        return result

    def run_tests(self, modules: Mapping[str, str], data: dict[str, Any]) -> list[TestResult]:
        return self._oneshot.run_tests(modules, data)
