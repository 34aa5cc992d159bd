"""Policy engines: embedded (regopy) and OPA server; both give the same answer for the same modules."""

from __future__ import annotations

import os

from hcops.policy.engines.base import Engine, EngineResult, PackageResult, TestResult
from hcops.policy.engines.embedded import EmbeddedEngine, EmbeddedError
from hcops.policy.engines.opa_server import ENV_URL, OpaServerEngine


def make_engine(opa_url: str | None = None, *, timeout: float = 30.0) -> Engine:
    """The OPA server engine for ``opa_url`` (or env ``HCOPS_OPA_URL``), else the embedded one."""
    url = opa_url or os.environ.get(ENV_URL, "").strip()
    if url:
        return OpaServerEngine(url, timeout=timeout)
    return EmbeddedEngine()


__all__ = [
    "ENV_URL",
    "EmbeddedEngine",
    "EmbeddedError",
    "Engine",
    "EngineResult",
    "OpaServerEngine",
    "PackageResult",
    "TestResult",
    "make_engine",
]
