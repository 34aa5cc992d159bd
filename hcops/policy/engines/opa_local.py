"""The managed OPA engine: the OPA binary run one-shot by hcops, no server to set up.

``opa eval`` evaluates the generated entry module (hcops.policy.engines.base) over the policy modules,
written to a private temporary directory with the data document; the input document goes through
stdin. Built-in errors are strict (``--strict-builtin-errors``), as in the other engines.
``run_tests`` runs ``opa test`` and evaluates each failed test again with strict built-in errors, so
that a test that errs is reported as an error (as the other engines do), not as a failure.

One process per evaluation, bounded: it is killed at ``limits.timeout_s`` or on ``cancel``, its address
space is capped (``ulimit -v``: ``limits.memory_mb`` plus room for the Go runtime's reservations), and
the temporary directory is removed on every path. Nothing outlives the call.

Fails closed: no binary is an EnvironmentProblem; a parse, compile or evaluation error, a crash, an
undefined result or output that is not the expected JSON is an InvalidInput.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hcops.errors import Diagnostic, EnvironmentProblem, InvalidInput, Location
from hcops.policy.engines.base import (
    ENTRY_FILENAME,
    ENTRY_PACKAGE,
    ENTRY_RULE,
    EngineResult,
    TestResult,
    analyse,
    discover_tests,
    entry_module,
    parse_entry_result,
    verdict_of_test,
)
from hcops.policy.engines.limits import EngineLimitExceeded, EngineLimits
from hcops.policy.engines.opa_binary import find_opa
from hcops.policy.regosrc import rego_ref
from hcops.settings import Settings

GO_RUNTIME_MB = 1024  # address space the Go runtime reserves beyond the heap


def write_modules(folder: Path, modules: Mapping[str, str]) -> dict[str, str]:
    """Write ``modules`` as ``m<i>.rego`` below ``folder``; returns written path -> module name."""
    names: dict[str, str] = {}
    for i, name in enumerate(sorted(modules)):
        stem = "m%03d_%s" % (i, Path(name).name.replace(".rego", ""))  # noqa: UP031 - keeps _test.rego
        path = folder / (stem + ".rego")
        path.write_text(modules[name], encoding="utf-8")
        names[str(path)] = name
    return names


def diagnostics(errors: Any, names: Mapping[str, str]) -> list[Diagnostic]:
    """Diagnostics of OPA's JSON ``errors``, located in the original module names."""
    out: list[Diagnostic] = []
    for err in errors if isinstance(errors, list) else []:
        if not isinstance(err, Mapping):
            continue
        loc = err.get("location") or {}
        where = None
        if isinstance(loc, Mapping) and loc.get("file"):
            file = str(loc["file"])
            where = Location(names.get(file, names.get(os.path.abspath(file), file)),
                             int(loc.get("row") or 1), int(loc.get("col") or 1))
        code = err.get("code")
        out.append(Diagnostic(f"{err.get('message', 'error')}" + (f" [{code}]" if code else ""), location=where))
    return out


class OpaLocalEngine:
    """Evaluates with the OPA binary (found by hcops.policy.engines.opa_binary, or ``binary``)."""

    name = "opa"

    def __init__(self, limits: EngineLimits | None = None, *, binary: Path | None = None,
                 settings: Settings | None = None) -> None:
        self.limits = limits or EngineLimits()
        self._binary = binary
        self._settings = settings
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._cancelled = threading.Event()

    @property
    def binary(self) -> Path:
        found = self._binary or find_opa(self._settings)
        if found is None:
            raise EnvironmentProblem(
                "the OPA binary was not found (looked at $HCOPS_OPA_BIN, $HCOPS_CACHE/bin/opa and PATH)",
                hint="install it (scripts/bootstrap opa), or choose another engine (--engine embedded)")
        return found

    def cancel(self) -> None:
        self._cancelled.set()
        self._kill_all()

    def close(self) -> None:
        self._kill_all()

    def _kill_all(self) -> None:
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()

    # ------------------------------------------------------------------ one process
    def _run(self, args: list[str], stdin: bytes | None, what: str) -> tuple[int, bytes, bytes]:
        kb = (self.limits.memory_mb + GO_RUNTIME_MB) * 1024
        cmd = [str(self.binary), *args]
        if os.path.exists("/bin/sh"):
            cmd = ["/bin/sh", "-c", 'ulimit -v "$0" 2>/dev/null; exec "$@"', str(kb), *cmd]
        if self._cancelled.is_set():
            raise InvalidInput(f"{what} was cancelled")
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot run the OPA binary {self.binary}: {exc}") from exc
        with self._lock:
            self._procs.add(proc)
        try:
            out, err = proc.communicate(stdin, timeout=self.limits.timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise EngineLimitExceeded(
                f"{what} exceeded the engine's time limit of {self.limits.timeout_s:g} s",
                hint="a policy asks for too much work; simplify it, or raise the limit (--engine-timeout)") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            with self._lock:
                self._procs.discard(proc)
        if self._cancelled.is_set():
            raise InvalidInput(f"{what} was cancelled")
        if proc.returncode < 0:
            raise EngineLimitExceeded(
                f"{what}: the OPA process was stopped by signal {-proc.returncode} (memory limit of "
                f"{self.limits.memory_mb} MB?)", hint="raise the limit (--engine-memory)")
        return proc.returncode, out, err

    def _eval(self, folder: Path, names: Mapping[str, str], query: str, stdin: bytes | None) -> tuple[bool, Any]:
        args = ["eval", "--format", "json", "--strict-builtin-errors", "-d", str(folder), query]
        if stdin is not None:
            args.insert(1, "--stdin-input")
        code, out, err = self._run(args, stdin, "policy evaluation")
        try:
            doc = json.loads(out) if out.strip() else None
        except json.JSONDecodeError:
            doc = None
        if isinstance(doc, Mapping) and doc.get("errors"):
            diags = diagnostics(doc["errors"], names)
            compile_error = any("rego_" in d.message and "eval_" not in d.message for d in diags)
            raise InvalidInput("OPA rejected the policies" if compile_error else "policy evaluation failed", diags)
        if code != 0 or not isinstance(doc, Mapping):
            detail = (err or out).decode("utf-8", "replace").strip().splitlines()
            raise InvalidInput(f"the OPA binary failed (exit {code}): {(detail or ['no output'])[0][:300]}")
        results = doc.get("result") or []
        if not results:
            return False, None
        expressions = results[0].get("expressions") or [] if isinstance(results[0], Mapping) else []
        if not expressions:
            return False, None
        return True, expressions[0].get("value")

    # ------------------------------------------------------------------ Engine
    def evaluate(
        self, modules: Mapping[str, str], input: dict[str, Any], data: dict[str, Any]
    ) -> EngineResult:
        import orjson

        policy = {k: v for k, v in modules.items() if not k.endswith("_test.rego")}
        analysis = analyse(policy)
        policy[ENTRY_FILENAME] = entry_module(analysis)
        try:
            body = orjson.dumps(input, default=str)
        except TypeError as exc:
            raise InvalidInput(f"the policy input is not a JSON document: {exc}") from exc
        with tempfile.TemporaryDirectory(prefix="hcops-opa-") as tmp:
            folder = Path(tmp)
            names = write_modules(folder, policy)
            if data:
                (folder / "data.json").write_bytes(orjson.dumps(data))
            defined, value = self._eval(folder, names, f"data.{ENTRY_PACKAGE}.{ENTRY_RULE}", body)
        if not defined:
            raise InvalidInput("policy evaluation with the OPA binary returned no result")
        return parse_entry_result(self.name, analysis, value)

    def run_tests(self, modules: Mapping[str, str], data: dict[str, Any]) -> list[TestResult]:
        analysis = analyse(modules)
        cases = discover_tests(analysis)
        with tempfile.TemporaryDirectory(prefix="hcops-opa-") as tmp:
            folder = Path(tmp)
            names = write_modules(folder, modules)
            if data:
                (folder / "data.json").write_text(json.dumps(data))
            code, out, err = self._run(["test", "--format", "json", "--timeout", f"{self.limits.timeout_s:g}s",
                                        str(folder)], None, "the policy tests")
            try:
                reported = json.loads(out)
            except json.JSONDecodeError:
                reported = None
            if not isinstance(reported, list):
                doc = reported if isinstance(reported, Mapping) else {}
                detail = (err or out).decode("utf-8", "replace").strip().splitlines()
                raise InvalidInput("opa test failed: " + ((detail or ["no output"])[0][:300]),
                                   diagnostics(doc.get("errors"), names))
            by_name = {(str(r.get("package", "")).removeprefix("data."), r.get("name")): r
                       for r in reported if isinstance(r, Mapping)}
            results: list[TestResult] = []
            for case in cases:
                r = by_name.get((case.package, case.name))
                duration = float(r.get("duration", 0)) / 1e9 if r else 0.0
                if case.skipped or (r and r.get("skip")):
                    results.append(TestResult(case.package, case.name, "skip", case.file, case.line, "todo"))
                    continue
                if r is not None and not r.get("fail") and not r.get("error"):
                    results.append(TestResult(case.package, case.name, "pass", case.file, case.line, "", duration))
                    continue
                # failed, erred or not run: ask again with strict built-in errors for the same verdict as
                # the other engines ("error" for a test that errs, the value for one that fails)
                try:
                    defined, value = self._eval(folder, names, f"{rego_ref(case.segments)}.{case.name}", None)
                    status, message = verdict_of_test(defined, value)
                except InvalidInput as exc:
                    status = "error"
                    message = "; ".join(d.message for d in exc.diagnostics) or exc.message
                results.append(TestResult(case.package, case.name, status, case.file, case.line, message, duration))
        return results
