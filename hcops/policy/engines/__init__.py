"""Policy engines; all give the same answer for the same modules (tests/integration/test_policy_engines.py).

- ``wasm``: the policies compiled to WebAssembly by OPA, in-process (wasmtime); the built-in packs ship
  compiled (hcops.policy.engines.wasm_engine);
- ``opa``: the OPA binary, run one-shot by hcops (hcops.policy.engines.opa_local);
- ``opa-managed``: the OPA binary as a private server hcops starts early and stops at the end of the
  command, on a Unix socket (hcops.policy.engines.opa_managed);
- ``embedded``: regopy, in-process, in a child under limits (hcops.policy.engines.embedded);
- the user's OPA server (``--opa-url``; hcops.policy.engines.opa_server);
- ``auto`` (the default) picks among the first three per evaluation (hcops.policy.engines.auto).

Each engine is imported when first used, so that a gate on one engine does not load the other's client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hcops.errors import InvalidInput
from hcops.lazy import lazy_attributes
from hcops.policy.engines.base import Engine, EngineResult, PackageResult, TestResult
from hcops.policy.engines.limits import EngineLimits
from hcops.settings import OPA_URL, Settings, resolve

if TYPE_CHECKING:
    from hcops.policy.engines.auto import AutoEngine
    from hcops.policy.engines.embedded import EmbeddedEngine, EmbeddedError
    from hcops.policy.engines.opa_local import OpaLocalEngine
    from hcops.policy.engines.opa_managed import OpaManagedEngine
    from hcops.policy.engines.opa_server import OpaServerEngine
    from hcops.policy.engines.wasm_engine import WasmEngine

ENV_URL = OPA_URL
ENGINES = ("auto", "wasm", "opa", "opa-managed", "embedded")

_EXPORTS = {
    "AutoEngine": "hcops.policy.engines.auto",
    "EmbeddedEngine": "hcops.policy.engines.embedded",
    "EmbeddedError": "hcops.policy.engines.embedded",
    "OpaLocalEngine": "hcops.policy.engines.opa_local",
    "OpaManagedEngine": "hcops.policy.engines.opa_managed",
    "OpaServerEngine": "hcops.policy.engines.opa_server",
    "WasmEngine": "hcops.policy.engines.wasm_engine",
}

__getattr__ = lazy_attributes(__name__, _EXPORTS)


def make_engine(opa_url: str | None = None, *, engine: str = "auto", timeout: float = 30.0,
                limits: EngineLimits | None = None, settings: Settings | None = None) -> Engine:
    """The engine named ``engine`` (one of ENGINES) under ``limits``; with ``opa_url`` (or
    ``HCOPS_OPA_URL`` in ``settings``) the OPA server engine, which only goes with ``auto``."""
    if engine not in ENGINES:
        raise InvalidInput(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    url = opa_url or (resolve(settings).opa_url or "").strip()
    if url:
        if engine != "auto":
            raise InvalidInput(f"--engine {engine} and an OPA server URL (--opa-url / {ENV_URL}) exclude each other",
                               hint="drop one of them")
        from hcops.policy.engines.opa_server import OpaServerEngine

        return OpaServerEngine(url, timeout=timeout, settings=settings)
    if engine == "wasm":
        from hcops.policy.engines.wasm_engine import WasmEngine

        return WasmEngine(limits, settings=settings)
    if engine == "opa":
        from hcops.policy.engines.opa_local import OpaLocalEngine

        return OpaLocalEngine(limits, settings=settings)
    if engine == "opa-managed":
        from hcops.policy.engines.opa_managed import OpaManagedEngine

        return OpaManagedEngine(limits, settings=settings)
    if engine == "embedded":
        from hcops.policy.engines.embedded import EmbeddedEngine

        return EmbeddedEngine(limits)
    from hcops.policy.engines.auto import AutoEngine

    return AutoEngine(limits, settings=settings)


__all__ = [
    "ENGINES",
    "ENV_URL",
    "AutoEngine",
    "EmbeddedEngine",
    "EmbeddedError",
    "Engine",
    "EngineResult",
    "OpaLocalEngine",
    "OpaManagedEngine",
    "OpaServerEngine",
    "WasmEngine",
    "PackageResult",
    "TestResult",
    "make_engine",
]
