"""Policy engines: embedded (regopy) and OPA server; both give the same answer for the same modules.

Each engine is imported when first used, so that a gate on one engine does not load the other's client.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from hcops.lazy import lazy_attributes
from hcops.policy.engines.base import Engine, EngineResult, PackageResult, TestResult
from hcops.policy.engines.limits import EngineLimits

if TYPE_CHECKING:
    from hcops.policy.engines.embedded import EmbeddedEngine, EmbeddedError
    from hcops.policy.engines.opa_server import OpaServerEngine

ENV_URL = "HCOPS_OPA_URL"

_EXPORTS = {
    "EmbeddedEngine": "hcops.policy.engines.embedded",
    "EmbeddedError": "hcops.policy.engines.embedded",
    "OpaServerEngine": "hcops.policy.engines.opa_server",
}

__getattr__ = lazy_attributes(__name__, _EXPORTS)


def make_engine(opa_url: str | None = None, *, timeout: float = 30.0,
                limits: EngineLimits | None = None) -> Engine:
    """The OPA server engine for ``opa_url`` (or env ``HCOPS_OPA_URL``), else the embedded one (under
    ``limits``)."""
    url = opa_url or os.environ.get(ENV_URL, "").strip()
    if url:
        from hcops.policy.engines.opa_server import OpaServerEngine

        return OpaServerEngine(url, timeout=timeout)
    from hcops.policy.engines.embedded import EmbeddedEngine

    return EmbeddedEngine(limits)


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
