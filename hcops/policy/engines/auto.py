"""``--engine auto`` (the default): the fastest engine that can evaluate the modules it is given.

- the modules have a compiled WebAssembly module (the built-in packs ship one; see
  hcops.policy.engines.wasm_pack), wasmtime is installed and the input document is at most
  WASM_MAX_INPUT bytes: the wasm engine, in-process;
- else the OPA binary is there (``--policy`` directories, a pack under ``HCOPS_POLICY_DIR``, larger
  inputs): the OPA binary (strict built-in errors, nothing to compile); as a private server started
  early (hcops.policy.engines.opa_managed) when the command called ``prepare`` with a size estimate
  above WASM_MAX_INPUT, else one-shot (``opa eval``);
- else the wasm engine when it has a module, else the embedded engine (regopy).

Why a size limit: OPA's Wasm code builds sets of objects in time that grows faster than the input
(measured on the built-in pack: 2,000 Docker nodes, 14.8 MB, took 3.2 s of CPU against 1.0 s for 1,000
nodes, 7.3 MB; the OPA binary took 2.2 s and 1.0 s), and from about 1,000 nodes on the OPA process
(its own cores, strict built-in errors) finishes first (bench/RESULTS.md, check); below 1 MB (about a
100-node network) wasm saves the OPA process's start.

Policy tests (``run_tests``) run on the OPA binary when there is one, else on the embedded engine.
The report names the engine that evaluated (``name`` follows the choice).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hcops.errors import EnvironmentProblem, InvalidInput
from hcops.policy.engines.base import Engine, EngineResult, TestResult
from hcops.policy.engines.limits import EngineLimits
from hcops.settings import Settings


def wasm_available() -> bool:
    try:
        import wasmtime  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


WASM_MAX_INPUT = 1_000_000  # bytes of input JSON up to which wasm is chosen over the OPA binary
# A lower bound of the input document's bytes per node (1,000 nodes: 7.3 MB with the Docker manifests,
# 10.7 MB with the Kubernetes ones), for deciding before the document exists whether to start OPA early.
BYTES_PER_NODE = 7_000


class AutoEngine:
    name = "auto"

    def __init__(self, limits: EngineLimits | None = None, *, settings: Settings | None = None) -> None:
        self.limits = limits
        self.settings = settings
        self._engines: dict[str, Engine] = {}
        self._current: Engine | None = None

    def _get(self, kind: str) -> Engine:
        engine = self._engines.get(kind)
        if engine is None:
            if kind == "wasm":
                from hcops.policy.engines.wasm_engine import WasmEngine

                engine = WasmEngine(self.limits, settings=self.settings)
            elif kind == "opa":
                from hcops.policy.engines.opa_local import OpaLocalEngine

                engine = OpaLocalEngine(self.limits, settings=self.settings)
            elif kind == "opa-managed":
                from hcops.policy.engines.opa_managed import OpaManagedEngine

                engine = OpaManagedEngine(self.limits, settings=self.settings)
            else:
                from hcops.policy.engines.embedded import EmbeddedEngine

                engine = EmbeddedEngine(self.limits)
            self._engines[kind] = engine
        return engine

    def choose(self, modules: Mapping[str, str] | None, input_size: int = 0) -> str:
        """The engine ``evaluate`` (``modules`` given) or ``run_tests`` (None) uses."""
        from hcops.policy.engines.opa_binary import find_opa

        if input_size > WASM_MAX_INPUT and find_opa(self.settings) is not None:
            return "opa"  # decided without loading wasmtime
        wasm = False
        if modules is not None and wasm_available():
            from hcops.policy.engines.wasm_pack import precompiled

            wasm = precompiled(modules, self.settings)
            if wasm and input_size <= WASM_MAX_INPUT:
                return "wasm"
        if find_opa(self.settings) is not None:
            return "opa"
        return "wasm" if wasm else "embedded"

    def prepare(self, modules: Mapping[str, str], data: Mapping[str, Any], nodes: int) -> None:
        """Called by a command before it builds the input document of ``nodes`` nodes: when that will
        go to the OPA binary, start the managed server now, so that it compiles the pack meanwhile."""
        if nodes * BYTES_PER_NODE > WASM_MAX_INPUT and self.choose(modules, nodes * BYTES_PER_NODE) == "opa":
            managed = self._get("opa-managed")
            managed.prepare(modules, data)  # type: ignore[attr-defined]

    def input_sink(self) -> Any:
        """The managed server's sink for the input document's parts (hcops.policy.input.InputSink), when
        ``prepare`` started it; else None."""
        managed = self._engines.get("opa-managed")
        return managed.input_sink() if managed is not None else None  # type: ignore[attr-defined]

    @property
    def last_mode(self) -> str:
        """How the managed server evaluated last ("staged", "request" or "one-shot"); "" for the others."""
        return str(getattr(self._current, "last_mode", ""))

    def _use(self, kind: str) -> Engine:
        engine = self._get(kind)
        self._current = engine
        self.name = engine.name
        return engine

    def evaluate(self, modules: Mapping[str, str], input: dict[str, Any], data: dict[str, Any]) -> EngineResult:
        import orjson

        sink = self.input_sink()
        if sink is not None and sink.holds(input):  # sent to the server started by prepare while it was built
            managed = self._use("opa-managed")
            result: EngineResult = managed.evaluate(modules, input, data)
            self.name = managed.name
            return result

        try:
            body = orjson.dumps(input, default=str)
        except TypeError as exc:
            raise InvalidInput(f"the policy input is not a JSON document: {exc}") from exc
        kind = self.choose(modules, len(body))
        if kind == "opa" and "opa-managed" in self._engines:  # started by prepare
            managed = self._use("opa-managed")
            result = managed.evaluate_json(modules, body, data, input)  # type: ignore[attr-defined]
            self.name = managed.name  # "opa" when the server did not start and opa eval stood in
            return result
        if kind != "wasm":
            return self._use(kind).evaluate(modules, input, data)
        engine = self._use(kind)
        try:
            return engine.evaluate_json(modules, body, data)  # type: ignore[attr-defined]
        except EnvironmentProblem:
            # the module needs a built-in neither the Wasm target nor hcops provides
            return self._use(self.choose(None)).evaluate(modules, input, data)

    def run_tests(self, modules: Mapping[str, str], data: dict[str, Any]) -> list[TestResult]:
        return self._use(self.choose(None)).run_tests(modules, data)

    def cancel(self) -> None:
        if self._current is not None:
            self._current.cancel()

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close()
