"""The wasm engine: the policies compiled to WebAssembly by OPA, evaluated in-process by wasmtime.

The built-in packs ship precompiled (hcops.policy.engines.wasm_pack), so ``pip install hcops`` alone
gives this engine for the built-in pack; other policies (``--policy``, ``HCOPS_POLICY_DIR``) are
compiled at run time with the OPA binary, once per set of sources (cached). Without that binary they
cannot be evaluated here: an EnvironmentProblem (``--engine auto`` then picks another engine).

What differs from the other engines: built-in functions compiled into the module treat an error as
undefined (as ``opa eval`` does without ``--strict-builtin-errors``); the host-provided ones
(hcops.policy.engines.wasm_builtins) and Rego runtime errors (conflicting values) stop the evaluation.
The built-in pack guards the calls that could err (policies/lib.rego, "Engine notes"), and the
differential test (tests/integration/test_policy_engines.py) checks every violation variant.

A free core: the module also has the entry's ``result`` in two halves of whole packages
(hcops.policy.engines.wasm_pack.parts_module); they are evaluated at the same time, each by its own
instance on its own thread (wasm code runs without the GIL), and merged: about a third less wall time
on an idle two-core machine, for the cost of reading the input twice. Each instance has the memory
limit. On one core, or when the machine is busy (1-minute load average at or above the number of
cores: no core to gain, and the second read of the input costs CPU time), ``result`` in one call.

Tests (``run_tests``) are compiled with every ``test_*`` rule as an entrypoint.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

import orjson

from hcops.errors import InvalidInput
from hcops.policy.engines.base import (
    EngineResult,
    TestCase,
    TestResult,
    TestStatus,
    analyse,
    discover_tests,
    parse_entry_result,
    run_test_cases,
    verdict_of_test,
)
from hcops.policy.engines.limits import EngineLimits
from hcops.policy.engines.wasm_pack import ENTRYPOINT, PART_ENTRYPOINTS, Compiled, compiled_for, with_entry
from hcops.settings import Settings


class WasmEngine:
    """Keeps its instances for later evaluations (``hcops audit --watch``)."""

    name = "wasm"

    def __init__(self, limits: EngineLimits | None = None, *, parallel: bool | None = None,
                 settings: Settings | None = None) -> None:
        self.limits = limits or EngineLimits()
        self.parallel = parallel  # None: decided per evaluation (_two_threads)
        self.settings = settings  # where the OPA binary and the cache of compiled modules are
        self._instances: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
        self._running: set[Any] = set()
        self._lock = threading.Lock()
        self._cancelled = threading.Event()  # as the embedded engine's: later evaluations stop too
        self.last_source = ""  # "shipped" or "compiled": where the last evaluation's module came from

    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            running = list(self._running)
        for instance in running:
            instance.interrupt()

    def close(self) -> None:
        self._instances.clear()

    def _instance(self, compiled: Compiled, n: int = 1) -> list[Any]:
        """``n`` instances of ``compiled`` (made once, kept for later evaluations)."""
        from hcops.policy.engines.wasm_runtime import OpaWasm, load_module

        pool = self._instances.setdefault((compiled.digest, compiled.entrypoints), [])
        if len(pool) < n:
            module = load_module(compiled.wasm, self.settings)
            pool.extend(OpaWasm(module, self.limits, size=len(compiled.wasm)) for _ in range(n - len(pool)))
        return pool[:n]

    def _run(self, instance: Any, entrypoint: str, input_json: bytes, data_json: bytes) -> tuple[bool, Any]:
        with self._lock:
            if self._cancelled.is_set():
                raise InvalidInput("policy evaluation was cancelled")
            self._running.add(instance)
        try:
            defined, value = instance.evaluate(entrypoint, input_json, data_json)
            return bool(defined), value
        finally:
            with self._lock:
                self._running.discard(instance)

    def _run_parts(self, instances: list[Any], parts: list[str], body: bytes, data_body: bytes) -> dict[str, Any]:
        """The parts at once, one thread each (the first on this one); their union."""
        outcomes: list[Any] = [None] * len(parts)

        def work(i: int) -> None:
            try:
                outcomes[i] = self._run(instances[i], parts[i], body, data_body)
            except BaseException as exc:  # noqa: BLE001 - raised below, on the caller's thread
                outcomes[i] = exc
                with self._lock:  # the other part cannot make the evaluation succeed any more
                    others = [x for x in self._running if x is not instances[i]]
                for other in others:
                    other.interrupt()

        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(1, len(parts))]
        for t in threads:
            t.start()
        work(0)
        for t in threads:
            t.join()
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:  # the first real error, not the other part's cancellation
            raise next((e for e in errors if "cancelled" not in str(e)), errors[0])
        merged: dict[str, Any] = {}
        for defined, value in outcomes:
            if not defined or not isinstance(value, Mapping):
                raise InvalidInput("policy evaluation with the wasm engine returned no result")
            merged.update(value)
        return merged

    def evaluate(
        self, modules: Mapping[str, str], input: dict[str, Any], data: dict[str, Any]
    ) -> EngineResult:
        try:
            body = orjson.dumps(input, default=str)
        except TypeError as exc:
            raise InvalidInput(f"the policy input is not a JSON document: {exc}") from exc
        return self.evaluate_json(modules, body, data)

    def evaluate_json(self, modules: Mapping[str, str], body: bytes, data: dict[str, Any]) -> EngineResult:
        """``evaluate`` of an input document already serialized (JSON bytes)."""
        policy = with_entry(modules)
        analysis = analyse({k: v for k, v in modules.items() if not k.endswith("_test.rego")})
        compiled = compiled_for(policy, settings=self.settings)
        self.last_source = compiled.source
        try:
            data_body = orjson.dumps(data or {}, default=str)
        except TypeError as exc:
            raise InvalidInput(f"the policy data is not a JSON document: {exc}") from exc
        parts = [e for e in PART_ENTRYPOINTS if e in compiled.entrypoints]
        if len(parts) > 1 and (self.parallel if self.parallel is not None else _two_threads()):
            value: Any = self._run_parts(self._instance(compiled, len(parts)), parts, body, data_body)
        else:
            defined, value = self._run(self._instance(compiled)[0], ENTRYPOINT, body, data_body)
            if not defined:
                raise InvalidInput("policy evaluation with the wasm engine returned no result")
        return parse_entry_result(self.name, analysis, value)

    def run_tests(self, modules: Mapping[str, str], data: dict[str, Any]) -> list[TestResult]:
        analysis = analyse(modules)
        cases = [c for c in discover_tests(analysis) if not c.skipped]
        entrypoints = tuple(sorted({_entrypoint(c) for c in cases}))
        instance = None
        if entrypoints:
            compiled = compiled_for(dict(modules), entrypoints, self.settings)
            instance = self._instance(compiled)[0]
        data_body = orjson.dumps(data or {})

        def query(case: TestCase) -> tuple[TestStatus, str]:
            assert instance is not None
            try:
                defined, value = self._run(instance, _entrypoint(case), b"", data_body)
            except InvalidInput as exc:
                return "error", exc.message
            return verdict_of_test(defined, value)

        return run_test_cases(discover_tests(analysis), query)


def _two_threads() -> bool:
    """A core is free for the second half: two or more cores and a load below their number."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - no load average on this system
        load = 0.0
    return cpus >= 2 and load < cpus


def _entrypoint(case: TestCase) -> str:
    return "/".join((*case.segments, case.name))
